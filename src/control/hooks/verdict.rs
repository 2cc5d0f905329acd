//! Turning a hook's answer (HTTP status and body) into a verdict: pure, no I/O, no clock.
//!
//! Thread: whichever awaits the call, in webcall the control thread (tokio current-thread).
//!
//! Invariants: a [`HookVerdict::Refuse`] reason is never empty, is at most
//! [`HOOK_REASON_BYTES_MAX`] bytes, cut on a char boundary, and has no control characters;
//! an answer that does not say allow or refuse is a [`Judgement::Failure`], which the client
//! turns into a verdict by its [`super::HookFailure`] policy.

use serde_json::{Map, Value};

use super::HOOK_REASON_BYTES_MAX;

/// The backend's word on an action.
#[derive(Debug, Clone, PartialEq)]
pub enum HookVerdict {
    /// Go ahead. `rewritten` is the backend's JSON object, when it sent one: the caller applies
    /// the fields it understands and ignores the rest.
    Allow { rewritten: Option<Map<String, Value>> },
    /// Refuse the action; `reason` is for the client.
    Refuse { reason: String },
}

/// Why a call got no usable answer; for counting and logs only, never shown to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// No in-flight permit within the timeout.
    Busy,
    /// The timeout passed while connecting, sending or reading.
    Timeout,
    /// TCP connect or TLS handshake failed.
    Connect,
    /// The exchange broke after connecting (reset, closed early, bad HTTP).
    Request,
    /// A 5xx, or a status that is neither 2xx nor 4xx (hooks are not redirected).
    Status(u16),
    /// The body is over [`super::HOOK_RESPONSE_BYTES_MAX`].
    BodyTooLarge,
    /// The body broke off mid-way.
    BodyRead,
    /// A 2xx body that is not JSON.
    InvalidJson,
    /// A 2xx body that is JSON but not an object.
    NotObject,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureKind::Busy => f.write_str("busy"),
            FailureKind::Timeout => f.write_str("timeout"),
            FailureKind::Connect => f.write_str("connect"),
            FailureKind::Request => f.write_str("request"),
            FailureKind::Status(status) => write!(f, "status {status}"),
            FailureKind::BodyTooLarge => f.write_str("body too large"),
            FailureKind::BodyRead => f.write_str("body read"),
            FailureKind::InvalidJson => f.write_str("invalid json"),
            FailureKind::NotObject => f.write_str("not an object"),
        }
    }
}

/// An answer read as far as this module can: a verdict, or a failure left to the policy.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Judgement {
    Verdict(HookVerdict),
    Failure(FailureKind),
}

/// The reason when neither the backend nor the status's canonical text gives one.
const FALLBACK_REASON: &str = "Refused";

/// What the answer `status` with `body` means. `body` is empty when it could not be read (the
/// caller fails a 2xx like that itself; for a 4xx the status alone decides).
pub(super) fn judge(status: u16, body: &[u8]) -> Judgement {
    match status {
        200..=299 => judge_success(body),
        // The application does not hook this method.
        404 => Judgement::Verdict(HookVerdict::Allow { rewritten: None }),
        400..=499 => {
            let object = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(object)) => Some(object),
                _ => None,
            };
            let given = object
                .as_ref()
                .and_then(|o| o.get("reason"))
                .and_then(Value::as_str);
            Judgement::Verdict(HookVerdict::Refuse {
                reason: refusal_reason(given, Some(status)),
            })
        }
        _ => Judgement::Failure(FailureKind::Status(status)),
    }
}

fn judge_success(body: &[u8]) -> Judgement {
    if body.trim_ascii().is_empty() {
        return Judgement::Verdict(HookVerdict::Allow { rewritten: None });
    }
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Judgement::Failure(FailureKind::NotObject),
        Err(_) => return Judgement::Failure(FailureKind::InvalidJson),
    };
    // WCS >= 5.2.968 answers a refusal as 200 with {"status": 403, "reason": "..."}.
    match object.get("status").and_then(Value::as_f64) {
        Some(code) if code >= 400.0 => {
            let status = (code.fract() == 0.0 && code <= f64::from(u16::MAX)).then_some(code as u16);
            let given = object.get("reason").and_then(Value::as_str);
            Judgement::Verdict(HookVerdict::Refuse {
                reason: refusal_reason(given, status),
            })
        }
        _ => Judgement::Verdict(HookVerdict::Allow {
            rewritten: Some(object),
        }),
    }
}

