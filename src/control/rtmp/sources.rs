//! Streams fed by RTMP encoders, as FLV tags, for the RTMP side of the bridge: RTMP players
//! and pushes of such a stream get the encoder's own tags (no AAC → Opus → AAC round trip).
//! Each source keeps its sequence headers, its metadata and its current group of pictures, so
//! a player that joins late starts at once on a keyframe.
//!
//! Control thread (behind the bridge's mutex, never held across an `.await`). Invariants: a
//! subscriber gets the headers, then tags in order from a keyframe on; a subscriber whose
//! queue is full skips to the next keyframe (it jumps to the live edge instead of falling
//! behind); the cached group holds at most [`FLV_GOP_CACHE_BYTES_MAX`] bytes; a source with
//! neither publisher nor subscribers is removed.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::rtmp::limits::OUR_CHUNK_BYTES;

/// FLV bytes of one stream's cached group of pictures (audio included).
pub const FLV_GOP_CACHE_BYTES_MAX: usize = 4 << 20;
/// Tags queued for one RTMP player or push: about three seconds of 30 fps video and its
/// audio. A player further behind skips to the next keyframe.
pub const PLAYER_QUEUE_TAGS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Audio,
    Video,
    /// An AMF0 data message (`onMetaData`).
    Metadata,
}

#[derive(Debug, Clone)]
pub struct FlvTag {
    pub kind: TagKind,
    pub timestamp_ms: u32,
    pub body: Arc<[u8]>,
    /// A video keyframe (a player can start here).
    pub keyframe: bool,
    /// The tag as chunks on [`WIRE_STREAM_ID`] at [`OUR_CHUNK_BYTES`], made once by the source
    /// for all its players (audio and video only).
    pub wire: Option<Arc<[u8]>>,
}

/// The message stream a player's first `createStream` gets: the one the shared wire bytes are
/// made for (a player on another stream id gets its own serialization).
pub const WIRE_STREAM_ID: u32 = 1;

impl FlvTag {
    pub fn new(kind: TagKind, timestamp_ms: u32, body: Arc<[u8]>, keyframe: bool) -> Self {
        FlvTag {
            kind,
            timestamp_ms,
            body,
            keyframe,
            wire: None,
        }
    }

    /// Add the shared wire bytes, if the tag is media.
    fn with_wire(mut self) -> Self {
        if self.wire.is_none() && self.kind != TagKind::Metadata {
            let video = self.kind == TagKind::Video;
            self.wire = crate::rtmp::media_wire(
                video,
                WIRE_STREAM_ID,
                self.timestamp_ms,
                &self.body,
                OUR_CHUNK_BYTES,
            )
            .map(Arc::from);
        }
        self
    }
}

/// What a player's queue carries.
#[derive(Debug, Clone)]
pub enum FeedItem {
    Tag(FlvTag),
    /// The publisher went; a new one may come (players of an RTMP source wait for it).
    Unpublished,
}

struct Subscriber {
    queue: mpsc::Sender<FeedItem>,
    /// Skipping to the next keyframe.
    lagging: bool,
    /// Tags up to this sequence number came with the subscription (from the cache).
    primed_through: u64,
}

#[derive(Default)]
struct Source {
    publisher: Option<u64>,
    metadata: Option<FlvTag>,
    video_header: Option<FlvTag>,
    audio_header: Option<FlvTag>,
    gop: Vec<FlvTag>,
    gop_bytes: usize,
    gop_valid: bool,
    subscribers: Vec<Subscriber>,
    /// Tags not yet sent to the players, with their sequence numbers (see [`Sources::flush`]).
    pending: Vec<(u64, FlvTag)>,
    next_seq: u64,
}

impl Source {
    fn queue(&mut self, tag: FlvTag) {
        self.next_seq += 1;
        self.pending.push((self.next_seq, tag));
    }

