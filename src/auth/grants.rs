//! What a session may do: [`Grants`], made from a verified token's `video` claim (semantics of
//! LiveKit's `VideoGrant`) or, under `--auth none`, [`Grants::everything`].
//!
//! Plain data, made and read on the control thread. Invariants: the defaults of an absent
//! `video` field are those of LiveKit (`canPublish`, `canSubscribe`, `canPublishData` true;
//! `roomJoin`, `roomRecord`, `roomAdmin`, `hidden` false; no `room`, no room); `room_admin`
//! never widens [`Grants::allows_room`]; a [`RoomGrant::One`] holds a checked room name.

use serde::{Deserialize, Serialize};

use crate::ids::{Login, RoomName};

/// The end of a screen-sharing stream's name, as the Flashphoner SDK names them
/// (`ROOM-LOGIN-XXXX-screenShare`). Case-sensitive, as the SDK writes it.
pub const SCREEN_SHARE_SUFFIX: &str = "-screenShare";

/// The longest room name a token may grant: webcall's `NAME_BYTES_MAX`, the cap on every room
/// a client can name, so a longer one could never match.
pub const ROOM_BYTES_MAX: usize = 256;

/// A kind of published track, as in LiveKit's `canPublishSources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Camera,
    Microphone,
    ScreenShare,
    ScreenShareAudio,
}

/// Which rooms a token lets its holder join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomGrant {
    /// `"room": "*"`.
    Any,
    /// `"room": "NAME"`.
    One(RoomName),
    /// No `room` (or an empty one): no room at all.
    None,
}

/// Everything a session is allowed, with the identity the token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// The token's `sub` (or, without auth, the client's own login).
    pub login: Login,
    /// The token's `jti`, the handle for revoking it.
    pub jti: Option<String>,
    /// The token's `exp`; `None` without auth.
    pub expires_unix: Option<u64>,
    pub room: RoomGrant,
    pub room_join: bool,
    pub can_publish: bool,
    /// `None`: every source; `Some(list)`: only those listed.
    pub can_publish_sources: Option<Vec<Source>>,
    pub can_subscribe: bool,
    /// Chat (`sendMessage`) and other data to the room.
    pub can_publish_data: bool,
    pub room_record: bool,
    pub room_admin: bool,
    /// Present in the room but not announced to its other participants.
    pub hidden: bool,
}

/// The token's `video` object as sent: every field optional, so the defaults are applied in
/// one place ([`Grants::from_video`]). Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VideoClaims {
    room: Option<String>,
    room_join: Option<bool>,
    can_publish: Option<bool>,
    can_publish_sources: Option<Vec<Source>>,
    can_subscribe: Option<bool>,
    can_publish_data: Option<bool>,
    room_record: Option<bool>,
    room_admin: Option<bool>,
    hidden: Option<bool>,
}

impl Grants {
    /// What a session gets under `--auth none`: every right, any room, not hidden.
    pub fn everything(login: Login) -> Grants {
        Grants {
            login,
            jti: None,
            expires_unix: None,
            room: RoomGrant::Any,
            room_join: true,
            can_publish: true,
            can_publish_sources: None,
            can_subscribe: true,
            can_publish_data: true,
            room_record: true,
            room_admin: true,
            hidden: false,
        }
    }

