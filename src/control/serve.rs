//! The accept loops of HTTP and HTTPS: each connection is admitted (or closed at once), given a
//! deadline for its request headers and for a TLS handshake, and served the router with its
//! client's address. Control thread.
//!
//! Invariants: a connection's [`ConnectionTicket`] lives exactly as long as its HTTP exchange
//! (a WebSocket's session takes its own ticket at the upgrade), which ends when the ticket says
//! it was evicted; no connection waits for its
//! headers longer than [`HTTP_HEADER_READ_TIMEOUT`], on a new connection or between keep-alive
//! requests; an `accept` that fails (descriptors spent) backs off instead of spinning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::admission::{Admission, ConnectionTicket};

/// A client has this long to send a request's headers (slowloris), and to finish a TLS
/// handshake; the same bound applies to a keep-alive connection waiting for its next request.
pub const HTTP_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's handler, its body read included, must finish within this long; a body trickled
/// slower is cut off. (A response body, a recording being downloaded, is not bounded by it.)
pub const HTTP_REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// How long the accept loop waits after `accept` fails (descriptors spent) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve plain HTTP forever.
pub async fn http(listener: TcpListener, router: axum::Router, admission: Arc<Admission>) {
    accept_loop(listener, admission, move |stream, remote, ticket| {
        let router = router.clone();
        tokio::spawn(serve_connection(stream, remote, router, ticket));
    })
    .await
}

/// Serve HTTPS forever.
pub async fn https(
    listener: TcpListener,
    tls: Arc<super::tls::TlsLive>,
    router: axum::Router,
    admission: Arc<Admission>,
) {
    accept_loop(listener, admission, move |stream, remote, ticket| {
        // The certificate in effect now (SIGHUP may have replaced it).
        let (acceptor, router) = (TlsAcceptor::from(tls.https.get()), router.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HTTP_HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%remote, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            serve_connection(tls, remote, router, ticket).await;
        });
    })
    .await
}

async fn accept_loop(
    listener: TcpListener,
    admission: Arc<Admission>,
    mut serve: impl FnMut(TcpStream, SocketAddr, ConnectionTicket),
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Refused: dropping the stream closes it before a byte is read.
        if let Some(ticket) = admission.connection(remote.ip()) {
            let _ = stream.set_nodelay(true);
            serve(stream, remote, ticket);
        }
    }
}

async fn serve_connection<I>(io: I, remote: SocketAddr, router: axum::Router, ticket: ConnectionTicket)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Handlers that need the client's address (the admin rule, the per-address caps) read it
    // as `ConnectInfo`.
    let service = TowerToHyperService::new(router.layer(axum::Extension(ConnectInfo(remote))));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP_HEADER_READ_TIMEOUT);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::select! {
        ended = connection => {
            if let Err(error) = ended {
                tracing::debug!(%remote, %error, "http connection ended");
            }
        }
        // At the descriptor budget a newer connection took this one's place.
        _ = ticket.evicted() => {}
    }
    drop(ticket);
}

/// Middleware: a handler that takes longer than [`HTTP_REQUEST_DEADLINE`] (a body trickled in
/// slowly) is answered 408 and its connection freed.
pub async fn request_deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(HTTP_REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => super::rest::error(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "The request took too long to arrive",
        )
        .into_response(),
    }
}
