//! Exclusion benchmarks: the next 1,000 fire times of a weekday cron with a 30-holiday
//! Calendar and a weekend rule (Skip, Following, Preceding), against the same cron without one.
//! Run: `cargo bench --bench exclusion`; `cargo test --benches` runs each once as a test.

use std::hint::black_box;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, criterion_group, criterion_main};
use horolog_core::exclusion::Exclusions;
use horolog_core::spec::{ExclusionSpec, OnExcluded, TriggerSpec};
use horolog_core::trigger::Trigger;

const FIRES: usize = 1_000;

fn from() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

fn weekday_cron() -> Trigger {
    let spec: TriggerSpec = serde_json::from_value(
        serde_json::json!({"cron": "0 6 * * mon-fri", "timezone": "America/New_York"}),
    )
    .expect("benchmark spec");
    Trigger::compile(&spec, from()).expect("benchmark trigger")
}

/// 30 holidays spread over the four years the 1,000 fire times span, and the weekend.
fn holidays() -> Exclusions {
    let first = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default();
    let days = (0..30u64)
        .filter_map(|i| first.checked_add_days(Days::new(i * 47)))
        .map(|d| d.to_string())
        .collect();
    let spec = ExclusionSpec {
        timezone: Some("America/New_York".into()),
        days,
        recurring: vec![horolog_core::spec::CronFields {
            day_of_week: Some("sat,sun".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    Exclusions::compile("holidays", "spec", &spec, Tz::UTC).expect("benchmark calendar")
}

fn next_fires(t: &Trigger) -> Option<DateTime<Utc>> {
    t.fire_times(Some(black_box(from()))).take(FIRES).last()
}

fn exclusion(c: &mut Criterion) {
    let mut group = c.benchmark_group("next 1000 fire times, cron 0 6 * * mon-fri");
    let plain = weekday_cron();
    group.bench_function("no calendar", |b| b.iter(|| next_fires(&plain)));
    for on in [OnExcluded::Skip, OnExcluded::Following, OnExcluded::Preceding] {
        let excluded = weekday_cron().excluding(holidays(), on);
        group.bench_function(format!("30 holidays + weekend, {on:?}"), |b| {
            b.iter(|| next_fires(&excluded))
        });
    }
    group.finish();
}

criterion_group!(benches, exclusion);
criterion_main!(benches);