    /// The grants of a verified token. `None` when its `room` is not a name a client could
    /// use (longer than [`ROOM_BYTES_MAX`] or with control characters).
    pub(crate) fn from_video(
        login: Login,
        jti: Option<String>,
        expires_unix: u64,
        video: Option<VideoClaims>,
    ) -> Option<Grants> {
        let video = video.unwrap_or_default();
        let room = match video.room.as_deref() {
            None | Some("") => RoomGrant::None,
            Some("*") => RoomGrant::Any,
            Some(name) if name.len() <= ROOM_BYTES_MAX && !name.chars().any(char::is_control) => {
                RoomGrant::One(RoomName::new(name))
            }
            Some(_) => return None,
        };
        Some(Grants {
            login,
            jti,
            expires_unix: Some(expires_unix),
            room,
            room_join: video.room_join.unwrap_or(false),
            can_publish: video.can_publish.unwrap_or(true),
            can_publish_sources: video.can_publish_sources,
            can_subscribe: video.can_subscribe.unwrap_or(true),
            can_publish_data: video.can_publish_data.unwrap_or(true),
            room_record: video.room_record.unwrap_or(false),
            room_admin: video.room_admin.unwrap_or(false),
            hidden: video.hidden.unwrap_or(false),
        })
    }

    /// Whether the session may join `room`: `roomJoin` and a matching `room`. `roomAdmin`
    /// does not bypass this (as in LiveKit, admin rights are for the rooms one may join).
    pub fn allows_room(&self, room: &RoomName) -> bool {
        self.room_join
            && match &self.room {
                RoomGrant::Any => true,
                RoomGrant::One(granted) => granted == room,
                RoomGrant::None => false,
            }
    }

    /// Whether the session may publish a track of kind `source`.
    pub fn allows_source(&self, source: Source) -> bool {
        self.can_publish
            && self
                .can_publish_sources
                .as_ref()
                .is_none_or(|sources| sources.contains(&source))
    }

    /// Whether the session may publish the stream `stream_name` with these tracks: every
    /// source it carries is allowed (and publishing at all, even with no track).
    pub fn allows_stream(&self, stream_name: &str, has_audio: bool, has_video: bool) -> bool {
        self.can_publish
            && Grants::stream_sources(stream_name, has_audio, has_video)
                .into_iter()
                .all(|source| self.allows_source(source))
    }

