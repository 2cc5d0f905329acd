//! The RTMP bridge's settings: its listen addresses (an address, or `off`) and its B-frame
//! policy, with the parsing the command line and the TOML file share.
//!
//! Parsed once at start-up. Invariant: `off` and an address are the only listen values.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::Deserialize;

/// Where the RTMP listener binds by default (the port every encoder assumes).
pub const RTMP_DEFAULT: &str = "0.0.0.0:1935";
/// Opus bitrate of an encoder's audio in rooms: music over RTMP deserves more than the
/// 64 kbit/s peers default to.
pub const RTMP_OPUS_KBPS_DEFAULT: u32 = 96;
/// libopus's own bounds.
pub const RTMP_OPUS_KBPS_RANGE: std::ops::RangeInclusive<u32> = 6..=510;
/// RTMP connections one client address may hold: an encoder with a few players or pushes;
/// a load test from one host raises it.
pub const RTMP_CONNECTIONS_PER_IP_DEFAULT: usize = 32;

/// A listen address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListenSetting(pub Option<SocketAddr>);

impl FromStr for ListenSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(ListenSetting(None));
        }
        s.parse()
            .map(|addr| ListenSetting(Some(addr)))
            .map_err(|_| format!("'{s}' is neither an address (0.0.0.0:1935) nor 'off'"))
    }
}

impl TryFrom<String> for ListenSetting {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// What an encoder's B-frames get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum BframePolicy {
    /// The publish fails with the reason (browsers' WebRTC decoders do not reorder).
    Reject,
    /// Pictures go out in decode order with their presentation times.
    Pass,
}

impl FromStr for BframePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reject" => Ok(BframePolicy::Reject),
            "pass" => Ok(BframePolicy::Pass),
            other => Err(format!("'{other}' is not reject or pass")),
        }
    }
}

impl TryFrom<String> for BframePolicy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for BframePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BframePolicy::Reject => "reject",
            BframePolicy::Pass => "pass",
        })
    }
}
