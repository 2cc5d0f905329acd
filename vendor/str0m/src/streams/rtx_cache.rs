use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use crate::io::DATAGRAM_MAX_PACKET_SIZE;
use crate::packet::Vp8Patch;
use crate::rtp_::{ExtensionValues, MediaTime, Pt, RtpHeader, SeqNo, Ssrc};

use super::RtpPacket;
use super::rtx_cache_buf::EvictingBuffer;

const RTX_CACHE_SIZE_QUANTIZER: usize = 25;
const RTX_CACHE_QUANTIZE_SLOTS: usize = DATAGRAM_MAX_PACKET_SIZE / RTX_CACHE_SIZE_QUANTIZER;

#[derive(Debug)]
pub(crate) struct RtxCache {
    // Data, new additions here probably need to be cleared in [`clear`].
    packet_by_seq_no: EvictingBuffer<CachedPacket>,

    // Technically we want [Option<SeqNo>; X] to indicate the absence of
    // a SeqNo. However We can half the storage space by using the sentinel
    // values SeqNo::MAX to indicate None
    seq_no_by_quantized_size: [SeqNo; RTX_CACHE_QUANTIZE_SLOTS],

    // The packet last handed out for a resend or padding, rebuilt from its cached form.
    // Boxed and reused: most streams never resend.
    rebuilt: Option<Box<RtpPacket>>,
}

/// What the cache keeps of a sent packet: the fields a resend is rebuilt from.
///
/// A whole [`RtpPacket`] is about 490 bytes, because its header carries every extension
/// value and 15 CSRC slots; an SFU keeps hundreds of these per subscriber. This is about
/// 90 bytes, with the rarely set CSRCs and extension values boxed. The MID, RID and repair
/// RID are not kept: the send path sets them on a resend while the remote has not yet
/// acknowledged the SSRC it goes out on (after that the receiver has bound the SSRC, so a
/// resend of a packet first sent before the acknowledgement now goes without its MID).
#[derive(Debug)]
struct CachedPacket {
    seq_no: SeqNo,
    time: MediaTime,
    payload: Arc<[u8]>,
    timestamp: Instant,
    rtp_time: u32,
    ssrc: Ssrc,
    sequence_number: u16,
    payload_type: Pt,
    marker: bool,
    vp8_patch: Option<Vp8Patch>,
    extras: Option<Box<HeaderExtras>>,
}

#[derive(Debug)]
struct HeaderExtras {
    csrc_count: usize,
    csrc: [u32; 15],
    ext_vals: ExtensionValues,
}

impl CachedPacket {
    fn new(packet: RtpPacket) -> Self {
        let RtpPacket {
            seq_no,
            time,
            header,
            payload,
            vp8_patch,
            timestamp,
            ..
        } = packet;
        let RtpHeader {
            csrc_count,
            marker,
            payload_type,
            sequence_number,
            timestamp: rtp_time,
            ssrc,
            csrc,
            mut ext_vals,
            ..
        } = header;
        ext_vals.mid = None;
        ext_vals.rid = None;
        ext_vals.rid_repair = None;
        let extras = (csrc_count > 0 || ext_vals != ExtensionValues::default()).then(|| {
            Box::new(HeaderExtras {
                csrc_count,
                csrc,
                ext_vals,
            })
        });
        CachedPacket {
            seq_no,
            time,
            payload,
            timestamp,
            rtp_time,
            ssrc,
            sequence_number,
            payload_type,
            marker,
            vp8_patch,
            extras,
        }
    }

    fn rebuild(&self) -> RtpPacket {
        let mut header = RtpHeader {
            marker: self.marker,
            payload_type: self.payload_type,
            sequence_number: self.sequence_number,
            timestamp: self.rtp_time,
            ssrc: self.ssrc,
            ..Default::default()
        };
        if let Some(extras) = &self.extras {
            header.csrc_count = extras.csrc_count;
            header.csrc = extras.csrc;
            header.ext_vals = extras.ext_vals.clone();
        }
        RtpPacket {
            seq_no: self.seq_no,
            time: self.time,
            header,
            payload: self.payload.clone(),
            vp8_patch: self.vp8_patch,
            timestamp: self.timestamp,
            last_sender_info: None,
            nackable: true,
        }
    }
}

impl RtxCache {
    pub fn new(max_packet_count: usize, max_packet_age: Duration) -> Self {
        Self {
            packet_by_seq_no: EvictingBuffer::new(10, max_packet_age, max_packet_count),
            seq_no_by_quantized_size: [SeqNo::MAX; RTX_CACHE_QUANTIZE_SLOTS],
            rebuilt: None,
        }
    }

    pub fn cache_sent_packet(&mut self, packet: RtpPacket, now: Instant) {
        assert!(packet.nackable);
        let seq_no = packet.seq_no;
        let quantized_size = packet.payload.len() / RTX_CACHE_SIZE_QUANTIZER;
        self.packet_by_seq_no
            .push(*seq_no, now, CachedPacket::new(packet));
        self.seq_no_by_quantized_size[quantized_size] = seq_no;
        self.remove_old_packets(now);
    }

    pub fn last_cached_seq_no(&self) -> Option<SeqNo> {
        Some(self.packet_by_seq_no.last_position()?.into())
    }

    /// The payload size of a cached packet, without rebuilding it.
    pub fn cached_payload_len(&self, seq_no: SeqNo) -> Option<usize> {
        Some(self.packet_by_seq_no.get(*seq_no)?.payload.len())
    }