    /// The sources a stream carries: a stream whose name ends with [`SCREEN_SHARE_SUFFIX`] is
    /// a screen share (video `ScreenShare`, audio `ScreenShareAudio`), any other a camera and
    /// microphone. Video first.
    pub fn stream_sources(stream_name: &str, has_audio: bool, has_video: bool) -> Vec<Source> {
        let (video, audio) = if stream_name.ends_with(SCREEN_SHARE_SUFFIX) {
            (Source::ScreenShare, Source::ScreenShareAudio)
        } else {
            (Source::Camera, Source::Microphone)
        };
        let mut sources = Vec::with_capacity(2);
        if has_video {
            sources.push(video);
        }
        if has_audio {
            sources.push(audio);
        }
        sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(json: &str) -> Option<VideoClaims> {
        serde_json::from_str(json).ok()
    }

    fn grants(json: &str) -> Option<Grants> {
        Grants::from_video(Login::new("alice"), None, 100, video(json))
    }

    #[test]
    fn absent_fields_take_livekit_defaults() {
        let g = grants("{}");
        let g = g.as_ref();
        assert_eq!(g.map(|g| g.can_publish), Some(true));
        assert_eq!(g.map(|g| g.can_subscribe), Some(true));
        assert_eq!(g.map(|g| g.can_publish_data), Some(true));
        assert_eq!(g.map(|g| g.room_join), Some(false));
        assert_eq!(g.map(|g| g.room_record), Some(false));
        assert_eq!(g.map(|g| g.room_admin), Some(false));
        assert_eq!(g.map(|g| g.hidden), Some(false));
        assert_eq!(g.map(|g| g.room.clone()), Some(RoomGrant::None));
        assert_eq!(g.map(|g| g.expires_unix), Some(Some(100)));
        // No video claim at all: the same.
        let none = Grants::from_video(Login::new("alice"), None, 100, None);
        assert_eq!(none.as_ref(), g);
    }

    #[test]
    fn room_join_is_needed_and_admin_does_not_bypass() {
        let room = RoomName::new("r1");
        let no_join = grants(r#"{"room":"r1","roomAdmin":true}"#);
        assert_eq!(no_join.map(|g| g.allows_room(&room)), Some(false));
        let one = grants(r#"{"room":"r1","roomJoin":true}"#);
        assert_eq!(one.as_ref().map(|g| g.allows_room(&room)), Some(true));
        assert_eq!(
            one.as_ref().map(|g| g.allows_room(&RoomName::new("r2"))),
            Some(false)
        );
        let no_room = grants(r#"{"roomJoin":true,"roomAdmin":true}"#);
        assert_eq!(no_room.map(|g| g.allows_room(&room)), Some(false));
    }

    #[test]
    fn star_is_any_room() {
        let any = grants(r#"{"room":"*","roomJoin":true}"#);
        assert_eq!(any.as_ref().map(|g| g.room.clone()), Some(RoomGrant::Any));
        assert_eq!(any.map(|g| g.allows_room(&RoomName::new("whatever"))), Some(true));
    }

    #[test]
    fn bad_room_names_are_refused() {
        let long = format!(r#"{{"room":"{}"}}"#, "r".repeat(ROOM_BYTES_MAX + 1));
        assert!(grants(&long).is_none());
        assert!(grants(r#"{"room":"a\nb"}"#).is_none());
    }

    #[test]
    fn sources_limit_publishing() {
        let g = grants(r#"{"canPublishSources":["camera","screen_share"]}"#);
        let g = g.as_ref();
        assert_eq!(g.map(|g| g.allows_source(Source::Camera)), Some(true));
        assert_eq!(g.map(|g| g.allows_source(Source::Microphone)), Some(false));
        assert_eq!(
            g.map(|g| g.allows_stream("r-a-1-screenShare", false, true)),
            Some(true)
        );
        assert_eq!(
            g.map(|g| g.allows_stream("r-a-1-screenShare", true, true)),
            Some(false)
        );
        assert_eq!(g.map(|g| g.allows_stream("r-a-1", false, true)), Some(true));
        let no_publish = grants(r#"{"canPublish":false}"#);
        assert_eq!(
            no_publish.as_ref().map(|g| g.allows_source(Source::Camera)),
            Some(false)
        );
        assert_eq!(
            no_publish.map(|g| g.allows_stream("r-a-1", false, false)),
            Some(false)
        );
        // An unknown source name is not silently dropped.
        assert!(video(r#"{"canPublishSources":["hologram"]}"#).is_none());
    }

    #[test]
    fn screen_share_is_told_by_the_sdk_suffix() {
        assert_eq!(
            Grants::stream_sources("room-bob-1234-screenShare", true, true),
            vec![Source::ScreenShare, Source::ScreenShareAudio]
        );
        assert_eq!(
            Grants::stream_sources("room-bob-1234", true, true),
            vec![Source::Camera, Source::Microphone]
        );
        assert_eq!(
            Grants::stream_sources("room-bob-1234-screenshare", false, true),
            vec![Source::Camera]
        );
        assert_eq!(
            Grants::stream_sources("x-screenShare", true, false),
            vec![Source::ScreenShareAudio]
        );
        assert!(Grants::stream_sources("x", false, false).is_empty());
    }

    #[test]
    fn everything_allows_everything() {
        let g = Grants::everything(Login::new("bob"));
        assert!(g.allows_room(&RoomName::new("any")));
        assert!(g.allows_source(Source::ScreenShareAudio));
        assert!(g.can_subscribe && g.can_publish_data && g.room_record && g.room_admin && !g.hidden);
        assert_eq!(g.jti, None);
    }

    #[test]
    fn source_serde_names() {
        let names = serde_json::to_string(&[
            Source::Camera,
            Source::Microphone,
            Source::ScreenShare,
            Source::ScreenShareAudio,
        ])
        .unwrap_or_default();
        assert_eq!(
            names,
            r#"["camera","microphone","screen_share","screen_share_audio"]"#
        );
    }
}
