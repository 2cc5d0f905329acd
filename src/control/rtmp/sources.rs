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
}

impl Source {
    fn fan_out(&mut self, tag: &FlvTag) {
        self.subscribers.retain_mut(|subscriber| {
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
        match kind {
            HeaderKind::Video => source.video_header = Some(tag.clone()),
            HeaderKind::Audio => source.audio_header = Some(tag.clone()),
        }
        source.fan_out(&FlvTag {
            keyframe: true,
            ..tag
        });
    }

    pub fn metadata(&mut self, name: &str, token: PublisherToken, tag: FlvTag) {
        let Some(source) = self.source_of(name, token) else {
            return;
        };
        source.metadata = Some(tag.clone());
        source.fan_out(&FlvTag {
            keyframe: true,
            ..tag
        });
    }

    /// A picture or an audio frame.
    pub fn media(&mut self, name: &str, token: PublisherToken, tag: FlvTag) {
        let Some(source) = self.source_of(name, token) else {
            return;
        };
        source.cache(&tag);
        source.fan_out(&tag);
    }

    /// The publisher went: players hear so and wait for another.
    pub fn stop(&mut self, name: &str, token: PublisherToken) {
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
        source.subscribers.push(Subscriber { queue, lagging });
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
        FlvTag {
            kind,
            timestamp_ms: ts,
            body: Arc::from(vec![0u8; 10]),
            keyframe,
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
        assert_eq!(
            timestamps(&mut rx),
            vec![0, 66, 70],
            "header, then the group from the last keyframe"
        );
        sources.media("s", token, tag(TagKind::Video, 99, false));
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
        let seen = timestamps(&mut rx);
        assert_eq!(seen.len(), PLAYER_QUEUE_TAGS);
        sources.media("s", token, tag(TagKind::Video, 5000, false));
        assert!(timestamps(&mut rx).is_empty(), "no delta picture while lagging");
        sources.media("s", token, tag(TagKind::Video, 6000, true));
        assert_eq!(timestamps(&mut rx), vec![6000]);
    }

    #[test]
    fn a_replaced_publisher_feeds_nothing_and_players_hear_of_the_end() {
        let mut sources = Sources::default();
        let old = sources.start("s");
        let mut rx = sources.subscribe("s");
        let new = sources.start("s");
        sources.media("s", old, tag(TagKind::Video, 1, true));
        assert!(timestamps(&mut rx).is_empty());
        sources.media("s", new, tag(TagKind::Video, 2, true));
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
