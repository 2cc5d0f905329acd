//! Reading one HTTP/1.1 request off a keep-alive connection, for the small real backends and
//! receivers the tests run (hooks, webhooks): the path, the headers (names lowercased) and the
//! body of its `Content-Length`; and the signature such a request carries.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

pub struct HttpRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first header of that (lowercase) name, trimmed, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The lowercase hex HMAC-SHA256 of `body` under `key`: what a signed request's
/// `Authorization: HMAC-SHA256 <hex>` must carry.
pub fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    webcall::rtmp::hmac_sha256(key, &[body])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The next request, or None when the connection ends first.
pub async fn read_request<R: AsyncBufRead + Unpin>(read: &mut R) -> Option<HttpRequest> {
    let mut line = String::new();
    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if read.read_line(&mut header).await.unwrap_or(0) == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    read.read_exact(&mut body).await.ok()?;
    Some(HttpRequest { path, headers, body })
}
