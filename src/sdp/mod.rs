//! Peers: one str0m `Rtc` per stream (WCS uses one peer connection per stream), negotiated on
//! the control thread and then owned by the worker that owns the stream.

mod answer_fixup;
pub mod negotiate;
pub mod rtx_history;
pub mod sdp_scan;

pub use negotiate::{
    negotiate_player, negotiate_publisher, Negotiated, NegotiationError, PeerEnv, StreamTracks, TrackCodec,
};
pub use str0m::config::DtlsCert;

/// Install str0m's crypto backend (aws-lc-rs) as the process default; idempotent.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// The DTLS certificate every peer of this process presents.
pub fn generate_dtls_cert() -> Result<DtlsCert, String> {
    str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .ok_or_else(|| "DTLS certificate generation failed".to_owned())
}
