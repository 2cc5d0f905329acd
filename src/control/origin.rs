//! Browser origins: which pages may open a WebSocket to us or call the REST API from script.
//! Control thread; consulted by the WebSocket handler and the REST CORS layer.
//!
//! Invariants: a request without `Origin` (an encoder, a script, the load generator) is never
//! refused here — only browsers send it, and only browsers can be made to act for another site;
//! the server's own origin (the `Origin` whose host is the request's `Host`) is always allowed;
//! with no list configured every origin is allowed (and the start-up log says so).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::http::AppState;
use crate::config::Origin;

/// What a request's `Origin` gets.
#[derive(Debug, PartialEq, Eq)]
pub enum OriginVerdict {
    /// No `Origin` header.
    Absent,
    /// Allowed; the value to echo in `Access-Control-Allow-Origin`.
    Allowed(HeaderValue),
    Refused,
}

#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Empty: any.
    allowed: Vec<Origin>,
}

impl OriginPolicy {
    pub fn new(allowed: Vec<Origin>) -> Self {
        OriginPolicy { allowed }
    }

    pub fn allows_any(&self) -> bool {
        self.allowed.is_empty()
    }

    pub fn check(&self, headers: &HeaderMap) -> OriginVerdict {
        let Some(value) = headers.get(header::ORIGIN) else {
            return OriginVerdict::Absent;
        };
        let Ok(origin) = value.to_str() else {
            return OriginVerdict::Refused;
        };
        let origin = origin.trim().to_ascii_lowercase();
        let own = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|host| {
                origin
                    .split_once("://")
                    .map(|(_, rest)| rest.eq_ignore_ascii_case(host))
            })
            .unwrap_or(false);
        if self.allows_any() || own || self.allowed.iter().any(|a| a.0 == origin) {
            OriginVerdict::Allowed(value.clone())
        } else {
            OriginVerdict::Refused
        }
    }
}

/// The refusal a browser from a foreign origin gets.
pub fn refused() -> Response {
    super::rest::error(StatusCode::FORBIDDEN, "Origin is not allowed")
}

/// Middleware for the REST API: refuse foreign origins, answer CORS preflights, and add
/// `Access-Control-Allow-Origin` for allowed ones.
pub async fn rest_cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let verdict = state.origins.get().check(request.headers());
    let allow = match verdict {
        OriginVerdict::Refused => {
            state
                .admission
                .counters
                .origins_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return refused();
        }
        OriginVerdict::Allowed(value) => Some(value),
        OriginVerdict::Absent => None,
    };
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    if let Some(origin) = allow {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            map.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        map
    }

    #[test]
    fn listed_own_and_absent_origins_pass_others_do_not() {
        let policy = OriginPolicy::new(vec!["https://app.example.com".parse().unwrap()]);
        let host = "media.example.com:8443";
        assert_eq!(policy.check(&headers(None, host)), OriginVerdict::Absent);
        assert!(matches!(
            policy.check(&headers(Some("https://app.example.com"), host)),
            OriginVerdict::Allowed(_)
        ));
        assert!(matches!(
            policy.check(&headers(Some("https://media.example.com:8443"), host)),
            OriginVerdict::Allowed(_)
        ));
        assert_eq!(
            policy.check(&headers(Some("http://evil.example"), host)),
            OriginVerdict::Refused
        );
        assert_eq!(
            policy.check(&headers(Some("https://app.example.com.evil.example"), host)),
            OriginVerdict::Refused
        );
        let open = OriginPolicy::default();
        assert!(matches!(
            open.check(&headers(Some("http://evil.example"), host)),
            OriginVerdict::Allowed(_)
        ));
    }
}