    /// The cached packet, rebuilt. Changes to it are not kept in the cache.
    pub fn get_cached_packet_by_seq_no(&mut self, seq_no: SeqNo) -> Option<&mut RtpPacket> {
        let packet = self.packet_by_seq_no.get(*seq_no)?.rebuild();
        match self.rebuilt.as_deref_mut() {
            Some(rebuilt) => *rebuilt = packet,
            None => self.rebuilt = Some(Box::new(packet)),
        }
        self.rebuilt.as_deref_mut()
    }

    pub fn get_cached_packet_smaller_than(&mut self, max_size: usize) -> Option<&mut RtpPacket> {
        let quantized_size = max_size / RTX_CACHE_SIZE_QUANTIZER;

        let seq_no = self.seq_no_by_quantized_size[..quantized_size]
            .iter()
            .rev()
            .filter(|seq_no| !seq_no.is_max())
            .find(|seq_no| self.packet_by_seq_no.contains(***seq_no))?;

        self.get_cached_packet_by_seq_no(*seq_no)
    }

    fn remove_old_packets(&mut self, now: Instant) {
        self.packet_by_seq_no.maybe_evict(now);
    }

    pub(crate) fn last_packet(&self) -> Option<&[u8]> {
        let packet = self.packet_by_seq_no.last()?;
        Some(packet.payload.as_ref())
    }

    pub(crate) fn clear(&mut self) {
        self.packet_by_seq_no.clear();
        self.seq_no_by_quantized_size = [SeqNo::MAX; RTX_CACHE_QUANTIZE_SLOTS];
        self.rebuilt = None;
    }
}

#[cfg(test)]
mod test {
    use crate::rtp_::Mid;

    use super::*;

    fn after(now: Instant, millis: u64) -> Instant {
        now + Duration::from_millis(millis)
    }

    fn packet(now: Instant, seq_no: u64, millis: u64) -> RtpPacket {
        RtpPacket {
            header: RtpHeader {
                sequence_number: seq_no as u16,
                ..Default::default()
            },
            seq_no: seq_no.into(),
            time: MediaTime::from_90khz(0),
            payload: millis.to_be_bytes().into(),
            vp8_patch: None,
            timestamp: after(now, millis),
            last_sender_info: None,
            nackable: true,
        }
    }

    #[test]
    fn a_cached_packet_is_a_fifth_of_a_packet() {
        let cached = std::mem::size_of::<CachedPacket>();
        let whole = std::mem::size_of::<RtpPacket>();
        assert!(cached <= 96, "CachedPacket is {cached} bytes");
        assert!(
            cached * 4 < whole,
            "CachedPacket {cached} bytes, RtpPacket {whole}"
        );
    }

    #[test]
    fn a_rebuilt_packet_keeps_csrcs_and_extension_values_but_not_the_mid() {
        let now = Instant::now();
        let sent = |mid: Option<Mid>| {
            let mut p = packet(now, 7, 10);
            p.header.marker = true;
            p.header.timestamp = 90_000;
            p.header.csrc_count = 1;
            p.header.csrc[0] = 0x1234;
            p.header.ext_vals.audio_level = Some(-30);
            p.header.ext_vals.mid = mid;
            p
        };
        let mut cache = RtxCache::new(10, Duration::from_secs(3));
        cache.cache_sent_packet(sent(Some("1".into())), after(now, 10));

        let rebuilt = cache.get_cached_packet_by_seq_no(7.into()).expect("cached");
        assert_eq!(rebuilt, &mut sent(None), "the send path sets the MID");
    }

    #[test]
    fn rtx_cache_0_sized() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(0, Duration::from_secs(3));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_by_seq_no(1.into())
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(1000)
        );
    }

    #[test]
    fn rtx_cache_0_duration() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(10, Duration::from_secs(0));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(1.into()));
        assert_eq!(None, rtx_cache.get_cached_packet_smaller_than(1000));
    }

    #[test]
    fn rtx_cache_1_sized() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(1, Duration::from_secs(3));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_by_seq_no(1.into())
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(1000)
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(25)
        );
        assert_eq!(None, rtx_cache.get_cached_packet_smaller_than(24));
        rtx_cache.cache_sent_packet(packet(now, 2, 20), after(now, 20));
        assert_eq!(
            Some(&mut packet(now, 2, 20)),
            rtx_cache.get_cached_packet_by_seq_no(2.into())
        );
    }

    #[test]
    fn rtx_cache_100_sized_backwards() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(100, Duration::from_secs(3));

        for i in 1..=200 {
            let seq_no = 201 - i;
            let pkt = packet(now, seq_no, (201 - i) * 10);
            let now = after(now, i * 10);
            rtx_cache.cache_sent_packet(pkt, now);
        }

        assert_eq!(
            Some(&mut packet(now, 200, 2000)),
            rtx_cache.get_cached_packet_by_seq_no(200.into())
        );
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(100.into()));
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(101.into()));
    }

    #[test]
    fn rtx_cache_eviction() {
        let now = Instant::now();
        // Cache can take all entries
        let mut rtx_cache = RtxCache::new(400, Duration::from_secs(1));
        for i in 1..=200 {
            let seq_no = i;
            let pkt = packet(now, seq_no, i * 10);
            let now = after(now, i * 10);
            rtx_cache.cache_sent_packet(pkt, now);
        }

        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(99.into()));

        assert_eq!(
            Some(&mut packet(now, 100, 1000)),
            rtx_cache.get_cached_packet_by_seq_no(100.into())
        );
        assert_eq!(
            Some(&mut packet(now, 200, 2000)),
            rtx_cache.get_cached_packet_by_seq_no(200.into())
        );
    }
}
