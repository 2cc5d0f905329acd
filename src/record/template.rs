//! Recording file names: `--record-name-template` with its placeholders, and the sanitising
//! that keeps every name inside the recording directory.
//!
//! Pure code; parsed once at start-up (an unknown placeholder or a `/` is a configuration
//! error), rendered on the control thread at publish and on a writer thread at the end.
//! Invariants: a rendered name is a single path component of at most [`FILE_STEM_BYTES_MAX`]
//! bytes from `[A-Za-z0-9._-]`, never empty, never starting with a dot.

use std::fmt;

/// The default template: WCS's own naming (`stream-{mediaSessionId}-{sessionId}.mp4`).
pub const NAME_TEMPLATE_DEFAULT: &str = "stream-{mediaSessionId}-{sessionId}";
/// The longest file name stem written (ext4 allows 255 bytes; `.mp4.json` and a collision
/// suffix must fit beside it).
pub const FILE_STEM_BYTES_MAX: usize = 200;
/// The longest a single placeholder's value may make its part of the name.
const VALUE_BYTES_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    StreamName,
    Login,
    Room,
    MediaSessionId,
    SessionId,
    StartTime,
    EndTime,
    Duration,
    VideoCodec,
    AudioCodec,
}

impl Placeholder {
    const ALL: [(&'static str, Placeholder); 10] = [
        ("streamName", Placeholder::StreamName),
        ("login", Placeholder::Login),
        ("room", Placeholder::Room),
        ("mediaSessionId", Placeholder::MediaSessionId),
        ("sessionId", Placeholder::SessionId),
        ("startTime", Placeholder::StartTime),
        ("endTime", Placeholder::EndTime),
        ("duration", Placeholder::Duration),
        ("videoCodec", Placeholder::VideoCodec),
        ("audioCodec", Placeholder::AudioCodec),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    parts: Vec<Part>,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{0}}} in the record name template")]
    Unknown(String),
    #[error("unclosed '{{' in the record name template")]
    Unclosed,
    #[error("the record name template may not contain '/' or '\\': names stay in the record directory")]
    Separator,
    #[error("the record name template is empty")]
    Empty,
}

/// What a name is made from; `None` renders as empty (sanitised to `_` if nothing is left).
#[derive(Debug, Clone, Default)]
pub struct NameValues {
    pub stream_name: String,
    pub login: String,
    pub room: String,
    pub media_session_id: String,
    pub session_id: String,
    /// Milliseconds since the UNIX epoch.
    pub start_time_ms: u64,
    pub end_time_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub video_codec: String,
    pub audio_codec: String,
}

impl NameTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        if template.contains('/') || template.contains('\\') {
            return Err(TemplateError::Separator);
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (text, after) = rest.split_at(open);
            if !text.is_empty() {
                parts.push(Part::Text(text.to_owned()));
            }
            let close = after.find('}').ok_or(TemplateError::Unclosed)?;
            let name = after.get(1..close).unwrap_or_default();
            let placeholder = Placeholder::ALL
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, p)| *p)
                .ok_or_else(|| TemplateError::Unknown(name.to_owned()))?;
            parts.push(Part::Value(placeholder));
            rest = after.get(close + 1..).unwrap_or_default();
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if parts.is_empty() {
            return Err(TemplateError::Empty);
        }
        Ok(NameTemplate {
            parts,
            source: template.to_owned(),
        })
    }

    /// Whether the name is known only at the end (it uses `{endTime}` or `{duration}`).
    pub fn named_at_end(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Value(Placeholder::EndTime | Placeholder::Duration)))
    }

    /// The file name stem (without `.mp4`), sanitised.
    pub fn render(&self, values: &NameValues) -> String {
        let mut name = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => name.push_str(text),
                Part::Value(placeholder) => {
                    let value = value_of(*placeholder, values);
                    name.push_str(truncate(&value, VALUE_BYTES_MAX));
                }
            }
        }
        sanitise(&name)
    }
}

impl fmt::Display for NameTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Default for NameTemplate {
    fn default() -> Self {
        NameTemplate::parse(NAME_TEMPLATE_DEFAULT).unwrap_or(NameTemplate {
            parts: vec![Part::Text("stream".to_owned())],
            source: NAME_TEMPLATE_DEFAULT.to_owned(),
        })
    }
}

