//! Room access: who a client is and what it may do, from a signed token (`--auth jwt`) or
//! trusted as it says (`--auth none`). [`AuthMode::verify`] turns a `connection`'s token and
//! login into [`Grants`] or an [`AuthRefusal`] whose text the client is sent.
//!
//! Sans-IO apart from reading the key and deny list files at startup and writing the deny
//! list on a revoke; used on the control thread. Invariants: under `Jwt` every session's login
//! is its token's `sub` (a different `custom.login` is refused, not overridden), and a token
//! whose `jti` is on the deny list is refused; no refusal text carries the token or the key.

mod deny_list;
mod grants;
mod jwt;
mod key_file;
mod mint;
#[cfg(test)]
mod test_keys;

pub use deny_list::{DenyList, DENY_LIST_ENTRIES_MAX};
pub use grants::{Grants, RoomGrant, Source, ROOM_BYTES_MAX, SCREEN_SHARE_SUFFIX};
pub use jwt::{
    JwtVerifier, TokenError, JTI_BYTES_MAX, LEEWAY_SECS, LOGIN_BYTES_MAX, RSA_MODULUS_BITS_MIN,
    TOKEN_BYTES_MAX,
};
pub use key_file::{AuthSetupError, KEY_FILE_BYTES_MAX, SECRET_BYTES_MIN};
pub use mint::{mint, parse_ttl, TokenRequest};

use crate::ids::Login;

/// How sessions are admitted.
#[derive(Debug)]
pub enum AuthMode {
    /// Everyone, with every right, under the login they send.
    None,
    /// Only with a valid room token.
    Jwt(Box<JwtVerifier>),
}

/// Why a `connection` was refused. `Display` is the text the client is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthRefusal {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("Restricted access: login does not match the token")]
    LoginMismatch,
}

impl AuthRefusal {
    /// A short name of the failure for logs and counters.
    pub fn log_detail(&self) -> &'static str {
        match self {
            AuthRefusal::Token(error) => error.log_detail(),
            AuthRefusal::LoginMismatch => "login_mismatch",
        }
    }
}

impl AuthMode {
    /// Admits a `connection` with `token` and `login` (its `custom.token`, `custom.login`).
    /// Under `None` the grants are everything, for `login` or, when the client sent none,
    /// `fallback_login()` (webcall's `user-N`). Under `Jwt` the token is required (an empty
    /// one counts as missing), its login is `sub`, and its `jti` must not be denied.
    pub fn verify(
        &self,
        token: Option<&str>,
        login: Option<&Login>,
        fallback_login: impl FnOnce() -> Login,
        deny: &DenyList,
        now_unix: u64,
    ) -> Result<Grants, AuthRefusal> {
        match self {
            AuthMode::None => Ok(Grants::everything(login.cloned().unwrap_or_else(fallback_login))),
            AuthMode::Jwt(verifier) => {
                let token = token
                    .filter(|token| !token.is_empty())
                    .ok_or(TokenError::Missing)?;
                let grants = verifier.verify(token, now_unix)?;
                if grants
                    .jti
                    .as_deref()
                    .is_some_and(|jti| deny.is_denied(jti, now_unix))
                {
                    return Err(TokenError::Revoked.into());
                }
                if login.is_some_and(|login| *login != grants.login) {
                    return Err(AuthRefusal::LoginMismatch);
                }
                Ok(grants)
            }
        }
    }
}

/// Seconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests;
