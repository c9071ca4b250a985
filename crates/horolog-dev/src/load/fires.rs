//! Expected fire times of the bench's triggers, computed directly: the bench only creates
//! triggers simple enough (fixed intervals, "second S of every minute") that a few lines of
//! arithmetic are an independent oracle for the operator's trigger engine.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;

/// The half-open span of time `[start, end)` whose fire times the bench checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// First instant of the window (inclusive).
    pub start: DateTime<Utc>,
    /// End of the window (exclusive).
    pub end: DateTime<Utc>,
}

impl Window {
    /// True when `t` is in `[start, end)`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// The window's length in seconds (0 for an empty or inverted window).
    pub fn seconds(&self) -> f64 {
        ((self.end - self.start).num_milliseconds().max(0) as f64) / 1000.0
    }
}

/// When one bench trigger fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirePattern {
    /// `start`, `start + period`, `start + 2·period`, …: an `interval` trigger anchored at its
    /// `startTime` (APScheduler's IntervalTrigger fires at the start time itself).
    Every {
        /// The anchor and first fire time.
        start: DateTime<Utc>,
        /// The period; must be positive.
        period: TimeDelta,
    },
    /// Second `second` of every minute, none before `start`: the 6-field cron `S * * * * *`
    /// (and, with `second` 0, the 5-field `* * * * *` of a CronJob).
    MinutelyAt {
        /// The second of the minute, 0..=59.
        second: u32,
        /// No fire time before this instant.
        start: DateTime<Utc>,
    },
}

impl FirePattern {
    /// The fire times within `window`, ascending.
    pub fn fire_times_in(&self, window: &Window) -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        if window.end <= window.start {
            return times;
        }
        match *self {
            FirePattern::Every { start, period } => {
                if period <= TimeDelta::zero() {
                    return times;
                }
                let period_ms = period.num_milliseconds().max(1);
                // The first k with start + k·period >= window.start, without walking from the anchor.
                let behind_ms = (window.start - start).num_milliseconds();
                let k = if behind_ms <= 0 {
                    0
                } else {
                    (behind_ms + period_ms - 1) / period_ms
                };
                let mut t = start + TimeDelta::milliseconds(k * period_ms);
                while t < window.end {
                    times.push(t);
                    t += TimeDelta::milliseconds(period_ms);
                }
            }
            FirePattern::MinutelyAt { second, start } => {
                let from = window.start.max(start);
                let Ok(minute) = from.duration_trunc(TimeDelta::minutes(1)) else {
                    return times;
                };
                let mut t = minute + TimeDelta::seconds(i64::from(second.min(59)));
                if t < from {
                    t += TimeDelta::minutes(1);
                }
                while t < window.end {
                    times.push(t);
                    t += TimeDelta::minutes(1);
                }
            }
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.to_utc())
            .expect("test time parses")
    }

    fn window(start: &str, end: &str) -> Window {
        Window {
            start: at(start),
            end: at(end),
        }
    }

    #[test]
    fn every_pattern_yields_anchor_multiples_inside_the_window_only() {
        let start = at("2026-01-01T00:00:00Z");
        let cases = [
            // (period s, window, expected fire times)
            (
                1,
                window("2026-01-01T00:00:10Z", "2026-01-01T00:00:13Z"),
                vec![
                    "2026-01-01T00:00:10Z",
                    "2026-01-01T00:00:11Z",
                    "2026-01-01T00:00:12Z",
                ],
            ),
            (
                30,
                window("2026-01-01T00:00:10Z", "2026-01-01T00:01:31Z"),
                vec![
                    "2026-01-01T00:00:30Z",
                    "2026-01-01T00:01:00Z",
                    "2026-01-01T00:01:30Z",
                ],
            ),
            // The window ends exclusively.
            (30, window("2026-01-01T00:00:01Z", "2026-01-01T00:00:30Z"), vec![]),
            // A window before the anchor starts at the anchor.
            (
                60,
                window("2025-12-31T23:59:00Z", "2026-01-01T00:00:01Z"),
                vec!["2026-01-01T00:00:00Z"],
            ),
        ];
        for (period, w, want) in cases {
            let pattern = FirePattern::Every {
                start,
                period: TimeDelta::seconds(period),
            };
            let want: Vec<_> = want.into_iter().map(at).collect();
            assert_eq!(pattern.fire_times_in(&w), want, "every {period}s in {w:?}");
        }
    }

    #[test]
    fn minutely_pattern_fires_at_its_second_of_each_minute_not_before_start() {
        let cases = [
            // (second, start, window, expected)
            (
                17,
                "2026-01-01T00:00:00Z",
                window("2026-01-01T00:00:20Z", "2026-01-01T00:02:18Z"),
                vec!["2026-01-01T00:01:17Z", "2026-01-01T00:02:17Z"],
            ),
            (
                0,
                "2026-01-01T00:00:00Z",
                window("2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z"),
                vec!["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"],
            ),
            // startTime later than the window start holds the first fire back.
            (
                5,
                "2026-01-01T00:01:06Z",
                window("2026-01-01T00:00:00Z", "2026-01-01T00:03:00Z"),
                vec!["2026-01-01T00:02:05Z"],
            ),
            (
                59,
                "2026-01-01T00:00:00Z",
                window("2026-01-01T00:00:00Z", "2026-01-01T00:00:59Z"),
                vec![],
            ),
        ];
        for (second, start, w, want) in cases {
            let pattern = FirePattern::MinutelyAt {
                second,
                start: at(start),
            };
            let want: Vec<_> = want.into_iter().map(at).collect();
            assert_eq!(
                pattern.fire_times_in(&w),
                want,
                "second {second} from {start} in {w:?}"
            );
        }
    }

    #[test]
    fn empty_window_and_zero_period_yield_nothing() {
        let t = at("2026-01-01T00:00:00Z");
        let empty = Window { start: t, end: t };
        let every = FirePattern::Every {
            start: t,
            period: TimeDelta::seconds(1),
        };
        assert!(every.fire_times_in(&empty).is_empty());
        let zero = FirePattern::Every {
            start: t,
            period: TimeDelta::zero(),
        };
        assert!(
            zero.fire_times_in(&window("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"))
                .is_empty()
        );
    }

    #[test]
    fn window_length_is_never_negative() {
        assert_eq!(
            window("2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z").seconds(),
            300.0
        );
        assert_eq!(
            window("2026-01-01T00:05:00Z", "2026-01-01T00:00:00Z").seconds(),
            0.0
        );
    }
}