fn value_of(placeholder: Placeholder, v: &NameValues) -> String {
    let optional = |value: Option<u64>| value.map(|n| n.to_string()).unwrap_or_default();
    match placeholder {
        Placeholder::StreamName => v.stream_name.clone(),
        Placeholder::Login => v.login.clone(),
        Placeholder::Room => v.room.clone(),
        Placeholder::MediaSessionId => v.media_session_id.clone(),
        Placeholder::SessionId => v.session_id.clone(),
        Placeholder::StartTime => v.start_time_ms.to_string(),
        Placeholder::EndTime => optional(v.end_time_ms),
        Placeholder::Duration => optional(v.duration_ms),
        Placeholder::VideoCodec => v.video_codec.clone(),
        Placeholder::AudioCodec => v.audio_codec.clone(),
    }
}

fn truncate(value: &str, bytes: usize) -> &str {
    let mut end = value.len().min(bytes);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default()
}

/// Keep `[A-Za-z0-9._-]`, turn everything else into `_`, no leading dot, at most
/// [`FILE_STEM_BYTES_MAX`] bytes, never empty.
pub fn sanitise(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(FILE_STEM_BYTES_MAX);
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> NameValues {
        NameValues {
            stream_name: "room-1-alice".into(),
            login: "alice".into(),
            room: "room-1".into(),
            media_session_id: "34296a60-1ec2-11ee".into(),
            session_id: "db8mp51bajcidn9qmcnda3967k".into(),
            start_time_ms: 1_700_000_000_123,
            end_time_ms: Some(1_700_000_010_123),
            duration_ms: Some(10_000),
            video_codec: "H264".into(),
            audio_codec: "opus".into(),
        }
    }

    #[test]
    fn the_default_is_wcs_naming() {
        let name = NameTemplate::default().render(&values());
        assert_eq!(name, "stream-34296a60-1ec2-11ee-db8mp51bajcidn9qmcnda3967k");
        assert!(!NameTemplate::default().named_at_end());
    }

    #[test]
    fn every_placeholder_renders() {
        let template = NameTemplate::parse(
            "{streamName}_{login}_{room}_{mediaSessionId}_{sessionId}_{startTime}_{endTime}_{duration}_{videoCodec}_{audioCodec}",
        )
        .unwrap();
        assert!(template.named_at_end());
        assert_eq!(
            template.render(&values()),
            "room-1-alice_alice_room-1_34296a60-1ec2-11ee_db8mp51bajcidn9qmcnda3967k_1700000000123_1700000010123_10000_H264_opus"
        );
    }

    #[test]
    fn hostile_values_stay_one_file_in_the_directory() {
        let mut v = values();
        v.stream_name = "../../etc/passwd".into();
        v.login = "\u{0}ålice\n;rm -rf".into();
        let name = NameTemplate::parse("{streamName}{login}").unwrap().render(&v);
        assert_eq!(name, "_._.._etc_passwd__lice__rm_-rf");
        assert!(!name.contains('/') && !name.starts_with('.'));
        v.stream_name = ".hidden".into();
        assert!(!NameTemplate::parse("{streamName}")
            .unwrap()
            .render(&v)
            .starts_with('.'));
        v.stream_name = "é".repeat(500);
        let long = NameTemplate::parse("{streamName}{streamName}{streamName}{streamName}")
            .unwrap()
            .render(&v);
        assert!(long.len() <= FILE_STEM_BYTES_MAX);
        v.stream_name = String::new();
        assert_eq!(NameTemplate::parse("{streamName}").unwrap().render(&v), "_");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(
            NameTemplate::parse("{nope}"),
            Err(TemplateError::Unknown("nope".into()))
        );
        assert_eq!(NameTemplate::parse("a{login"), Err(TemplateError::Unclosed));
        assert_eq!(NameTemplate::parse("x/{login}"), Err(TemplateError::Separator));
        assert_eq!(NameTemplate::parse(""), Err(TemplateError::Empty));
    }
}
