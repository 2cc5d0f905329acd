//! A synthetic RTMP encoder for measurements: the simple handshake, `connect`,
//! `createStream`, `publish`, then 30 fps of generated H.264 (a keyframe every second) in FLV
//! video tags. Each picture carries an SEI NAL unit with its send instant (nanoseconds since
//! [`stamp::epoch`]), which the server forwards untouched in its own RTP packet, so a WebRTC
//! player in the same process reads the RTMP-to-WebRTC delay off each picture.
//!
//! Runs on the load generator's tokio runtime. Invariant: one picture per 33 ms tick, sent
//! whole (a slow server makes the ticks late, never skipped silently: the send time is read
//! when the tag is written).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Result;
use crate::media::{h264, stamp};
use crate::rtmp_play::{
    amf_number, amf_string, connect_and_create, connect_handshaken, message, message_chunked, PlayUrl,
};

/// The SEI's user-data UUID, so a reader knows the stamp is ours.
pub const SEI_UUID: [u8; 16] = *b"webcall-latency!";
const CHUNK_BYTES: usize = 4096;
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
const FRAMES_PER_KEYFRAME: u32 = 30;

/// The SEI NAL unit (user data unregistered) carrying `nanos`.
pub fn stamp_sei(nanos: u64) -> Vec<u8> {
    let mut sei = vec![0x06, 0x05, 24];
    sei.extend_from_slice(&SEI_UUID);
    sei.extend_from_slice(&nanos.to_be_bytes());
    sei.push(0x80);
    sei
}

/// The send instant in an RTP payload that is one of our SEI NAL units.
pub fn read_sei_stamp(payload_head: &[u8]) -> Option<Duration> {
    let body = payload_head.strip_prefix(&[0x06, 0x05, 24])?;
    let rest = body.strip_prefix(&SEI_UUID[..])?;
    let nanos = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some(Duration::from_nanos(nanos))
}

fn avc_picture(keyframe: bool, nals: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    for nal in nals {
        body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        body.extend_from_slice(nal);
    }
    body
}

fn sequence_header(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut body = vec![0x17, 0, 0, 0, 0, 1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    body.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    body.extend_from_slice(sps);
    body.push(1);
    body.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    body.extend_from_slice(pps);
    body
}

/// Publish synthetic stamped H.264 to `url` for `duration`.
pub async fn publish_for(url: &PlayUrl, duration: Duration) -> Result<u64> {
    let mut socket = connect_handshaken(url).await?;
    let (connect, create) = connect_and_create(url);
    let mut out = message(1, 0, &(CHUNK_BYTES as u32).to_be_bytes());
    out.extend(message_chunked(20, 0, 0, &connect, CHUNK_BYTES));
    out.extend(message_chunked(20, 0, 0, &create, CHUNK_BYTES));
    socket.write_all(&out).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut publish = Vec::new();
    amf_string(&mut publish, "publish");
    amf_number(&mut publish, 3.0);
    publish.push(0x05);
    amf_string(&mut publish, &url.name);
    amf_string(&mut publish, "live");
    socket
        .write_all(&message_chunked(20, 1, 0, &publish, CHUNK_BYTES))
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Drain what the server says, so its window never fills.
    let (mut reader, mut writer) = socket.into_split();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    let (sps, pps) = (h264::sps(320, 240), h264::pps());
    writer
        .write_all(&message_chunked(
            9,
            1,
            0,
            &sequence_header(&sps, &pps),
            CHUNK_BYTES,
        ))
        .await?;
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(FRAME_INTERVAL);
    let mut frame: u32 = 0;
    while start.elapsed() < duration {
        tick.tick().await;
        let keyframe = frame.is_multiple_of(FRAMES_PER_KEYFRAME);
        let nanos = stamp::epoch().elapsed().as_nanos() as u64;
        let slice = h264::slice(
            keyframe,
            frame % FRAMES_PER_KEYFRAME,
            frame / FRAMES_PER_KEYFRAME,
            3000,
            frame,
        );
        let body = avc_picture(keyframe, &[stamp_sei(nanos), slice]);
        let ms = start.elapsed().as_millis() as u32;
        writer
            .write_all(&message_chunked(9, 1, ms, &body, CHUNK_BYTES))
            .await?;
        frame += 1;
    }
    drain.abort();
    Ok(u64::from(frame))
}
