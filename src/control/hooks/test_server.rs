//! A tiny HTTP/1.1 backend for the hook tests: it listens on 127.0.0.1:0 (plain or TLS),
//! parses each keep-alive request by hand, records it, and answers what the test's handler
//! says, after the handler's delay. It counts accepted connections, so tests can tell reuse.
//!
//! Thread: the test's tokio current-thread runtime; the accept loop and each connection are
//! tasks in one `JoinSet` that is aborted when the server is dropped.
//!
//! Invariants: requests carry a `Content-Length` (the hook client always sends one); answers
//! carry one too unless the reply asks to be close-delimited.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub(super) struct Received {
    pub path: String,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// No `Content-Length`: the body ends when the server closes the connection.
    pub close_delimited: bool,
    /// Answer only once this is notified (after `delay`).
    pub gate: Option<Arc<Notify>>,
}

impl Reply {
    pub fn raw(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            body: body.into(),
            delay: Duration::ZERO,
            close_delimited: false,
            gate: None,
        }
    }

    pub fn json(status: u16, value: Value) -> Self {
        Reply::raw(status, value.to_string())
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn gated(mut self, gate: Arc<Notify>) -> Self {
        self.gate = Some(gate);
        self
    }

    pub fn close_delimited(mut self) -> Self {
        self.close_delimited = true;
        self
    }
}

type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

pub(super) struct TestServer {
    pub addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl TestServer {
    pub async fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(Arc::new(handler), None).await
    }

    pub async fn start_tls(
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
        config: rustls::ServerConfig,
    ) -> Self {
        Self::start_with(Arc::new(handler), Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(handler: Handler, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let (accepts2, received2, tasks2) = (accepts.clone(), received.clone(), tasks.clone());
        tasks.lock().unwrap().spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                accepts2.fetch_add(1, Ordering::SeqCst);
                let (handler, received, tls) = (handler.clone(), received2.clone(), tls.clone());
                tasks2.lock().unwrap().spawn(async move {
                    match tls {
                        None => serve(tcp, handler, received).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, handler, received).await;
                            }
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            accepts,
            received,
            tasks,
        }
    }

    /// The hook base URL on this server.
    pub fn url(&self) -> String {
        format!("http://{}/apps/app", self.addr)
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.abort_all();
        }
    }
}

/// Serves requests on one connection until the client closes it.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    handler: Handler,
    log: Arc<Mutex<Vec<Received>>>,
) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let request = Received { path, headers, body };
        let reply = handler(&request);
        log.lock().unwrap().push(request);
        tokio::time::sleep(reply.delay).await;
        if let Some(gate) = &reply.gate {
            gate.notified().await;
        }
        let reason = hyper::StatusCode::from_u16(reply.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Unknown");
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\n",
            reply.status
        );
        if reply.close_delimited {
            head.push_str("Connection: close\r\n\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
        }
        let out = stream.get_mut();
        if out.write_all(head.as_bytes()).await.is_err() || out.write_all(&reply.body).await.is_err() {
            return;
        }
        if out.flush().await.is_err() || reply.close_delimited {
            let _ = out.shutdown().await;
            return;
        }
    }
}

/// A self-signed certificate for 127.0.0.1: the server's TLS config and the root that
/// trusts it.
pub(super) fn self_signed() -> (rustls::ServerConfig, rustls::RootCertStore) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    (config, roots)
}
