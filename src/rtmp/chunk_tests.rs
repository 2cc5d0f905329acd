//! Tests of chunk reassembly and serialization: chunk sizes, interleaving, header formats,
//! extended timestamps, the peer's Set Chunk Size and Abort, the limits, and byte-at-a-time
//! feeding.

use super::chunk::{ChunkReader, RtmpMessage};
use super::chunk_writer::{ChunkWriter, MessageHeader};
use super::limits::{CHUNK_STREAMS_MAX, MESSAGE_BYTES_MAX};
use super::message::{self, ABORT, AUDIO, SET_CHUNK_SIZE, VIDEO};
use super::RtmpError;

fn header(csid: u32, timestamp: u32, type_id: u8, stream_id: u32) -> MessageHeader {
    MessageHeader {
        csid,
        timestamp,
        type_id,
        stream_id,
    }
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_add(seed)).collect()
}

fn read_all(reader: &mut ChunkReader) -> Result<Vec<RtmpMessage>, RtmpError> {
    let mut out = Vec::new();
    while let Some(msg) = reader.next_message()? {
        out.push(msg);
    }
    Ok(out)
}

/// Bytes announcing `size` with Set Chunk Size, written at the default chunk size.
fn set_chunk_size_bytes(size: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let payload = size.to_be_bytes();
    ChunkWriter::new()
        .write(header(2, 0, SET_CHUNK_SIZE, 0), &payload, &mut out)
        .unwrap();
    out
}

#[test]
fn round_trip_at_each_chunk_size() {
    for size in [128u32, 4096, 65536] {
        let mut bytes = set_chunk_size_bytes(size);
        let mut writer = ChunkWriter::new();
        writer.set_chunk_size(size);
        let messages: Vec<(MessageHeader, Vec<u8>)> = vec![
            (header(4, 0, AUDIO, 1), payload(10, 1)),
            (header(6, 40, VIDEO, 1), payload(200_000, 2)),
            (header(6, 80, VIDEO, 1), Vec::new()),
            (header(300, 81, VIDEO, 1), payload(size as usize, 3)),
            (header(70_000, 82, AUDIO, 1), payload(size as usize + 1, 4)),
        ];
        for (h, p) in &messages {
            writer.write(*h, p, &mut bytes).unwrap();
        }
        let mut reader = ChunkReader::new();
        reader.push(&bytes);
        let got = read_all(&mut reader).unwrap();
        assert_eq!(reader.chunk_size(), size);
        assert_eq!(got.len(), messages.len());
        for (msg, (h, p)) in got.iter().zip(&messages) {
            assert_eq!(
                (msg.csid, msg.timestamp, msg.type_id, msg.stream_id),
                (h.csid.min(65_599), h.timestamp, h.type_id, h.stream_id)
            );
            assert_eq!(&msg.payload, p);
        }
    }
}

#[test]
fn byte_at_a_time_matches_all_at_once() {
    let mut bytes = set_chunk_size_bytes(100);
    let mut writer = ChunkWriter::new();
    writer.set_chunk_size(100);
    writer
        .write(header(6, 0x0100_0000, VIDEO, 1), &payload(450, 9), &mut bytes)
        .unwrap();
    writer
        .write(header(4, 5, AUDIO, 1), &payload(3, 1), &mut bytes)
        .unwrap();
    let mut reader = ChunkReader::new();
    let mut got = Vec::new();
    for byte in &bytes {
        reader.push(std::slice::from_ref(byte));
        got.extend(read_all(&mut reader).unwrap());
    }
    let mut whole = ChunkReader::new();
    whole.push(&bytes);
    assert_eq!(got, read_all(&mut whole).unwrap());
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].timestamp, 0x0100_0000);
    assert_eq!(reader.buffered_input(), 0);
}

