//! SDP negotiation for one stream's peer connection: choose codecs, build the str0m `Rtc`
//! (ICE-lite, RTP mode, DTLS-SRTP, BUNDLE, rtcp-mux) and produce the answer.
//!
//! Runs on the control thread when `publishStream`/`playStream` arrive; the finished `Rtc` then
//! moves to the worker that owns the stream. Codecs are never transcoded: a publisher's answer
//! keeps exactly one video and one audio codec (the first the offer prefers among H.264
//! packetization-mode 1, VP8, Opus, PCMU, PCMA), and a player's answer keeps exactly the
//! publisher's codecs at the player's own payload types, or the play fails with
//! `No common codecs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, IceCreds, Rtc};

use super::answer_fixup::move_candidates_to_accepted_section;
use super::offer_fixup::{accept_bundle_only, narrow_directions, Flow};
use super::rejected::describe_rejected_sections;
use super::rtx_history::{RTX_HISTORY_MIN, RTX_HISTORY_PACKETS_MAX};
use super::sdp_scan::{scan_offer, OfferCodec, OfferSection, SdpScanError, SectionDirection, SectionKind};

/// How often a player's `Rtc` reports its send statistics, whose receiver-report round trip
/// sizes the player's retransmission history ([`super::rtx_history`]). Browsers send a
/// receiver report about once a second.
pub const PLAYER_STATS_INTERVAL: Duration = Duration::from_secs(1);
/// str0m's own default: stop resending when retransmissions pass this share of what is sent.
const RTX_RATIO_CAP: Option<f32> = Some(0.15);

/// What every new `Rtc` shares: the worker's announced UDP address and the process's DTLS
/// certificate (generated once: making an ECDSA key per peer would cost the control thread).
#[derive(Clone)]
pub struct PeerEnv {
    pub candidate: SocketAddr,
    pub dtls_cert: DtlsCert,
}

/// One negotiated track: which m-line and which payload type carry it on this peer.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackCodec {
    pub kind: MediaKind,
    pub mid: Mid,
    pub pt: Pt,
    pub rtx_pt: Option<Pt>,
    /// Upper-cased encoding name from the SDP, e.g. `H264`.
    pub name: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    pub fmtp: String,
}

/// The tracks of a negotiated peer: a publisher's incoming or a player's outgoing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamTracks {
    pub video: Option<TrackCodec>,
    pub audio: Option<TrackCodec>,
}

pub struct Negotiated {
    pub rtc: Rtc,
    pub answer_sdp: String,
    /// Our ICE ufrag: the worker's demultiplexer finds this peer by it.
    pub local_ufrag: String,
    pub tracks: StreamTracks,
}

/// Why an offer could not be negotiated. The `Display` text is for logs: it may quote str0m's
/// parser, whose messages carry internal detail (offsets, pointer values), so clients get the
/// directory's refusal text for each variant instead (`control/directory/refusal.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("offer scan: {0}")]
    Sdp(#[from] SdpScanError),
    #[error("no common codecs")]
    NoCommonCodecs,
    #[error("str0m could not parse the offer: {0}")]
    Unparsable(String),
    #[error("str0m refused the offer: {0}")]
    Refused(String),
    #[error("the worker's candidate was refused: {0}")]
    Candidate(String),
}

/// Negotiate a publisher's offer.
pub fn negotiate_publisher(offer: &str, env: &PeerEnv, now: Instant) -> Result<Negotiated, NegotiationError> {
    let offer = &narrow_directions(&accept_bundle_only(offer), Flow::FromClient).into_owned();
    let sections = scan_offer(offer)?;
    let pick = |kind: SectionKind, prefer: &dyn Fn(&OfferCodec) -> bool| -> Option<TrackCodec> {
        let section = sections.iter().find(|s| {
            s.kind == kind
                && !s.port_zero
                && s.direction != SectionDirection::RecvOnly
                && s.direction != SectionDirection::Inactive
        })?;
        let codec = section.codecs.iter().find(|c| prefer(c))?;
        track_for(section, codec)
    };
    let video = pick(SectionKind::Video, &|c| is_supported_video(c));
    let audio = pick(SectionKind::Audio, &|c| is_supported_audio(c));
    if video.is_none() && audio.is_none() {
        return Err(NegotiationError::NoCommonCodecs);
    }
    build(offer, env, now, StreamTracks { video, audio }, Direction::Publish)
}