    fn fan_out(&mut self, seq: u64, tag: &FlvTag) {
        self.subscribers.retain_mut(|subscriber| {
            if seq <= subscriber.primed_through {
                return true;
            }
            if subscriber.lagging {
                if !tag.keyframe {
                    return !subscriber.queue.is_closed();
                }
                subscriber.lagging = false;
            }
            match subscriber.queue.try_send(FeedItem::Tag(tag.clone())) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.lagging = true;
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    fn cache(&mut self, tag: &FlvTag) {
        if tag.keyframe {
            self.gop.clear();
            self.gop_bytes = 0;
            self.gop_valid = true;
        }
        if !self.gop_valid {
            return;
        }
        if self.gop_bytes.saturating_add(tag.body.len()) > FLV_GOP_CACHE_BYTES_MAX {
            self.gop.clear();
            self.gop_bytes = 0;
            self.gop_valid = false;
            return;
        }
        self.gop_bytes += tag.body.len();
        self.gop.push(tag.clone());
    }
}

/// Every RTMP-fed stream, by name.
#[derive(Default)]
pub struct Sources {
    streams: HashMap<String, Source>,
    next_publisher: u64,
}

/// Which publisher feeds a source (a newer one replaces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherToken(u64);

/// What a sequence header or metadata tag is, for the source's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    Video,
    Audio,
}

impl Sources {
    /// A publisher starts feeding `name` (replacing any other).
    pub fn start(&mut self, name: &str) -> PublisherToken {
        self.next_publisher += 1;
        let source = self.streams.entry(name.to_owned()).or_default();
        source.publisher = Some(self.next_publisher);
        source.metadata = None;
        source.video_header = None;
        source.audio_header = None;
        source.gop.clear();
        source.gop_bytes = 0;
        source.gop_valid = false;
        PublisherToken(self.next_publisher)
    }

    fn source_of(&mut self, name: &str, token: PublisherToken) -> Option<&mut Source> {
        self.streams
            .get_mut(name)
            .filter(|source| source.publisher == Some(token.0))
    }

    /// A sequence header (sent to players now and to every later one first).
    pub fn header(&mut self, name: &str, token: PublisherToken, kind: HeaderKind, tag: FlvTag) {
        let Some(source) = self.source_of(name, token) else {
            return;
        };
        let tag = tag.with_wire();
        match kind {
            HeaderKind::Video => source.video_header = Some(tag.clone()),
            HeaderKind::Audio => source.audio_header = Some(tag.clone()),
        }
        source.queue(FlvTag {
            keyframe: true,
            ..tag
        });
    }

    pub fn metadata(&mut self, name: &str, token: PublisherToken, tag: FlvTag) {
        let Some(source) = self.source_of(name, token) else {
            return;
        };
        source.metadata = Some(tag.clone());
        source.queue(FlvTag {
            keyframe: true,
            ..tag
        });
    }

    /// A picture or an audio frame.
    pub fn media(&mut self, name: &str, token: PublisherToken, tag: FlvTag) {
        let Some(source) = self.source_of(name, token) else {
            return;
        };
        let tag = tag.with_wire();
        source.cache(&tag);
        source.queue(tag);
    }

    /// Whether tags wait for [`Sources::flush`].
    pub fn has_pending(&self, name: &str) -> bool {
        self.streams.get(name).is_some_and(|s| !s.pending.is_empty())
    }

    /// Send the waiting tags to the players. The encoder's task calls this on a short timer
    /// ([`super::connection`]'s `PLAYER_FLUSH_INTERVAL`) rather than per tag, so each player
    /// gets an encoder's audio and video tags together and writes them in one system call.
    pub fn flush(&mut self, name: &str, token: PublisherToken) {
        let Some(source) = self.source_of(name, token) else {
            return;
        };
        let pending = std::mem::take(&mut source.pending);
        for (seq, tag) in &pending {
            source.fan_out(*seq, tag);
        }
        let mut pending = pending;
        pending.clear();
        if source.pending.is_empty() {
            source.pending = pending; // keep the allocation
        }
    }

    /// The publisher went: players hear so and wait for another.
    pub fn stop(&mut self, name: &str, token: PublisherToken) {
        self.flush(name, token);
        let Some(source) = self.source_of(name, token) else {
            return;
        };
        source.publisher = None;
        source.gop.clear();
        source.gop_valid = false;
        source
            .subscribers
            .retain(|s| s.queue.try_send(FeedItem::Unpublished).is_ok() || !s.queue.is_closed());
        if source.subscribers.is_empty() {
            self.streams.remove(name);
        }
    }

    /// Whether an encoder feeds `name` now.
    pub fn is_live(&self, name: &str) -> bool {
        self.streams.get(name).is_some_and(|s| s.publisher.is_some())
    }

    /// A new player of `name`: its queue starts with the metadata, the sequence headers and
    /// the cached group of pictures.
    pub fn subscribe(&mut self, name: &str) -> mpsc::Receiver<FeedItem> {
        let (queue, receiver) = mpsc::channel(PLAYER_QUEUE_TAGS);
        let source = self.streams.entry(name.to_owned()).or_default();
        source.subscribers.retain(|s| !s.queue.is_closed());
        let primed: Vec<FlvTag> = [&source.metadata, &source.video_header, &source.audio_header]
            .into_iter()
            .flatten()
            .cloned()
            .chain(source.gop.iter().cloned())
            .collect();
        let mut lagging = source.gop.is_empty();
        for tag in primed {
            if queue.try_send(FeedItem::Tag(tag)).is_err() {
                lagging = true;
                break;
            }
        }
        let primed_through = source.next_seq;
        source.subscribers.push(Subscriber {
            queue,
            lagging,
            primed_through,
        });
        receiver
    }

    /// Forget players that went (called when one ends).
    pub fn prune(&mut self, name: &str) {
        if let Some(source) = self.streams.get_mut(name) {
            source.subscribers.retain(|s| !s.queue.is_closed());
            if source.publisher.is_none() && source.subscribers.is_empty() {
                self.streams.remove(name);
            }
        }
    }

    /// Players subscribed to `name` now.
    pub fn subscribers(&self, name: &str) -> usize {
        self.streams.get(name).map_or(0, |s| s.subscribers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: TagKind, ts: u32, keyframe: bool) -> FlvTag {
        FlvTag::new(kind, ts, Arc::from(vec![0u8; 10]), keyframe)
    }

    /// Flush everything pending (the encoder's task does it on a timer).
    fn flush_all(sources: &mut Sources, tokens: &[PublisherToken]) {
        for token in tokens {
            sources.flush("s", *token);
        }
    }

    fn timestamps(rx: &mut mpsc::Receiver<FeedItem>) -> Vec<u32> {
        let mut out = Vec::new();
        while let Ok(FeedItem::Tag(tag)) = rx.try_recv() {
            out.push(tag.timestamp_ms);
        }
        out
    }

    #[test]
    fn a_late_player_starts_with_headers_and_the_cached_group() {
        let mut sources = Sources::default();
        let token = sources.start("s");
        sources.header("s", token, HeaderKind::Video, tag(TagKind::Video, 0, false));
        sources.media("s", token, tag(TagKind::Video, 0, true));
        sources.media("s", token, tag(TagKind::Video, 33, false));
        sources.media("s", token, tag(TagKind::Video, 66, true));
        sources.media("s", token, tag(TagKind::Audio, 70, false));
        let mut rx = sources.subscribe("s");
        flush_all(&mut sources, &[token]);
        assert_eq!(
            timestamps(&mut rx),
            vec![0, 66, 70],
            "header, then the group from the last keyframe, each once"
        );
        sources.media("s", token, tag(TagKind::Video, 99, false));
        assert!(timestamps(&mut rx).is_empty(), "nothing before the flush");
        flush_all(&mut sources, &[token]);
        assert_eq!(timestamps(&mut rx), vec![99]);
    }

    #[test]
    fn a_full_queue_skips_to_the_next_keyframe() {
        let mut sources = Sources::default();
        let token = sources.start("s");
        sources.media("s", token, tag(TagKind::Video, 0, true));
        let mut rx = sources.subscribe("s");
        for ts in 1..=PLAYER_QUEUE_TAGS as u32 + 10 {
            sources.media("s", token, tag(TagKind::Video, ts, false));
        }
        flush_all(&mut sources, &[token]);
        let seen = timestamps(&mut rx);
        assert_eq!(seen.len(), PLAYER_QUEUE_TAGS);
        sources.media("s", token, tag(TagKind::Video, 5000, false));
        flush_all(&mut sources, &[token]);
        assert!(timestamps(&mut rx).is_empty(), "no delta picture while lagging");
        sources.media("s", token, tag(TagKind::Video, 6000, true));
        flush_all(&mut sources, &[token]);
        assert_eq!(timestamps(&mut rx), vec![6000]);
    }

    #[test]
    fn a_replaced_publisher_feeds_nothing_and_players_hear_of_the_end() {
        let mut sources = Sources::default();
        let old = sources.start("s");
        let mut rx = sources.subscribe("s");
        let new = sources.start("s");
        sources.media("s", old, tag(TagKind::Video, 1, true));
        flush_all(&mut sources, &[old, new]);
        assert!(timestamps(&mut rx).is_empty());
        sources.media("s", new, tag(TagKind::Video, 2, true));
        flush_all(&mut sources, &[old, new]);
        assert_eq!(timestamps(&mut rx), vec![2]);
        sources.stop("s", old);
        assert!(
            sources.is_live("s"),
            "the old publisher's stop does not end the new one"
        );
        sources.stop("s", new);
        assert!(matches!(rx.try_recv(), Ok(FeedItem::Unpublished)));
        drop(rx);
        sources.prune("s");
        assert_eq!(sources.subscribers("s"), 0);
    }
}