/// Hand-written chunks: interleaving, formats 1/2/3 with deltas, extended timestamps on
/// continuation chunks.
#[test]
fn interleaved_streams_and_compressed_headers() {
    let mut b = Vec::new();
    // csid 4, fmt 0: ts 1000, len 200, audio, stream 1; first 128 bytes.
    b.extend_from_slice(&[0x04, 0x00, 0x03, 0xE8, 0x00, 0x00, 0xC8, AUDIO, 1, 0, 0, 0]);
    b.extend_from_slice(&[0xAA; 128]);
    // csid 6, fmt 0: extended ts 0x01000000, len 130, video; first 128 bytes.
    b.extend_from_slice(&[
        0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x82, VIDEO, 1, 0, 0, 0, 0x01, 0, 0, 0,
    ]);
    b.extend_from_slice(&[0xBB; 128]);
    // csid 4, fmt 3: rest of the audio (72 bytes).
    b.push(0xC4);
    b.extend_from_slice(&[0xAA; 72]);
    // csid 6, fmt 3 continuation with the repeated extended timestamp.
    b.extend_from_slice(&[0xC6, 0x01, 0, 0, 0, 0xBB, 0xBB]);
    // csid 4, fmt 1: delta 20, len 2, audio.
    b.extend_from_slice(&[0x44, 0, 0, 20, 0, 0, 2, AUDIO, 1, 2]);
    // csid 4, fmt 2: delta 30, same length.
    b.extend_from_slice(&[0x84, 0, 0, 30, 3, 4]);
    // csid 4, fmt 3 new message: delta 30 again.
    b.extend_from_slice(&[0xC4, 5, 6]);
    let mut reader = ChunkReader::new();
    reader.push(&b);
    let got = read_all(&mut reader).unwrap();
    let summary: Vec<(u32, u32, usize)> = got
        .iter()
        .map(|m| (m.csid, m.timestamp, m.payload.len()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (4, 1000, 200),
            (6, 0x0100_0000, 130),
            (4, 1020, 2),
            (4, 1050, 2),
            (4, 1080, 2)
        ]
    );
    assert!(got[0].payload.iter().all(|&x| x == 0xAA));
    assert!(got[1].payload.iter().all(|&x| x == 0xBB));
    assert_eq!(got[4].payload, vec![5, 6]);
}

#[test]
fn format_3_after_format_0_adds_the_timestamp_field_as_ffmpeg_writes_it() {
    // fmt 0 at ts 40, then a fmt 3 new message: ffmpeg means ts 80.
    let mut b = vec![0x04, 0, 0, 40, 0, 0, 1, AUDIO, 1, 0, 0, 0, 7];
    b.extend_from_slice(&[0xC4, 8]);
    let mut reader = ChunkReader::new();
    reader.push(&b);
    let got = read_all(&mut reader).unwrap();
    assert_eq!(got.iter().map(|m| m.timestamp).collect::<Vec<_>>(), vec![40, 80]);
}

#[test]
fn extended_timestamps_round_trip_through_the_writer() {
    let mut bytes = Vec::new();
    let writer = ChunkWriter::new();
    for ts in [0xFF_FFFE, 0xFF_FFFF, u32::MAX] {
        writer
            .write(header(6, ts, VIDEO, 1), &payload(300, 0), &mut bytes)
            .unwrap();
    }
    let mut reader = ChunkReader::new();
    reader.push(&bytes);
    let got = read_all(&mut reader).unwrap();
    assert_eq!(
        got.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
        vec![0xFF_FFFE, 0xFF_FFFF, u32::MAX]
    );
    assert!(got.iter().all(|m| m.payload == payload(300, 0)));
}

#[test]
fn bad_chunk_sizes_are_refused() {
    for size in [0u32, 1 << 31, 65537, u32::MAX] {
        let mut reader = ChunkReader::new();
        reader.push(&set_chunk_size_bytes(size));
        assert_eq!(
            reader.next_message(),
            Err(RtmpError::BadChunkSize(size)),
            "{size}"
        );
    }
    let mut reader = ChunkReader::new();
    reader.push(&[0x02, 0, 0, 0, 0, 0, 2, SET_CHUNK_SIZE, 0, 0, 0, 0, 0, 1]);
    assert!(matches!(reader.next_message(), Err(RtmpError::BadMessage { .. })));
}

