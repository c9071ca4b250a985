//! Benchmarks of the planner: an on-time pass, and one-pass catch-ups after downtime: a day of
//! a scanned source, ten years of an every-second interval (counted arithmetically), ten years
//! of a daily calendarInterval, and three days of an every-second cron (scanned up to the
//! bound, then searched backwards).

use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use horolog_core::plan::{FireTimes, Policy, plan};
use horolog_core::spec::{CoalescePolicy, TriggerSpec};
use horolog_core::trigger::Trigger;

/// Every `period` seconds from `start`.
struct Every {
    start: DateTime<Utc>,
    period: i64,
}

impl FireTimes for Every {
    fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let Some(after) = after else {
            return Some(self.start);
        };
        let steps = ((after - self.start).num_seconds() / self.period + 1).max(0);
        Some(self.start + TimeDelta::seconds(steps * self.period))
    }
}

fn planner(c: &mut Criterion) {
    let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let source = Every { start, period: 1 };
    let no_jitter = |_: DateTime<Utc>, _: TimeDelta| TimeDelta::zero();
    c.bench_function("plan: one fire time due", |b| {
        let policy = Policy::default();
        b.iter(|| {
            plan(
                &source,
                Some(start),
                black_box(start + TimeDelta::seconds(1)),
                &policy,
                no_jitter,
            )
        })
    });
    for coalesce in [CoalescePolicy::Latest, CoalescePolicy::All] {
        c.bench_function(
            &format!("plan: catch up a day of 1s fire times ({coalesce:?})"),
            |b| {
                let policy = Policy {
                    coalesce,
                    ..Policy::default()
                };
                b.iter(|| {
                    plan(
                        &source,
                        Some(start),
                        black_box(start + TimeDelta::days(1)),
                        &policy,
                        no_jitter,
                    )
                })
            },
        );
    }
}

fn trigger(json: serde_json::Value, created: DateTime<Utc>) -> Trigger {
    let spec: TriggerSpec = serde_json::from_value(json).expect("benchmark spec");
    Trigger::compile(&spec, created).expect("benchmark trigger")
}

fn backlogs(c: &mut Criterion) {
    use serde_json::json;
    let now = DateTime::from_timestamp(1_767_225_600, 500_000_000).unwrap_or_default();
    let no_jitter = |_: DateTime<Utc>, _: TimeDelta| TimeDelta::zero();
    let ten_years_ago = (now - TimeDelta::days(3653)).to_rfc3339();
    let three_days_ago = (now - TimeDelta::days(3)).to_rfc3339();
    let cases = [
        (
            "ten years of a 1s interval",
            json!({"interval": "1s", "startTime": ten_years_ago}),
        ),
        (
            "ten years of a daily calendarInterval (Europe/Berlin)",
            json!({"calendarInterval": {"days": 1, "hour": 2, "minute": 30},
                   "timezone": "Europe/Berlin", "startTime": ten_years_ago}),
        ),
        (
            "three days of an every-second cron",
            json!({"cron": "* * * * * *", "startTime": three_days_ago}),
        ),
    ];
    for (name, json) in cases {
        let source = trigger(json, now);
        for coalesce in [CoalescePolicy::Latest, CoalescePolicy::All] {
            let policy = Policy {
                coalesce,
                ..Policy::default()
            };
            c.bench_function(&format!("plan: {name} ({coalesce:?})"), |b| {
                b.iter(|| plan(&source, None, black_box(now), &policy, no_jitter))
            });
        }
    }
}

criterion_group!(benches, planner, backlogs);
criterion_main!(benches);
