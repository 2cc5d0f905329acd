//! SDP negotiation: one str0m `Rtc` per stream (WCS uses one peer connection per stream),
//! negotiated on the control thread from the client's offer and then moved to the worker that
//! owns the stream, plus the send-history settings a player's `Rtc` gets.
//!
//! Sans-IO and free of worker types: nothing here knows which thread will run the `Rtc`.

mod answer_fixup;
pub mod negotiate;
mod offer_fixup;
mod rejected;
pub mod rtx_history;
pub mod sdp_scan;

#[cfg(test)]
mod offers_tests;

pub use negotiate::{
    negotiate_player, negotiate_publisher, set_rtx_history, Negotiated, NegotiationError, PeerEnv,
    StreamTracks, TrackCodec,
};
pub use str0m::config::DtlsCert;

/// Install str0m's crypto backend (aws-lc-rs) as the process default; idempotent.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// The DTLS certificate could not be made (the crypto backend refused).
#[derive(Debug, thiserror::Error)]
#[error("DTLS certificate generation failed")]
pub struct DtlsCertError;

/// The DTLS certificate every peer of this process presents.
pub fn generate_dtls_cert() -> Result<DtlsCert, DtlsCertError> {
    str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .ok_or(DtlsCertError)
}