/// Negotiate a player's offer for a stream whose publisher negotiated `source`.
pub fn negotiate_player(
    offer: &str,
    source: &StreamTracks,
    env: &PeerEnv,
    now: Instant,
) -> Result<Negotiated, NegotiationError> {
    let offer = &narrow_directions(&accept_bundle_only(offer), Flow::ToClient).into_owned();
    let sections = scan_offer(offer)?;
    let matching =
        |kind: SectionKind, wanted: &Option<TrackCodec>| -> Result<Option<TrackCodec>, NegotiationError> {
            let Some(wanted) = wanted else {
                return Ok(None);
            };
            let receives = |s: &&OfferSection| s.direction == SectionDirection::RecvOnly;
            let Some(section) = sections
                .iter()
                .filter(receives)
                .find(|s| s.kind == kind && !s.port_zero)
            else {
                return Ok(None);
            };
            let codec = section
                .codecs
                .iter()
                .find(|c| same_codec(c, wanted))
                .or_else(|| section.codecs.iter().find(|c| decodes_h264_profile(c, wanted)))
                .ok_or(NegotiationError::NoCommonCodecs)?;
            Ok(track_for(section, codec))
        };
    let video = matching(SectionKind::Video, &source.video)?;
    let audio = matching(SectionKind::Audio, &source.audio)?;
    if video.is_none() && audio.is_none() {
        return Err(NegotiationError::NoCommonCodecs);
    }
    build(offer, env, now, StreamTracks { video, audio }, Direction::Play)
}

/// Which way media flows on the peer connection being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// The browser sends: it estimates its bandwidth from our transport-wide feedback.
    Publish,
    /// We send: nothing here estimates bandwidth, so transport-wide sequence numbers are not
    /// negotiated (str0m would otherwise log 1000 sent packets per player, about 75 KiB).
    Play,
}

/// str0m's standard header extensions, without transport-wide congestion control for players.
fn extension_map(direction: Direction) -> ExtensionMap {
    let standard = ExtensionMap::standard();
    let mut map = ExtensionMap::empty();
    for (id, extension) in standard.iter() {
        let congestion_control = *extension == Extension::TransportSequenceNumber;
        if !(congestion_control && direction == Direction::Play) {
            map.set(id, extension.clone());
        }
    }
    map
}

fn is_supported_video(codec: &OfferCodec) -> bool {
    match codec.name.as_str() {
        "VP8" => codec.clock_rate == 90_000,
        // Mode 0 (single NAL units only) cannot carry a browser's large frames through us.
        "H264" => codec.clock_rate == 90_000 && codec.fmtp_param("packetization-mode") == Some("1"),
        _ => false,
    }
}

fn is_supported_audio(codec: &OfferCodec) -> bool {
    matches!(
        (codec.name.as_str(), codec.clock_rate),
        ("OPUS", 48_000) | ("PCMU", 8_000) | ("PCMA", 8_000)
    )
}

/// An H.264 profile as `profile-level-id` names it (RFC 6184 §8.1: `profile_idc` and the
/// constraint flags of `profile-iop`; the level is left aside). Constrained baseline has three
/// spellings (`42e0`, `42c0` from GStreamer's x264, `4240`, `4d80`, `58c0`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum H264Profile {
    ConstrainedBaseline,
    Baseline,
    Main,
    ConstrainedHigh,
    High,
    High444,
}

