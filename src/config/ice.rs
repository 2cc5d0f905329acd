//! `--ice-server`: STUN and TURN servers WHIP and WHEP clients are told of, in the `Link`
//! headers of RFC 9725 §4.6. webcall itself is ICE-lite with a host candidate and needs none;
//! a client behind a restrictive NAT may.
//!
//! Parsed once at start (and on SIGHUP's re-read). Invariant: a held [`IceServer`] has a
//! `stun:`, `stuns:`, `turn:` or `turns:` URL without characters that would break out of the
//! header's `<...>` or quoted parameters, so formatting it never fails.

use std::fmt;
use std::str::FromStr;

/// A URL, a username or a credential longer than this is refused (a header line, not a store).
pub const ICE_SERVER_FIELD_BYTES_MAX: usize = 512;

/// One STUN or TURN server: `URL`, or for TURN `URL;username=NAME;credential=SECRET`.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct IceServer {
    pub url: String,
    pub username: Option<String>,
    pub credential: Option<String>,
}

impl fmt::Debug for IceServer {
    // The credential is a secret: never in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("credential", &self.credential.as_ref().map(|_| "<set>"))
            .finish()
    }
}

fn checked(what: &str, value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > ICE_SERVER_FIELD_BYTES_MAX {
        return Err(format!(
            "the {what} must be 1 to {ICE_SERVER_FIELD_BYTES_MAX} bytes"
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '<' | '>' | '\\' | ';' | ','))
    {
        return Err(format!("the {what} has a character a Link header cannot carry"));
    }
    Ok(value.to_owned())
}

impl FromStr for IceServer {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = text.split(';');
        let url = checked("URL", parts.next().unwrap_or_default().trim())?;
        let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
        let turn = match scheme.as_deref() {
            Some("stun" | "stuns") => false,
            Some("turn" | "turns") => true,
            _ => return Err(format!("{url:?} is not a stun:, stuns:, turn: or turns: URL")),
        };
        let (mut username, mut credential) = (None, None);
        for part in parts {
            match part.trim().split_once('=') {
                Some(("username", value)) => username = Some(checked("username", value)?),
                Some(("credential", value)) => credential = Some(checked("credential", value)?),
                _ => return Err(format!("unknown parameter {part:?} (username=, credential=)")),
            }
        }
        match (turn, username.is_some(), credential.is_some()) {
            (true, true, true) | (false, false, false) => {}
            (true, ..) => return Err("a TURN URL needs username= and credential=".to_owned()),
            (false, ..) => return Err("username= and credential= are for TURN URLs".to_owned()),
        }
        Ok(IceServer {
            url,
            username,
            credential,
        })
    }
}

impl TryFrom<String> for IceServer {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl IceServer {
    /// The value of one `Link` header (RFC 9725 §4.6, RFC 8288).
    pub fn link_header(&self) -> String {
        let mut value = format!("<{}>; rel=\"ice-server\"", self.url);
        if let (Some(username), Some(credential)) = (&self.username, &self.credential) {
            value.push_str(&format!(
                "; username=\"{username}\"; credential=\"{credential}\"; credential-type=\"password\""
            ));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_and_turn_servers_become_link_headers() {
        let stun: IceServer = "stun:stun.example.net:3478".parse().unwrap();
        assert_eq!(
            stun.link_header(),
            "<stun:stun.example.net:3478>; rel=\"ice-server\""
        );
        let turn: IceServer = "turn:turn.example.net:3478?transport=udp;username=alice;credential=s3cret"
            .parse()
            .unwrap();
        assert_eq!(
            turn.link_header(),
            "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"alice\"; \
             credential=\"s3cret\"; credential-type=\"password\""
        );
        assert!(
            !format!("{turn:?}").contains("s3cret"),
            "the credential stays out of logs"
        );
    }

    #[test]
    fn malformed_servers_are_refused() {
        for bad in [
            "",
            "http://example.net",
            "stun:a b",
            "stun:x>; rel=\"evil\"",
            "turn:turn.example.net",
            "turn:t;username=alice",
            "stun:s;username=a;credential=b",
            "turn:t;username=a;credential=b;realm=x",
            "turn:t;username=a\"b;credential=c",
        ] {
            assert!(bad.parse::<IceServer>().is_err(), "{bad:?} was accepted");
        }
        let long = format!("stun:{}", "a".repeat(ICE_SERVER_FIELD_BYTES_MAX));
        assert!(long.parse::<IceServer>().is_err());
    }
}
