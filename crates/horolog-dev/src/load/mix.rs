//! Which Schedules the bench creates: the `--mix` of trigger kinds, and one deterministic plan
//! (names, triggers, expected fire patterns) from it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use super::fires::FirePattern;
use horolog::api::{Duration, TriggerSpec};

/// The trigger kinds the bench creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// `interval: 1s`.
    EverySecond,
    /// `cron: "S * * * * *"` with S = index % 60, so a minute's fire times spread over its seconds.
    EveryMinuteCron,
    /// `cron: "0 * * * * *"`: every Schedule fires at second 0 of every minute, as most real
    /// schedules do (`* * * * *`, the top of the hour, midnight): the burst of issue 25.
    TopOfMinute,
    /// `interval` between `--interval-min` and `--interval-max`, with a random phase.
    Interval,
}

impl ScheduleKind {
    /// Every kind, in the order the report lists them.
    pub const ALL: [ScheduleKind; 4] = [
        ScheduleKind::EverySecond,
        ScheduleKind::EveryMinuteCron,
        ScheduleKind::TopOfMinute,
        ScheduleKind::Interval,
    ];

    /// The name used in `--mix`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::EverySecond => "every-second",
            ScheduleKind::EveryMinuteCron => "every-minute-cron",
            ScheduleKind::TopOfMinute => "top-of-minute",
            ScheduleKind::Interval => "interval",
        }
    }

    /// True for the minute-level cron kinds, the ones `--compare-cronjob` makes a CronJob
    /// (`* * * * *`) for.
    pub fn is_minutely(self) -> bool {
        matches!(self, ScheduleKind::EveryMinuteCron | ScheduleKind::TopOfMinute)
    }

    /// The letter in Schedule names: short names keep `<schedule>-<unix seconds>` well under
    /// the 63 characters a label value allows.
    fn letter(self) -> char {
        match self {
            ScheduleKind::EverySecond => 's',
            ScheduleKind::EveryMinuteCron => 'c',
            ScheduleKind::TopOfMinute => 't',
            ScheduleKind::Interval => 'i',
        }
    }
}

/// Shares of the trigger kinds, in percent, summing to 100.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix(Vec<(ScheduleKind, f64)>);

/// A `--mix` value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --mix {value:?}: {why} (write e.g. \"every-second=10%,every-minute-cron=80%,interval=10%\")"
)]
pub struct MixError {
    /// The offending input.
    pub value: String,
    /// What is wrong with it.
    pub why: String,
}

impl Default for Mix {
    /// All minute-level cron Schedules: the headline scenario.
    fn default() -> Self {
        Mix(vec![(ScheduleKind::EveryMinuteCron, 100.0)])
    }
}

impl FromStr for Mix {
    type Err = MixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| MixError {
            value: s.to_string(),
            why,
        };
        let mut shares: Vec<(ScheduleKind, f64)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, share) = part
                .split_once('=')
                .ok_or_else(|| err(format!("{part:?} is not KIND=PERCENT%")))?;
            let kind = ScheduleKind::ALL
                .into_iter()
                .find(|k| k.as_str() == name.trim())
                .ok_or_else(|| {
                    err(format!(
                        "unknown kind {:?}; kinds are every-second, every-minute-cron, top-of-minute, interval",
                        name.trim()
                    ))
                })?;
            let percent: f64 = share
                .trim()
                .strip_suffix('%')
                .ok_or_else(|| err(format!("{:?} needs a % sign", share.trim())))?
                .trim()
                .parse()
                .map_err(|_| err(format!("{:?} is not a number", share.trim())))?;
            if !(0.0..=100.0).contains(&percent) {
                return Err(err(format!("{percent}% is not between 0% and 100%")));
            }
            if shares.iter().any(|(k, _)| *k == kind) {
                return Err(err(format!("{} is given twice", kind.as_str())));
            }
            shares.push((kind, percent));
        }
        if shares.is_empty() {
            return Err(err("it names no kind".to_string()));
        }
        let total: f64 = shares.iter().map(|(_, p)| p).sum();
        if (total - 100.0).abs() > 0.001 {
            return Err(err(format!("the shares add up to {total}%, not 100%")));
        }
        Ok(Mix(shares))
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, p)| format!("{}={p}%", k.as_str()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Mix {
    /// How many of `total` Schedules each kind gets. Largest remainder, so the counts always add
    /// up to `total` and no kind is off by more than one from its exact share.
    pub fn counts(&self, total: usize) -> Vec<(ScheduleKind, usize)> {
        let exact: Vec<(ScheduleKind, f64)> = self
            .0
            .iter()
            .map(|(k, p)| (*k, p / 100.0 * total as f64))
            .collect();
        let mut counts: Vec<(ScheduleKind, usize)> =
            exact.iter().map(|(k, e)| (*k, e.floor() as usize)).collect();
        let mut left = total.saturating_sub(counts.iter().map(|(_, c)| c).sum());
        let mut by_remainder: Vec<usize> = (0..exact.len()).collect();
        by_remainder.sort_by(|&a, &b| {
            let ra = exact[a].1 - exact[a].1.floor();
            let rb = exact[b].1 - exact[b].1.floor();
            rb.total_cmp(&ra).then(a.cmp(&b))
        });
        for i in by_remainder.into_iter().cycle() {
            if left == 0 {
                break;
            }
            counts[i].1 += 1;
            left -= 1;
        }
        counts.sort_by_key(|(k, _)| *k);
        counts
    }
}

/// What to create, before anything is created.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedSchedule {
    /// The Schedule's name.
    pub name: String,
    /// Its kind.
    pub kind: ScheduleKind,
    /// Its fire times, which also give its trigger.
    pub pattern: FirePattern,
}

