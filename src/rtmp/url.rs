//! RTMP URLs for pushing a stream out: [`parse_rtmp_url`] splits
//! `rtmp[s]://host[:port]/app[/more]/key[?query]` into what the connection needs.
//!
//! Sans-IO pure function (used on the control thread's tokio runtime).
//!
//! Invariants: the app is everything between the host and the last path segment, the key is
//! that last segment with any query; both are non-empty. Default ports: 1935 (rtmp), 443
//! (rtmps). User info (`user@host`) is refused rather than sent in `tcUrl`.

use super::RtmpError;

/// A parsed RTMP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: the I/O layer wraps the TCP connection in TLS.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub app: String,
    /// The publishing name, with any `?query`.
    pub stream_key: String,
    /// `scheme://authority/app`, as sent in `connect`.
    pub tc_url: String,
}

pub fn parse_rtmp_url(url: &str) -> Result<RtmpUrl, RtmpError> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").ok_or(RtmpError::InvalidUrl("no scheme"))?;
    let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "rtmp" => (false, 1935),
        "rtmps" => (true, 443),
        _ => return Err(RtmpError::InvalidUrl("scheme must be rtmp or rtmps")),
    };
    let (authority, path) = rest
        .split_once('/')
        .ok_or(RtmpError::InvalidUrl("no app or stream key"))?;
    if authority.contains('@') {
        return Err(RtmpError::InvalidUrl("user info is not supported"));
    }
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        None => default_port,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(RtmpError::InvalidUrl("bad port")),
        },
    };
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let (app, key) = path
        .rsplit_once('/')
        .ok_or(RtmpError::InvalidUrl("no stream key"))?;
    if app.is_empty() || app.split('/').any(str::is_empty) {
        return Err(RtmpError::InvalidUrl("empty app"));
    }
    if key.is_empty() {
        return Err(RtmpError::InvalidUrl("empty stream key"));
    }
    let stream_key = match query {
        Some(query) => format!("{key}?{query}"),
        None => key.to_owned(),
    };
    Ok(RtmpUrl {
        tls,
        host: host.to_owned(),
        port,
        app: app.to_owned(),
        stream_key,
        tc_url: format!("{}://{authority}/{app}", scheme.to_ascii_lowercase()),
    })
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), RtmpError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or(RtmpError::InvalidUrl("unclosed ["))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or(RtmpError::InvalidUrl("junk after ]"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(RtmpError::InvalidUrl("empty host"));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let url = parse_rtmp_url("rtmp://live.example.com/app/key").unwrap();
        assert_eq!(
            url,
            RtmpUrl {
                tls: false,
                host: "live.example.com".into(),
                port: 1935,
                app: "app".into(),
                stream_key: "key".into(),
                tc_url: "rtmp://live.example.com/app".into(),
            }
        );
        let url = parse_rtmp_url("rtmps://h.example:8443/live/sub/abc?token=x/y").unwrap();
        assert!(url.tls);
        assert_eq!(
            (url.port, url.app.as_str(), url.stream_key.as_str()),
            (8443, "live/sub", "abc?token=x/y")
        );
        assert_eq!(url.tc_url, "rtmps://h.example:8443/live/sub");
        assert_eq!(parse_rtmp_url("RTMPS://h/a/k").unwrap().port, 443);
        let v6 = parse_rtmp_url("rtmp://[::1]:1940/a/k").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 1940));
    }

    #[test]
    fn refuses_malformed_urls() {
        for bad in [
            "http://h/a/k",
            "rtmp://h",
            "rtmp://h/app",
            "rtmp://h/app/",
            "rtmp:///app/k",
            "rtmp://h:0/a/k",
            "rtmp://h:99999/a/k",
            "rtmp://h:x/a/k",
            "rtmp://u:p@h/a/k",
            "rtmp://h//k",
            "rtmp://[::1/a/k",
            "rtmp://h/a//k",
            "",
        ] {
            assert!(parse_rtmp_url(bad).is_err(), "{bad}");
        }
    }
}
