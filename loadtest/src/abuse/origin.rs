//! Origins: WebSocket upgrades from [`addr::ORIGIN`] with a foreign `Origin` (must get 403),
//! the allowed one, the server's own (`http://` + its `Host`), and none (each must become a
//! working session: `connection` answered with `getUserData`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::addr;
use super::net::{self, Upgrade};

/// The origin the scenario allows (`--allowed-origins`).
pub const ALLOWED: &str = "http://allowed.example";
/// An origin nobody allowed.
pub const FOREIGN: &str = "http://evil.example";
/// Deadline of each attempt.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginCase {
    /// The `Origin` sent (`None`: no header).
    pub origin: Option<String>,
    /// Whether it should become a session.
    pub should_admit: bool,
    /// The HTTP status (101 when upgraded); `None` when no answer came.
    pub status: Option<u16>,
    /// Admitted and answered `connection` with `getUserData`.
    pub session_works: bool,
    /// The refusal's `{"error"}`, or why the attempt failed.
    pub detail: Option<String>,
}

impl OriginCase {
    /// It went as it should: 403 for the foreign origin, a working session for the others.
    pub fn as_expected(&self) -> bool {
        match self.should_admit {
            true => self.session_works,
            false => self.status == Some(403),
        }
    }
}

async fn try_origin(http: SocketAddr, origin: Option<String>, should_admit: bool) -> OriginCase {
    let mut case = OriginCase {
        origin: origin.clone(),
        should_admit,
        status: None,
        session_works: false,
        detail: None,
    };
    match net::upgrade(addr::ORIGIN, http, origin.as_deref(), None, TIMEOUT).await {
        Ok(Upgrade::Accepted(mut ws)) => {
            case.status = Some(101);
            match net::establish(&mut ws, "origin-check", None, TIMEOUT).await {
                Ok(()) => case.session_works = true,
                Err(e) => case.detail = Some(e.to_string()),
            }
        }
        Ok(Upgrade::Refused { status, body }) => {
            case.status = Some(status);
            case.detail = Some(net::refusal_error(&body).unwrap_or(body));
        }
        Err(e) => case.detail = Some(e.to_string()),
    }
    case
}

/// Tries the four origins one after another.
pub async fn run(http: SocketAddr) -> Vec<OriginCase> {
    let own = format!("http://{http}");
    let mut cases = Vec::new();
    for (origin, admit) in [
        (Some(FOREIGN.to_string()), false),
        (Some(ALLOWED.to_string()), true),
        (Some(own), true),
        (None, true),
    ] {
        cases.push(try_origin(http, origin, admit).await);
    }
    cases
}