fn h264_profile(codec: &OfferCodec) -> Option<H264Profile> {
    let plid = codec.fmtp_param("profile-level-id")?;
    let byte = |at: usize| plid.get(at..at + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
    let (profile_idc, iop) = (byte(0)?, byte(2)?);
    Some(match profile_idc {
        0x42 if iop & 0x40 != 0 => H264Profile::ConstrainedBaseline,
        0x42 => H264Profile::Baseline,
        0x4d if iop & 0x80 != 0 => H264Profile::ConstrainedBaseline,
        0x4d => H264Profile::Main,
        0x58 if iop & 0xc0 == 0xc0 => H264Profile::ConstrainedBaseline,
        0x58 if iop & 0xc0 == 0x80 => H264Profile::Baseline,
        0x64 if iop == 0x0c => H264Profile::ConstrainedHigh,
        0x64 => H264Profile::High,
        0xf4 => H264Profile::High444,
        _ => return None,
    })
}

/// Whether a decoder of profile `decoder` decodes a stream of profile `stream`: constrained
/// baseline is what every other profile's decoder also decodes; baseline's own tools (FMO,
/// ASO) only a baseline decoder has; main by high; constrained high by high; high by high
/// 4:4:4. Chromium offers no plain high profile, only 4:4:4 (`f400`), so a high-profile RTMP
/// encoder's stream reaches it this way.
fn decodes(decoder: H264Profile, stream: H264Profile) -> bool {
    use H264Profile::*;
    decoder == stream
        || match stream {
            ConstrainedBaseline => true,
            Baseline => false,
            Main | ConstrainedHigh => matches!(decoder, High | High444),
            High => decoder == High444,
            High444 => false,
        }
}

/// Whether a player's offered H.264 (same packetization mode) decodes the publisher's
/// profile, though it names another: the answer then keeps the player's own fmtp.
fn decodes_h264_profile(offered: &OfferCodec, wanted: &TrackCodec) -> bool {
    if offered.name != "H264" || wanted.name != "H264" || offered.clock_rate != wanted.clock_rate {
        return false;
    }
    let wanted_fmtp = OfferCodec {
        fmtp: wanted.fmtp.clone(),
        ..offered.clone()
    };
    let (Some(decoder), Some(stream)) = (h264_profile(offered), h264_profile(&wanted_fmtp)) else {
        return false;
    };
    offered.fmtp_param("packetization-mode") == wanted_fmtp.fmtp_param("packetization-mode")
        && decodes(decoder, stream)
}

/// Whether a player's offered codec can carry the publisher's bytes unchanged.
fn same_codec(offered: &OfferCodec, wanted: &TrackCodec) -> bool {
    if offered.name != wanted.name || offered.clock_rate != wanted.clock_rate {
        return false;
    }
    if offered.name != "H264" {
        return true;
    }
    let wanted_fmtp = OfferCodec {
        fmtp: wanted.fmtp.clone(),
        ..offered.clone()
    };
    offered.fmtp_param("packetization-mode") == wanted_fmtp.fmtp_param("packetization-mode")
        && h264_profile(offered) == h264_profile(&wanted_fmtp)
}

fn track_for(section: &OfferSection, codec: &OfferCodec) -> Option<TrackCodec> {
    let kind = match section.kind {
        SectionKind::Audio => MediaKind::Audio,
        SectionKind::Video => MediaKind::Video,
        SectionKind::Other => return None,
    };
    Some(TrackCodec {
        kind,
        mid: Mid::from(section.mid.as_deref()?),
        pt: Pt::from(codec.pt),
        rtx_pt: (kind == MediaKind::Video)
            .then_some(codec.rtx_pt.map(Pt::from))
            .flatten(),
        name: codec.name.clone(),
        clock_rate: codec.clock_rate,
        channels: codec.channels,
        fmtp: codec.fmtp.clone(),
    })
}

fn str0m_codec(name: &str) -> Option<Codec> {
    Some(match name {
        "VP8" => Codec::Vp8,
        "H264" => Codec::H264,
        "OPUS" => Codec::Opus,
        "PCMU" => Codec::PCMU,
        "PCMA" => Codec::PCMA,
        _ => return None,
    })
}

fn build(
    offer: &str,
    env: &PeerEnv,
    now: Instant,
    tracks: StreamTracks,
    direction: Direction,
) -> Result<Negotiated, NegotiationError> {
    let creds = IceCreds {
        ufrag: random_token(16),
        pass: random_token(32),
    };
    let local_ufrag = creds.ufrag.clone();
    let mut config = Rtc::builder()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_local_ice_credentials(creds)
        .set_dtls_cert(env.dtls_cert.clone())
        .set_extension_map(extension_map(direction))
        .set_stats_interval((direction == Direction::Play).then_some(PLAYER_STATS_INTERVAL))
        .clear_codecs();
    for track in [&tracks.video, &tracks.audio].into_iter().flatten() {
        let codec = str0m_codec(&track.name).ok_or(NegotiationError::NoCommonCodecs)?;
        let clock = match track.clock_rate {
            90_000 => Frequency::NINETY_KHZ,
            48_000 => Frequency::FORTY_EIGHT_KHZ,
            _ => Frequency::EIGHT_KHZ,
        };
        let format = FormatParams::parse_line(&track.fmtp);
        config
            .codec_config()
            .add_config(track.pt, track.rtx_pt, codec, clock, track.channels, format);
    }
    let mut rtc = config.build(now);
    let candidate =
        Candidate::host(env.candidate, "udp").map_err(|e| NegotiationError::Candidate(e.to_string()))?;
    rtc.add_local_candidate(candidate);
    let offer_text = offer;
    let offer = SdpOffer::from_sdp_string(offer).map_err(|e| NegotiationError::Unparsable(e.to_string()))?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| NegotiationError::Refused(e.to_string()))?;
    if direction == Direction::Play {
        for track in [&tracks.video, &tracks.audio].into_iter().flatten() {
            set_rtx_history(&mut rtc, track.mid, RTX_HISTORY_MIN);
        }
    }
    Ok(Negotiated {
        rtc,
        answer_sdp: describe_rejected_sections(
            &move_candidates_to_accepted_section(&answer.to_sdp_string()),
            offer_text,
        ),
        local_ufrag,
        tracks,
    })
}

/// Size the retransmission history of the player's track at `mid` (str0m drops what it held).
/// A track without RTX (audio: Opus is never resent here) keeps no history and no
/// resend-ratio bookkeeping; str0m keeps both by default on every send stream, a second of
/// per-packet byte counts (about 1.5 KB per audio track) updated on every packet sent.
pub fn set_rtx_history(rtc: &mut Rtc, mid: Mid, window: Duration) {
    if let Some(stream) = rtc.direct_api().stream_tx_by_mid(mid, None) {
        match stream.rtx() {
            Some(_) => stream.set_rtx_cache(RTX_HISTORY_PACKETS_MAX, window, RTX_RATIO_CAP),
            None => stream.set_rtx_cache(0, Duration::ZERO, None),
        }
    }
}

/// ICE ufrag/password characters (RFC 8445 ice-char: ALPHA / DIGIT / "+" / "/").
fn random_token(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
#[path = "negotiate_tests.rs"]
mod tests;
