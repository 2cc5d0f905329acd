//! The attacks' sockets: TCP from a chosen loopback address, a raw WebSocket upgrade whose
//! refusal is kept (status and body), the first protocol steps of a raw session (which then
//! need not be read again), and `GET /health`.
//!
//! Every call is bounded by a deadline its caller gives; nothing the server sends is trusted
//! to be well-formed (a bad answer is an `Error`, never a panic).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::error::{Error, Result};
use crate::wcs::incoming::{self, ServerMessage};
use crate::wcs::messages::{self, ConnectionOptions};

/// A WebSocket over plain TCP, read only when its owner wants.
pub type RawWs = WebSocketStream<TcpStream>;

/// Most bytes of a `/health` answer read (it is a few hundred bytes of JSON).
const HEALTH_BYTES_MAX: u64 = 1 << 20;

/// Connects to `server` from `local` (port chosen at connect, so that one source address can
/// hold as many connections as the server has ports, not only as many as it has free ports).
/// `recv_buffer` sets `SO_RCVBUF` first: a small one makes a client that does not read close
/// its TCP window after a few kilobytes instead of the kernel's autotuned megabytes.
pub async fn tcp_from(
    local: Ipv4Addr,
    server: SocketAddr,
    recv_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a c_int option value of the given size.
    // IP_BIND_ADDRESS_NO_PORT only defers the port choice; failing to set it is harmless.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    socket.bind(SocketAddr::new(IpAddr::V4(local), 0))?;
    socket.connect(server).await
}

/// What a WebSocket upgrade got.
#[derive(Debug)]
pub enum Upgrade {
    /// `101`: an open session.
    Accepted(Box<RawWs>),
    /// Any other status, with what came of the body in the same read (the server's `{"error"}`).
    Refused {
        /// HTTP status.
        status: u16,
        /// Body text (may be empty or cut short).
        body: String,
    },
}

/// Upgrades a new connection from `local` to a WebSocket at `/`, with an `Origin` header when
/// given; a non-101 answer is [`Upgrade::Refused`], a failure to connect or read an `Error`.
pub async fn upgrade(
    local: Ipv4Addr,
    server: SocketAddr,
    origin: Option<&str>,
    recv_buffer: Option<u32>,
    timeout: Duration,
) -> Result<Upgrade> {
    let attempt = async {
        let mut request = format!("ws://{server}/").into_client_request()?;
        if let Some(origin) = origin {
            let value = HeaderValue::from_str(origin)
                .map_err(|e| Error::InvalidArgument(format!("origin {origin:?}: {e}")))?;
            request.headers_mut().insert("Origin", value);
        }
        let tcp = tcp_from(local, server, recv_buffer).await?;
        match tokio_tungstenite::client_async(request, tcp).await {
            Ok((ws, _response)) => Ok(Upgrade::Accepted(Box::new(ws))),
            Err(tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                Ok(Upgrade::Refused {
                    status: response.status().as_u16(),
                    body: String::from_utf8_lossy(body).into_owned(),
                })
            }
            Err(e) => Err(e.into()),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| Error::timeout(format!("WebSocket upgrade from {local}"), timeout))?
}

/// The `error` text of a refusal's JSON body, when it has one.
pub fn refusal_error(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body.trim()).ok()?;
    v.get("error")?.as_str().map(str::to_owned)
}

/// Reads frames until `pick` takes one, the socket ends, or `timeout` passes.
pub async fn read_until<T>(
    ws: &mut RawWs,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(ServerMessage) -> Option<T>,
) -> Result<T> {
    let read = async {
        while let Some(frame) = ws.next().await {
            if let Message::Text(text) = frame? {
                if let Ok(message) = incoming::parse(text.as_str()) {
                    if let Some(found) = pick(message) {
                        return Ok(found);
                    }
                }
            }
        }
        Err(Error::Closed(Some(format!("socket ended before {what}"))))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Error::timeout(what, timeout))?
}

/// Sends `connection` as `login` and waits for `getUserData`; then, with a room, sends `join`
/// and waits for its acknowledgement (`FAILED` is `Error::Refused`). What the server sends
/// after that stays unread.
pub async fn establish(ws: &mut RawWs, login: &str, room: Option<&str>, timeout: Duration) -> Result<()> {
    let connection = messages::connection(&ConnectionOptions::room(login));
    ws.send(Message::text(connection)).await?;
    read_until(ws, timeout, "getUserData", |m| {
        matches!(m, ServerMessage::GetUserData(_)).then_some(())
    })
    .await?;
    let Some(room) = room else {
        return Ok(());
    };
    let op = uuid::Uuid::new_v4().to_string();
    ws.send(Message::text(messages::join(&op, room))).await?;
    let ack = read_until(ws, timeout, "the join's DataStatusEvent", |m| match m {
        ServerMessage::DataStatus(ack) if ack.operation_id == op => Some(ack),
        _ => None,
    })
    .await?;
    if ack.accepted {
        Ok(())
    } else {
        Err(Error::Refused {
            command: "join".into(),
            info: ack.info.unwrap_or_default(),
        })
    }
}

/// `GET /health` from 127.0.0.1 on a fresh connection: the JSON body of a 200 answer.
pub async fn get_health(server: SocketAddr, timeout: Duration) -> Result<Value> {
    let exchange = async {
        let mut tcp = TcpStream::connect(server).await?;
        let request = format!("GET /health HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        tcp.take(HEALTH_BYTES_MAX).read_to_end(&mut response).await?;
        Ok::<_, Error>(response)
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Error::timeout("GET /health", timeout))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| Error::Protocol(format!("GET /health: not an HTTP answer: {text:.200}")))?;
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        return Err(Error::Protocol(format!("GET /health answered {head:.200}")));
    }
    Ok(serde_json::from_str(body.trim())?)
}
