//! Checking a hook configuration and building the endpoint URIs, `{url}/{method}` joined with
//! exactly one `/`, once at setup.
//!
//! Thread: whoever makes the [`super::HookClient`], in webcall the control thread at start-up.
//!
//! Invariants: an accepted URL is `http://` or `https://`, has a host, no user info, no query
//! and no fragment, and every method's URI parses, so a call cannot fail on its URL.

use hyper::Uri;

use super::{HookConfig, HookMethod, HookSetupError};

/// Checks `config` and builds the endpoint URIs; also says whether the URL is `https://`.
pub(super) fn check(config: &HookConfig) -> Result<(Vec<Uri>, bool), HookSetupError> {
    if config.timeout.is_zero() {
        return Err(HookSetupError::ZeroTimeout);
    }
    if config.secret.as_ref().is_some_and(Vec::is_empty) {
        return Err(HookSetupError::EmptySecret);
    }
    let url = config.url.trim();
    if url.contains(['?', '#']) {
        return Err(HookSetupError::QueryOrFragment);
    }
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| HookSetupError::InvalidUrl(e.to_string()))?;
    let https = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        _ => return Err(HookSetupError::UnsupportedScheme),
    };
    let authority = uri.authority().ok_or(HookSetupError::MissingHost)?;
    if authority.as_str().contains('@') {
        return Err(HookSetupError::UserInfo);
    }
    if authority.host().is_empty() {
        return Err(HookSetupError::MissingHost);
    }
    let base = url.trim_end_matches('/');
    let endpoints = HookMethod::ALL
        .iter()
        .map(|m| format!("{base}/{}", m.path()).parse::<Uri>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HookSetupError::InvalidUrl(e.to_string()))?;
    Ok((endpoints, https))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::HookFailure;
    use super::*;

    fn config(url: &str) -> HookConfig {
        HookConfig {
            url: url.to_owned(),
            timeout: Duration::from_secs(1),
            failure: HookFailure::Allow,
            secret: None,
        }
    }

    fn endpoints(url: &str) -> Result<Vec<String>, HookSetupError> {
        check(&config(url)).map(|(e, _)| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn endpoints_join_with_one_slash() {
        for base in [
            "http://127.0.0.1:8081/apps/app",
            "http://127.0.0.1:8081/apps/app/",
        ] {
            let e = endpoints(base).unwrap();
            assert_eq!(
                e[HookMethod::Connect.index()],
                "http://127.0.0.1:8081/apps/app/connect"
            );
            assert_eq!(
                e[HookMethod::SendMessage.index()],
                "http://127.0.0.1:8081/apps/app/sendMessage"
            );
        }
        assert_eq!(
            endpoints("https://hooks.example.com").unwrap()[1],
            "https://hooks.example.com/joinRoom"
        );
        assert_eq!(
            endpoints("http://[::1]:9/").unwrap()[2],
            "http://[::1]:9/publishStream"
        );
        for (i, m) in HookMethod::ALL.iter().enumerate() {
            assert_eq!(m.index(), i);
        }
    }

    #[test]
    fn bad_urls_are_refused_at_setup() {
        let cases = [
            ("ftp://host/x", "must start with"),
            ("ws://host/x", "must start with"),
            ("/apps/app", "must start with"),
            ("", "not a URL"),
            ("http://exa mple.com/", "not a URL"),
            ("http://host/app?x=1", "query"),
            ("http://host/app#top", "query"),
            ("http://user:pw@host/app", "user:password"),
        ];
        for (url, expected) in cases {
            let error = check(&config(url)).expect_err(url).to_string();
            assert!(error.contains(expected), "{url}: {error}");
        }
        assert!(matches!(
            check(&config("http:///app")),
            Err(HookSetupError::InvalidUrl(_) | HookSetupError::MissingHost)
        ));
    }

    #[test]
    fn bad_settings_are_refused_at_setup() {
        let mut zero = config("http://host/app");
        zero.timeout = Duration::ZERO;
        assert!(matches!(check(&zero), Err(HookSetupError::ZeroTimeout)));
        let mut empty = config("http://host/app");
        empty.secret = Some(Vec::new());
        assert!(matches!(check(&empty), Err(HookSetupError::EmptySecret)));
    }
}
