//! The simulation's crypto provider: str0m's own (aws-lc-rs) for everything, except that each
//! DTLS instance is dimpl with a seeded random generator. dimpl draws the jitter of its
//! handshake retransmission timers from that generator, so without a seed a lost flight is
//! resent at a different virtual instant on every run and no trace would replay. The seed
//! also fixes dimpl's AEAD explicit nonces: acceptable in a simulation, never in the server.
//! Installed as the process default before any `Rtc` is made (each test binary is its own
//! process, so this never reaches another test).

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};
use str0m::crypto::{CryptoError, CryptoProvider};

thread_local! {
    /// Seeds handed to this thread's DTLS instances, in creation order (a run makes its
    /// `Rtc`s on its test's thread, in a deterministic order). Reset per run by [`reset`].
    static NEXT_SEED: Cell<u64> = const { Cell::new(1) };
}

/// Start this thread's sequence of DTLS seeds again (at the start of a run).
pub fn reset(seed: u64) {
    NEXT_SEED.with(|next| next.set(seed));
}

#[derive(Debug)]
struct SeededDtls;

impl DtlsProvider for SeededDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        dimpl::certificate::generate_self_signed_certificate().ok()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let seed = NEXT_SEED.with(|next| {
            let seed = next.get();
            next.set(seed.wrapping_add(0x9e37_79b9));
            seed
        });
        // As str0m's aws-lc-rs provider builds it: ICE checks return routability first.
        let mut builder = dimpl::Config::builder()
            .use_server_cookie(false)
            .dangerously_set_rng_seed(seed);
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        let config = Arc::new(builder.build().map_err(|e| CryptoError::Other(e.to_string()))?);
        let dtls = match version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert.clone(), now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert.clone(), now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert.clone(), now),
            other => return Err(CryptoError::Other(format!("unsupported DTLS version {other}"))),
        };
        Ok(Box::new(Seeded { dtls }))
    }
}

struct Seeded {
    dtls: dimpl::Dtls,
}

impl std::fmt::Debug for Seeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeededDtls")
    }
}

impl DtlsInstance for Seeded {
    fn set_active(&mut self, active: bool) {
        self.dtls.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.dtls.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.dtls.poll_output(buf)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.dtls.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.dtls.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.dtls.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.dtls.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.dtls.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.dtls.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.dtls.close()
    }
}

/// Install the provider (idempotent; must come before any other install in the process).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut provider: CryptoProvider = str0m::crypto::from_feature_flags();
        provider.dtls_provider = &SeededDtls;
        provider.install_process_default();
    });
    let installed = CryptoProvider::get_default().map(|p| format!("{:?}", p.dtls_provider));
    assert_eq!(
        installed.as_deref(),
        Some("SeededDtls"),
        "another crypto provider was installed first"
    );
}