/// The backend's reason, cleaned, or else the status's canonical text.
fn refusal_reason(given: Option<&str>, status: Option<u16>) -> String {
    let cleaned = given.map(clean_reason).unwrap_or_default();
    if !cleaned.is_empty() {
        return cleaned;
    }
    status
        .and_then(|s| hyper::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or(FALLBACK_REASON)
        .to_owned()
}

/// `reason` without control characters, trimmed, cut to [`HOOK_REASON_BYTES_MAX`] bytes on a
/// char boundary.
pub(super) fn clean_reason(reason: &str) -> String {
    let mut out = String::new();
    for c in reason.trim().chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > HOOK_REASON_BYTES_MAX {
            break;
        }
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn allow(rewritten: Option<Value>) -> Judgement {
        let rewritten = rewritten.map(|v| match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        });
        Judgement::Verdict(HookVerdict::Allow { rewritten })
    }

    fn refuse(reason: &str) -> Judgement {
        Judgement::Verdict(HookVerdict::Refuse {
            reason: reason.to_owned(),
        })
    }

    #[test]
    fn success_with_an_object_allows_with_the_rewrite() {
        let body = br#"{"name":"bob","custom":{"a":1}}"#;
        assert_eq!(
            judge(200, body),
            allow(Some(json!({"name": "bob", "custom": {"a": 1}})))
        );
        assert_eq!(judge(201, b"{}"), allow(Some(json!({}))));
        assert_eq!(judge(299, b" {\"x\":true}\n"), allow(Some(json!({"x": true}))));
    }

    #[test]
    fn success_with_an_empty_body_allows_unchanged() {
        assert_eq!(judge(200, b""), allow(None));
        assert_eq!(judge(204, b""), allow(None));
        assert_eq!(judge(200, b" \r\n\t "), allow(None));
    }

    #[test]
    fn success_with_a_refusal_status_refuses() {
        assert_eq!(
            judge(200, br#"{"status":403,"reason":"banned"}"#),
            refuse("banned")
        );
        assert_eq!(judge(200, br#"{"status":400}"#), refuse("Bad Request"));
        assert_eq!(judge(200, br#"{"status":403.0}"#), refuse("Forbidden"));
        assert_eq!(judge(200, br#"{"status":499,"reason":""}"#), refuse("Refused"));
        assert_eq!(judge(200, br#"{"status":1e9}"#), refuse("Refused"));
        // Below 400, or not a number, the status field is just a field.
        assert_eq!(
            judge(200, br#"{"status":200}"#),
            allow(Some(json!({"status": 200})))
        );
        assert_eq!(
            judge(200, br#"{"status":"403"}"#),
            allow(Some(json!({"status": "403"})))
        );
    }

    #[test]
    fn success_with_a_body_that_is_not_an_object_fails() {
        assert_eq!(judge(200, b"[1,2]"), Judgement::Failure(FailureKind::NotObject));
        assert_eq!(judge(200, b"\"ok\""), Judgement::Failure(FailureKind::NotObject));
        assert_eq!(judge(200, b"null"), Judgement::Failure(FailureKind::NotObject));
        assert_eq!(judge(200, b"OK"), Judgement::Failure(FailureKind::InvalidJson));
        assert_eq!(
            judge(200, b"{\"a\":"),
            Judgement::Failure(FailureKind::InvalidJson)
        );
    }

    #[test]
    fn not_found_means_not_hooked() {
        assert_eq!(judge(404, b""), allow(None));
        assert_eq!(judge(404, b"<html>Not Found</html>"), allow(None));
        assert_eq!(judge(404, br#"{"reason":"no"}"#), allow(None));
    }

    #[test]
    fn other_client_errors_refuse_with_the_backend_reason_or_the_canonical_text() {
        assert_eq!(
            judge(403, br#"{"reason":"room is full"}"#),
            refuse("room is full")
        );
        assert_eq!(judge(403, b""), refuse("Forbidden"));
        assert_eq!(judge(401, b"not json"), refuse("Unauthorized"));
        assert_eq!(judge(400, br#"{"reason":42}"#), refuse("Bad Request"));
        assert_eq!(judge(409, br#"["reason"]"#), refuse("Conflict"));
        assert_eq!(judge(499, b""), refuse("Refused"));
    }

    #[test]
    fn server_errors_and_odd_statuses_fail() {
        for status in [500, 502, 503, 599, 100, 301, 302, 600] {
            assert_eq!(
                judge(status, b"{}"),
                Judgement::Failure(FailureKind::Status(status))
            );
        }
    }

    #[test]
    fn reasons_lose_control_characters_and_are_cut_on_a_char_boundary() {
        assert_eq!(clean_reason("  no\r\nway\u{7}\t "), "noway");
        assert_eq!(clean_reason("\u{1b}[31mred"), "[31mred");
        let long = "é".repeat(HOOK_REASON_BYTES_MAX); // two bytes each
        let cut = clean_reason(&long);
        assert_eq!(cut.len(), HOOK_REASON_BYTES_MAX);
        let odd = format!("a{long}");
        let cut = clean_reason(&odd);
        assert_eq!(cut.len(), HOOK_REASON_BYTES_MAX - 1);
        assert!(odd.starts_with(&cut));
        assert_eq!(judge(403, br#"{"reason":"\n\u0000"}"#), refuse("Forbidden"));
        let body = serde_json::to_vec(&json!({ "reason": "x".repeat(10_000) })).unwrap();
        let Judgement::Verdict(HookVerdict::Refuse { reason }) = judge(403, &body) else {
            panic!()
        };
        assert_eq!(reason.len(), HOOK_REASON_BYTES_MAX);
    }
}
