//! Durations as users write them: `90s`, `1h30m`, `2d`, `500ms`, `1w`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern the CRD schema enforces; `Duration::from_str` accepts exactly this language.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|w|d|h|m|s))+$";
/// The longest duration string the CRD schema accepts (`maxLength`). Any string of the
/// pattern up to this length is read without overflow: at worst it is refused as longer than
/// [`MAX_DURATION_DAYS`].
pub const DURATION_MAX_LENGTH: usize = 32;
/// The longest duration accepted, in days (100 years of 366 days): anything longer is a typo,
/// and stays far inside chrono's range (about 292 million years) so fire-time arithmetic
/// cannot overflow.
pub const MAX_DURATION_DAYS: u64 = 36_600;

/// A non-negative span of time written with the units `w d h m s ms`, e.g. `1h30m`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

/// A duration string that does not follow the `1h30m` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a duration: {why} (write e.g. \"90s\", \"1h30m\", \"2d\", \"500ms\"; units w d h m s ms)"
)]
pub struct DurationError {
    /// The offending input.
    pub value: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl Duration {
    /// The duration as a `std::time::Duration`.
    pub fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// The duration as a `chrono::TimeDelta` (saturating at chrono's maximum).
    pub fn as_chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.0).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// A duration of whole milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    /// True for a zero-length duration.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| DurationError {
            value: s.to_string(),
            why,
        };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.len() > DURATION_MAX_LENGTH {
            return Err(err("it is longer than 32 characters"));
        }
        let mut total_ms: u128 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("every unit needs a number before it"));
            }
            let number: u128 = rest[..digits]
                .parse()
                .map_err(|_| err("it is longer than 100 years (36600d)"))?;
            rest = &rest[digits..];
            let (unit_ms, unit_len) = if rest.starts_with("ms") {
                (1, 2)
            } else {
                match rest.as_bytes().first() {
                    Some(b'w') => (7 * 86_400_000, 1),
                    Some(b'd') => (86_400_000, 1),
                    Some(b'h') => (3_600_000, 1),
                    Some(b'm') => (60_000, 1),
                    Some(b's') => (1_000, 1),
                    Some(_) => return Err(err("unknown unit")),
                    None => return Err(err("the last number has no unit")),
                }
            };
            rest = &rest[unit_len..];
            total_ms = number
                .checked_mul(unit_ms)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| err("it is longer than 100 years (36600d)"))?;
        }
        if total_ms > u128::from(MAX_DURATION_DAYS) * 86_400_000 {
            return Err(err("it is longer than 100 years (36600d)"));
        }
        Ok(Duration(std::time::Duration::from_millis(total_ms as u64)))
    }
}

impl fmt::Display for Duration {
    /// The canonical form: largest units first, e.g. `1h30m`, `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000u128),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": DURATION_MAX_LENGTH,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_durations() {
        let cases = [
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("2d", 172_800_000),
            ("500ms", 500),
            ("1w", 604_800_000),
            ("1m500ms", 60_500),
            ("0s", 0),
        ];
        for (text, ms) in cases {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.as_std().as_millis(), ms, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_durations_naming_the_value() {
        for bad in [
            "",
            "5",
            "h",
            "1.5h",
            "1y",
            "-5s",
            "5 s",
            "99999999999999999999999999d",
            "99999999999999w",
            "36601d",
            "1w1w1w1w1w1w1w1w1w1w1w1w1w1w1w1w1w",
        ] {
            let err = bad.parse::<Duration>().unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn every_pattern_string_up_to_the_max_length_reads_without_overflow() {
        let longest_number = "9".repeat(DURATION_MAX_LENGTH - 2);
        for text in [
            format!("{longest_number}ms"),
            format!("{}w", "9".repeat(DURATION_MAX_LENGTH - 1)),
            "1ms".repeat(DURATION_MAX_LENGTH / 3),
        ] {
            assert!(text.len() <= DURATION_MAX_LENGTH, "{text}");
            // A clean Ok or a clean error naming the value; never a panic.
            if let Err(e) = text.parse::<Duration>() {
                assert_eq!(e.value, text);
            }
        }
        assert_eq!(
            "36600d".parse::<Duration>().map(|d| d.as_std().as_secs()),
            Ok(MAX_DURATION_DAYS * 86_400)
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["1h30m", "2d", "500ms", "1m500ms", "0s", "3d4h5m6s7ms"] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
        }
        assert_eq!("90s".parse::<Duration>().unwrap().to_string(), "1m30s");
    }
}
