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

/// Count a refused origin and answer it.
pub fn refuse_counted(state: &AppState) -> Response {
    state
        .admission
        .counters
        .origins_refused
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    refused()
}

/// What a group of routes lets pages on allowed origins do.
pub struct CorsRule {
    pub methods: &'static str,
    pub headers: &'static str,
    /// Response headers a page's script may read (`Access-Control-Expose-Headers`).
    pub expose: Option<&'static str>,
    /// Extra headers of the preflight's answer.
    pub preflight: &'static [(&'static str, &'static str)],
}

const REST_CORS: CorsRule = CorsRule {
    methods: "GET, POST, OPTIONS",
    headers: "authorization, content-type",
    expose: None,
    preflight: &[],
};

/// Refuse foreign origins, answer CORS preflights, and add the CORS headers of `rule` for
/// allowed ones. A request without `Origin` passes untouched.
pub async fn cors(state: &AppState, rule: &CorsRule, request: Request, next: Next) -> Response {
    let allow = match state.origins.get().check(request.headers()) {
        OriginVerdict::Refused => return refuse_counted(state),
        OriginVerdict::Allowed(value) => Some(value),
        OriginVerdict::Absent => None,
    };
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = StatusCode::NO_CONTENT.into_response();
        for (name, value) in rule.preflight {
            preflight
                .headers_mut()
                .insert(*name, HeaderValue::from_static(value));
        }
        preflight
    } else {
        next.run(request).await
    };
    if let Some(origin) = allow {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(rule.headers),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(rule.methods),
        );
        if let Some(expose) = rule.expose {
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(expose),
            );
        }
    }
    response
}

/// Middleware for the REST API ([`cors`] with the REST rule).
pub async fn rest_cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    cors(&state, &REST_CORS, request, next).await
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