impl PlannedSchedule {
    /// The trigger for the Schedule's spec. Every trigger has an explicit startTime: the
    /// expected fire times must not depend on when the API server happened to create it.
    pub fn trigger(&self) -> TriggerSpec {
        match self.pattern {
            FirePattern::Every { start, period } => TriggerSpec {
                interval: period.to_std().ok().map(Duration::from),
                start_time: Some(start.fixed_offset()),
                ..Default::default()
            },
            FirePattern::MinutelyAt { second, start } => TriggerSpec {
                cron: Some(format!("{second} * * * * *")),
                start_time: Some(start.fixed_offset()),
                ..Default::default()
            },
        }
    }
}

/// Interval lengths for `interval` Schedules, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalRange {
    /// Shortest interval, at least 1 s.
    pub min_seconds: i64,
    /// Longest interval, at least `min_seconds`.
    pub max_seconds: i64,
}

/// The Schedules for `counts`, named `<prefix>-<letter><index>`, all starting at `start` (whole
/// seconds). Interval lengths and phases come from `seed`, so a rerun with the same seed creates
/// the same load.
pub fn plan_schedules(
    prefix: &str,
    counts: &[(ScheduleKind, usize)],
    start: DateTime<Utc>,
    intervals: IntervalRange,
    seed: u64,
) -> Vec<PlannedSchedule> {
    let mut rng = StdRng::seed_from_u64(seed);
    let min = intervals.min_seconds.max(1);
    let max = intervals.max_seconds.max(min);
    let mut plan = Vec::new();
    for &(kind, count) in counts {
        for i in 0..count {
            let pattern = match kind {
                ScheduleKind::EverySecond => FirePattern::Every {
                    start,
                    period: TimeDelta::seconds(1),
                },
                ScheduleKind::EveryMinuteCron => FirePattern::MinutelyAt {
                    second: (i % 60) as u32,
                    start,
                },
                ScheduleKind::TopOfMinute => FirePattern::MinutelyAt { second: 0, start },
                ScheduleKind::Interval => {
                    let period = rng.random_range(min..=max);
                    // A random phase, or every interval Schedule would fire together at `start`.
                    let phase = rng.random_range(0..period);
                    FirePattern::Every {
                        start: start + TimeDelta::seconds(phase),
                        period: TimeDelta::seconds(period),
                    }
                }
            };
            plan.push(PlannedSchedule {
                name: format!("{prefix}-{}{i}", kind.letter()),
                kind,
                pattern,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_kinds_and_percentages() {
        let cases = [
            (
                "every-second=10%,every-minute-cron=80%,interval=10%",
                vec![
                    (ScheduleKind::EverySecond, 10.0),
                    (ScheduleKind::EveryMinuteCron, 80.0),
                    (ScheduleKind::Interval, 10.0),
                ],
            ),
            ("interval=100%", vec![(ScheduleKind::Interval, 100.0)]),
            (
                " every-second = 33.5% , interval=66.5% ",
                vec![(ScheduleKind::EverySecond, 33.5), (ScheduleKind::Interval, 66.5)],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Mix>(), Ok(Mix(want)), "{input}");
        }
    }

    #[test]
    fn mix_rejects_what_it_cannot_mean() {
        let cases = [
            ("", "names no kind"),
            ("every-second", "is not KIND=PERCENT%"),
            ("hourly=100%", "unknown kind"),
            ("interval=100", "needs a % sign"),
            ("interval=lots%", "is not a number"),
            ("interval=50%,interval=50%", "given twice"),
            ("interval=50%,every-second=40%", "add up to 90%"),
            ("interval=150%,every-second=-50%", "not between"),
        ];
        for (input, why) in cases {
            let err = input.parse::<Mix>().expect_err(input);
            assert!(err.why.contains(why), "{input}: {err}");
        }
    }

    #[test]
    fn counts_add_up_to_the_total_by_largest_remainder() {
        let mix: Mix = "every-second=10%,every-minute-cron=80%,interval=10%"
            .parse()
            .expect("valid mix");
        let cases = [
            (10_000, [1_000, 8_000, 1_000]),
            (7, [1, 5, 1]),
            (1, [0, 1, 0]),
            (0, [0, 0, 0]),
        ];
        for (total, want) in cases {
            let counts: Vec<usize> = mix.counts(total).into_iter().map(|(_, c)| c).collect();
            assert_eq!(counts, want, "{total} schedules");
        }
        let thirds: Mix = "every-second=33.4%,every-minute-cron=33.3%,interval=33.3%"
            .parse()
            .expect("valid");
        let sum: usize = thirds.counts(100).into_iter().map(|(_, c)| c).sum();
        assert_eq!(sum, 100);
    }

    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).expect("valid timestamp")
    }

    #[test]
    fn minute_cron_schedules_spread_over_the_seconds_of_the_minute() {
        let plan = plan_schedules(
            "b",
            &[(ScheduleKind::EveryMinuteCron, 61)],
            start(),
            IntervalRange {
                min_seconds: 30,
                max_seconds: 300,
            },
            1,
        );
        let seconds: Vec<u32> = plan
            .iter()
            .filter_map(|p| match p.pattern {
                FirePattern::MinutelyAt { second, .. } => Some(second),
                FirePattern::Every { .. } => None,
            })
            .collect();
        assert_eq!(seconds.len(), 61);
        assert_eq!(&seconds[..3], &[0, 1, 2]);
        assert_eq!(seconds[59], 59);
        assert_eq!(seconds[60], 0);
        assert_eq!(plan[7].name, "b-c7");
        assert_eq!(plan[7].trigger().cron.as_deref(), Some("7 * * * * *"));
    }

    #[test]
    fn interval_schedules_stay_in_range_and_repeat_with_the_same_seed() {
        let range = IntervalRange {
            min_seconds: 30,
            max_seconds: 300,
        };
        let plan = plan_schedules("b", &[(ScheduleKind::Interval, 200)], start(), range, 7);
        for p in &plan {
            let FirePattern::Every { start: first, period } = p.pattern else {
                panic!("{} is not an interval", p.name);
            };
            assert!((30..=300).contains(&period.num_seconds()), "{}: {period}", p.name);
            assert!(
                first >= start() && first < start() + period,
                "{}: phase within one period",
                p.name
            );
        }
        assert_eq!(
            plan,
            plan_schedules("b", &[(ScheduleKind::Interval, 200)], start(), range, 7)
        );
    }

    #[test]
    fn every_trigger_carries_an_explicit_start_time() {
        let plan = plan_schedules(
            "b",
            &[
                (ScheduleKind::EverySecond, 1),
                (ScheduleKind::EveryMinuteCron, 1),
                (ScheduleKind::Interval, 1),
            ],
            start(),
            IntervalRange {
                min_seconds: 30,
                max_seconds: 30,
            },
            1,
        );
        for p in &plan {
            assert!(p.trigger().start_time.is_some(), "{}", p.name);
        }
        assert_eq!(
            plan[0].trigger().interval.map(|d| d.to_string()),
            Some("1s".to_string())
        );
    }
}
