//! Benchmarks of the planner: an on-time pass, and a bounded catch-up after downtime.

use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use horolog_core::plan::{FireTimes, Policy, plan};
use horolog_core::spec::CoalescePolicy;

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

criterion_group!(benches, planner);
criterion_main!(benches);
