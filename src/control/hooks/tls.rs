//! The hook client's connector: plain TCP for `http://`, rustls (aws-lc-rs provider, TLS 1.2
//! and 1.3, HTTP/1.1 by ALPN) for `https://`, trusting the operating system's roots.
//!
//! The roots come from `rustls-native-certs` rather than a compiled-in Mozilla list: hook
//! backends are usually the operator's own services, often behind a private CA that is
//! installed in the system store (or named by `SSL_CERT_FILE` / `SSL_CERT_DIR`), and the
//! system store is updated with the OS rather than with a webcall rebuild.
//!
//! Thread: built once at setup; the connector then runs inside hyper-util's pool on the
//! runtime that awaits the calls (webcall's control thread, tokio current-thread).
//!
//! Invariants: the crypto provider is given explicitly, so nothing depends on a process-wide
//! default provider being installed; roots are loaded only for an `https://` URL, and setup
//! fails when none can be loaded rather than failing every call later.

use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;

use super::HookSetupError;

pub(crate) type Connector = HttpsConnector<HttpConnector>;

/// The operating system's trusted roots; an error when none load.
pub(crate) fn native_roots() -> Result<RootCertStore, HookSetupError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(loaded.certs);
    if roots.is_empty() {
        return Err(HookSetupError::NoRootCertificates {
            errors: loaded
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(roots)
}

/// A connector for `http://` and `https://` URIs, trusting `roots` for the latter.
pub(crate) fn connector(roots: RootCertStore) -> Result<Connector, HookSetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(HookSetupError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    // Requests are a few hundred bytes, sent in one write; waiting for an ACK only adds delay.
    tcp.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp))
}
