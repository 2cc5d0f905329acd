//! What an RTMP URL asks for. Encoders split the same URL differently (ffmpeg sends the app
//! `room/ROOM` and the key `LOGIN`; OBS the app `room` and the key `ROOM/LOGIN`), so the
//! application name and the stream name are joined with `/` and the path parsed whole.
//!
//! Sans-IO, on the control thread. Invariants: every name is 1..=[`RTMP_NAME_BYTES_MAX`]
//! bytes of printable characters other than `/`; the query (`?token=…`) is kept apart and
//! never becomes part of a name.

/// The longest room, login or stream name taken from an RTMP URL.
pub const RTMP_NAME_BYTES_MAX: usize = 128;

/// The paths we serve, for refusals.
pub const RTMP_PATHS: &str = "rtmp://HOST/room/ROOM/LOGIN or rtmp://HOST/live/NAME";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtmpTarget {
    /// `room/ROOM/X`: publish as participant `X`, or play stream (or participant) `X`.
    Room { room: String, name: String },
    /// `live/NAME`: a plain stream outside rooms.
    Live { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpPath {
    pub target: RtmpTarget,
    /// `token` from the query, if one was given.
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("Unknown path '{0}': use {RTMP_PATHS}")]
    Unknown(String),
    #[error("Invalid name in the RTMP path: 1 to {RTMP_NAME_BYTES_MAX} printable characters")]
    InvalidName,
}

/// Parse the application name and stream name of a publish or play.
pub fn parse(app: &str, stream: &str) -> Result<RtmpPath, PathError> {
    let (app, app_query) = split_query(app);
    let (stream, stream_query) = split_query(stream);
    let joined = format!("{app}/{stream}");
    let segments: Vec<&str> = joined.split('/').filter(|s| !s.is_empty()).collect();
    let token = [stream_query, app_query]
        .into_iter()
        .flatten()
        .find_map(|query| query_param(query, "token"));
    let target = match segments.as_slice() {
        ["room", room, name] => RtmpTarget::Room {
            room: checked(room)?,
            name: checked(name)?,
        },
        ["live", name] => RtmpTarget::Live { name: checked(name)? },
        _ => {
            let shown: String = joined
                .chars()
                .filter(|c| !c.is_control())
                .take(RTMP_NAME_BYTES_MAX)
                .collect();
            return Err(PathError::Unknown(shown));
        }
    };
    Ok(RtmpPath { target, token })
}

fn split_query(text: &str) -> (&str, Option<&str>) {
    match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
}

fn checked(name: &str) -> Result<String, PathError> {
    let valid = !name.is_empty()
        && name.len() <= RTMP_NAME_BYTES_MAX
        && name.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if valid {
        Ok(name.to_owned())
    } else {
        Err(PathError::InvalidName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(room: &str, name: &str) -> RtmpTarget {
        RtmpTarget::Room {
            room: room.into(),
            name: name.into(),
        }
    }

    #[test]
    fn every_split_of_a_room_url_parses_the_same() {
        for (app, key) in [
            ("room/r1", "alice"),
            ("room", "r1/alice"),
            ("room/r1/", "alice"),
            ("room/r1/alice", ""),
        ] {
            assert_eq!(
                parse(app, key).map(|p| p.target),
                Ok(room("r1", "alice")),
                "{app} + {key}"
            );
        }
        assert_eq!(
            parse("live", "cam").map(|p| p.target),
            Ok(RtmpTarget::Live { name: "cam".into() })
        );
    }

    #[test]
    fn the_token_comes_from_the_key_or_the_app() {
        let path = parse("room/r1", "alice?token=abc&x=1").expect("parses");
        assert_eq!(path.target, room("r1", "alice"));
        assert_eq!(path.token.as_deref(), Some("abc"));
        let path = parse("room?token=t2", "r1/bob").expect("parses");
        assert_eq!(path.token.as_deref(), Some("t2"));
    }

    #[test]
    fn unknown_paths_and_bad_names_are_refused() {
        assert!(matches!(parse("app", "x"), Err(PathError::Unknown(_))));
        assert!(matches!(parse("room/r1", ""), Err(PathError::Unknown(_))));
        assert!(matches!(parse("live", "a/b"), Err(PathError::Unknown(_))));
        assert_eq!(parse("live", &"x".repeat(200)), Err(PathError::InvalidName));
        assert_eq!(parse("live", "a\u{7}b"), Err(PathError::InvalidName));
    }
}
