//! TLS for `--https`: the configured certificate, or a self-signed one generated once into the
//! data directory (`serve.rs` accepts the connections). Control thread.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;

use super::live::Live;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("TLS file {0} holds no certificate or key")]
    Empty(PathBuf),
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The server configuration for `--https`.
/// The TLS settings in effect for HTTPS and for RTMPS (the same certificate; RTMPS without
/// ALPN). SIGHUP replaces both; each new connection takes the current one.
pub struct TlsLive {
    pub https: Live<rustls::ServerConfig>,
    pub rtmps: Live<rustls::ServerConfig>,
}

impl TlsLive {
    pub fn new(server: rustls::ServerConfig) -> Self {
        let (https, rtmps) = Self::split(server);
        TlsLive {
            https: Live::new(https),
            rtmps: Live::new(rtmps),
        }
    }

    pub fn set(&self, server: rustls::ServerConfig) {
        let (https, rtmps) = Self::split(server);
        self.https.set(https);
        self.rtmps.set(rtmps);
    }

    fn split(server: rustls::ServerConfig) -> (rustls::ServerConfig, rustls::ServerConfig) {
        let mut rtmps = server.clone();
        rtmps.alpn_protocols.clear();
        (server, rtmps)
    }
}

pub fn server_config(config: &Config) -> Result<rustls::ServerConfig, TlsError> {
    let (cert_path, key_path) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => self_signed(&config.data_dir, config)?,
    };
    let certs = read_pem(&cert_path, |reader| {
        rustls_pemfile::certs(reader).collect::<Result<Vec<CertificateDer<'static>>, _>>()
    })?;
    let key = read_pem(&key_path, |reader| rustls_pemfile::private_key(reader))?
        .ok_or_else(|| TlsError::Empty(key_path.clone()))?;
    if certs.is_empty() {
        return Err(TlsError::Empty(cert_path));
    }
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(server)
}

fn read_pem<T>(
    path: &Path,
    parse: impl FnOnce(&mut &[u8]) -> Result<T, std::io::Error>,
) -> Result<T, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.into(),
        source,
    })?;
    parse(&mut bytes.as_slice()).map_err(|source| TlsError::Io {
        path: path.into(),
        source,
    })
}

/// `DATA_DIR/tls/{cert,key}.pem`, generated on first use.
fn self_signed(data_dir: &Path, config: &Config) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(&dir).map_err(|source| TlsError::Io {
        path: dir.clone(),
        source,
    })?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        config.media_ip.to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Setup(e.to_string()))?;
    std::fs::write(&cert_path, certified.cert.pem()).map_err(|source| TlsError::Io {
        path: cert_path.clone(),
        source,
    })?;
    write_private(&key_path, certified.key_pair.serialize_pem().as_bytes())?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TlsError::Io {
            path: path.into(),
            source,
        })?;
    file.write_all(bytes).map_err(|source| TlsError::Io {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn generates_and_reuses_a_self_signed_certificate() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("webcall-tls-{}", std::process::id()));
        let mut config = crate::config::Config::from_cli(crate::config::Cli::default()).unwrap();
        config.data_dir = dir.clone();
        assert!(super::server_config(&config).is_ok());
        let first = std::fs::read(dir.join("tls/cert.pem")).unwrap();
        assert!(super::server_config(&config).is_ok());
        assert_eq!(first, std::fs::read(dir.join("tls/cert.pem")).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
