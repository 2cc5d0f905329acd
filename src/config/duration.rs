//! Durations as settings take them: integer seconds (`30`) or a number with a unit suffix
//! (`250ms`, `90s`, `5m`, `1h`), on the command line and in the TOML file (where a bare
//! integer is also seconds).
//!
//! Pure parsing, used at start-up. Invariant: a parsed value never overflows (`checked_mul`);
//! an unknown unit or a value that is not a whole number is refused with the accepted forms.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDuration(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration: give whole seconds (30) or a number with ms, s, m or h (90s, 5m, 1h)")]
pub struct ParseDurationError(pub String);

impl FromStr for SettingDuration {
    type Err = ParseDurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || ParseDurationError(text.to_owned());
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let value: u64 = number.parse().map_err(|_| refuse())?;
        let millis_per_unit: u64 = match unit.trim() {
            "" | "s" => 1000,
            "ms" => 1,
            "m" => 60 * 1000,
            "h" => 60 * 60 * 1000,
            _ => return Err(refuse()),
        };
        let millis = value.checked_mul(millis_per_unit).ok_or_else(refuse)?;
        Ok(SettingDuration(Duration::from_millis(millis)))
    }
}

impl fmt::Display for SettingDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{}s", millis / 1000)
        } else {
            write!(f, "{millis}ms")
        }
    }
}

impl<'de> Deserialize<'de> for SettingDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(seconds) => Ok(SettingDuration(Duration::from_secs(seconds))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Duration, ParseDurationError> {
        text.parse::<SettingDuration>().map(|d| d.0)
    }

    #[test]
    fn seconds_and_suffixes() {
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse(" 2 s "), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn junk_and_overflow_are_refused() {
        for bad in ["", "s", "1.5s", "-1", "10 minutes", "3d", "99999999999999999999h"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&format!("{}h", u64::MAX / 1000)).is_err());
    }

    #[test]
    fn toml_takes_integers_and_text() {
        #[derive(Deserialize)]
        struct Holder {
            a: SettingDuration,
            b: SettingDuration,
        }
        let holder: Holder = toml::from_str("a = 20\nb = \"5m\"").unwrap();
        assert_eq!(holder.a.0, Duration::from_secs(20));
        assert_eq!(holder.b.0, Duration::from_secs(300));
        assert!(toml::from_str::<Holder>("a = \"x\"\nb = 1").is_err());
    }

    #[test]
    fn displays_the_way_it_parses() {
        for text in ["30s", "250ms"] {
            assert_eq!(
                parse(text).map(|d| SettingDuration(d).to_string()),
                Ok(text.to_owned())
            );
        }
    }
}