#[test]
fn oversize_message_is_refused_from_its_header() {
    let len = MESSAGE_BYTES_MAX + 1;
    let l = len.to_be_bytes();
    let mut reader = ChunkReader::new();
    reader.push(&[0x04, 0, 0, 0, l[1], l[2], l[3], VIDEO, 1, 0, 0, 0]);
    assert_eq!(reader.next_message(), Err(RtmpError::MessageTooLarge(len)));
}

#[test]
fn headerless_chunk_streams_and_too_many_streams_are_refused() {
    for fmt in 1u8..=3 {
        let mut reader = ChunkReader::new();
        reader.push(&[(fmt << 6) | 5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            reader.next_message(),
            Err(RtmpError::NoPriorHeader { csid: 5, fmt })
        );
    }
    let mut bytes = Vec::new();
    let writer = ChunkWriter::new();
    for csid in 3..(3 + CHUNK_STREAMS_MAX as u32 + 1) {
        writer.write(header(csid, 0, AUDIO, 1), &[1], &mut bytes).unwrap();
    }
    let mut reader = ChunkReader::new();
    reader.push(&bytes);
    let result = read_all(&mut reader);
    assert_eq!(result, Err(RtmpError::TooManyChunkStreams));
}

#[test]
fn a_new_header_mid_message_is_refused() {
    let mut b = vec![0x04, 0, 0, 0, 0, 1, 0, AUDIO, 1, 0, 0, 0];
    b.extend_from_slice(&[0; 128]);
    b.extend_from_slice(&[0x04, 0, 0, 0, 0, 0, 1, AUDIO, 1, 0, 0, 0, 9]);
    let mut reader = ChunkReader::new();
    reader.push(&b);
    assert_eq!(reader.next_message(), Err(RtmpError::HeaderMidMessage(4)));
}

#[test]
fn partial_messages_are_capped_across_chunk_streams() {
    // Three streams each start a near-maximal message: the third crosses the 8 MiB cap.
    let mut bytes = set_chunk_size_bytes(65536);
    let l = MESSAGE_BYTES_MAX.to_be_bytes();
    let mut result = Ok(Vec::new());
    let mut reader = ChunkReader::new();
    reader.push(&bytes);
    bytes.clear();
    'outer: for _round in 0..64 {
        for csid in 4u8..7 {
            let started = _round > 0;
            if started {
                bytes.push(0xC0 | csid);
            } else {
                bytes.extend_from_slice(&[csid, 0, 0, 0, l[1], l[2], l[3], VIDEO, 1, 0, 0, 0]);
            }
            bytes.extend_from_slice(&[0; 65536]);
            reader.push(&bytes);
            bytes.clear();
            result = read_all(&mut reader);
            if result.is_err() {
                break 'outer;
            }
        }
    }
    assert_eq!(result, Err(RtmpError::PartialBytesExceeded));
}

#[test]
fn abort_drops_the_partial_message() {
    let mut b = vec![0x04, 0, 0, 0, 0, 0, 200, AUDIO, 1, 0, 0, 0];
    b.extend_from_slice(&[1; 128]);
    ChunkWriter::new()
        .write(header(2, 0, ABORT, 0), &message::abort(4), &mut b)
        .unwrap();
    // A fresh message on the same chunk stream with a full header is now fine.
    b.extend_from_slice(&[0x04, 0, 0, 9, 0, 0, 1, AUDIO, 1, 0, 0, 0, 42]);
    let mut reader = ChunkReader::new();
    reader.push(&b);
    let got = read_all(&mut reader).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].timestamp, got[0].payload.as_slice()), (9, &[42u8][..]));
}

#[test]
fn writer_refuses_what_the_length_field_cannot_carry() {
    let mut out = Vec::new();
    let big = vec![0u8; 0x100_0000];
    assert!(ChunkWriter::new()
        .write(header(6, 0, VIDEO, 1), &big, &mut out)
        .is_err());
    assert!(out.is_empty());
}
