//! Access-control settings: who may connect (`--auth`, the JWT key), what a second session with
//! a login already in use gets, the application's hooks, the browser origins allowed, and the
//! caps on sessions. With the parsing the command line and the TOML file share.
//!
//! Parsed once at start-up. Invariant: every value here is checked when parsed; what a setting
//! needs at run time (a key file's bytes) is read by the subsystem that uses it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// Sessions the server holds at once by default: far above what one host's media can carry,
/// low enough that their sockets and buffers (about 30 KiB each) fit in a few GiB.
pub const MAX_SESSIONS_DEFAULT: usize = 50_000;
/// How long the application's hook may take to answer by default (WCS waits 15 s; a joining
/// user should not wait that long).
pub const HOOK_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// `--auth none|jwt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum AuthChoice {
    /// Anyone may connect, take any login and join any room (a fresh machine works at once).
    #[default]
    None,
    /// Every session needs a token signed with `--jwt-key`.
    Jwt,
}

impl FromStr for AuthChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(AuthChoice::None),
            "jwt" => Ok(AuthChoice::Jwt),
            other => Err(format!("'{other}' is not none or jwt")),
        }
    }
}

impl TryFrom<String> for AuthChoice {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// `--duplicate-login kick-old|reject-new`: what a session whose login is already connected gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum DuplicateLogin {
    /// The older session is closed (a user who reloads the page expects to get back in).
    #[default]
    KickOld,
    /// The new session is refused while the old one lives.
    RejectNew,
}

impl FromStr for DuplicateLogin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kick-old" => Ok(DuplicateLogin::KickOld),
            "reject-new" => Ok(DuplicateLogin::RejectNew),
            other => Err(format!("'{other}' is not kick-old or reject-new")),
        }
    }
}

impl TryFrom<String> for DuplicateLogin {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// `--hook-failure allow|deny`: what an action gets when the hook cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum HookFailureChoice {
    Allow,
    /// Fail closed: an unreachable backend admits nobody.
    #[default]
    Deny,
}

impl FromStr for HookFailureChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(HookFailureChoice::Allow),
            "deny" => Ok(HookFailureChoice::Deny),
            other => Err(format!("'{other}' is not allow or deny")),
        }
    }
}

impl TryFrom<String> for HookFailureChoice {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// One allowed browser origin, `scheme://host[:port]`, as browsers send it in `Origin`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Origin(pub String);

impl FromStr for Origin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().trim_end_matches('/');
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!("'{s}' is not scheme://host[:port]"));
        };
        let scheme_ok = matches!(scheme, "http" | "https");
        let host_ok = !rest.is_empty()
            && !rest.contains('/')
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !scheme_ok || !host_ok {
            return Err(format!("'{s}' is not http(s)://host[:port]"));
        }
        Ok(Origin(text.to_ascii_lowercase()))
    }
}

impl TryFrom<String> for Origin {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `--allowed-origins a,b,c` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginList(pub Vec<Origin>);

impl FromStr for OriginList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Origin::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(OriginList)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        let list: OriginList = "https://Example.com, http://127.0.0.1:8080/".parse().unwrap();
        assert_eq!(
            list.0,
            vec![
                Origin("https://example.com".into()),
                Origin("http://127.0.0.1:8080".into())
            ]
        );
        assert!("example.com".parse::<Origin>().is_err());
        assert!("ftp://example.com".parse::<Origin>().is_err());
        assert!("https://example.com/path".parse::<Origin>().is_err());
    }

    #[test]
    fn choices_parse_their_names_only() {
        assert_eq!("jwt".parse::<AuthChoice>(), Ok(AuthChoice::Jwt));
        assert!("JWT".parse::<AuthChoice>().is_err());
        assert_eq!(
            "reject-new".parse::<DuplicateLogin>(),
            Ok(DuplicateLogin::RejectNew)
        );
        assert_eq!("allow".parse::<HookFailureChoice>(), Ok(HookFailureChoice::Allow));
    }
}
