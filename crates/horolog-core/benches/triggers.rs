//! Trigger engine benchmarks: the next 100 fire times of representative triggers, and the same
//! for crontab expressions side by side with the `cron` crate (which wants seconds first).
//! Run: `cargo bench --bench triggers`; results and machine in BENCHMARKS.md.

use std::hint::black_box;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use horolog_core::spec::TriggerSpec;
use horolog_core::trigger::Trigger;

const FIRES: usize = 100;

fn from() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:17:23Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

fn trigger(json: serde_json::Value) -> Trigger {
    let spec: TriggerSpec = serde_json::from_value(json).expect("benchmark spec");
    Trigger::compile(&spec, from()).expect("benchmark trigger")
}

fn next_fires(t: &Trigger) -> Option<DateTime<Utc>> {
    t.fire_times(Some(black_box(from()))).take(FIRES).last()
}

fn representative(c: &mut Criterion) {
    use serde_json::json;
    let start = "2024-01-01T00:00:00Z";
    let cases = [
        (
            "cron every minute",
            json!({"cron": "* * * * *", "startTime": start}),
        ),
        (
            "cron weekdays 09:00",
            json!({"cron": "0 9 * * mon-fri", "startTime": start}),
        ),
        (
            "cron */15 seconds",
            json!({"cron": "*/15 * * * * *", "startTime": start}),
        ),
        (
            "cronFields last fri",
            json!({"cronFields": {"day": "last fri", "hour": "17"}, "startTime": start}),
        ),
        (
            "cron Europe/Berlin 02:30 (DST)",
            json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin", "startTime": start}),
        ),
        (
            "cron America/New_York */10",
            json!({"cron": "*/10 * * * *", "timezone": "America/New_York", "startTime": start}),
        ),
        ("interval 1h30m", json!({"interval": "1h30m", "startTime": start})),
        (
            "calendarInterval monthly",
            json!({"calendarInterval": {"months": 1, "hour": 9}, "startTime": start}),
        ),
        (
            "anyOf(cron, interval)",
            json!({"anyOf": [{"cron": "0 9 * * mon-fri"}, {"interval": "2h"}], "startTime": start}),
        ),
    ];
    let mut group = c.benchmark_group("next 100 fire times");
    for (name, json) in cases {
        let t = trigger(json);
        group.bench_function(name, |b| b.iter(|| next_fires(&t)));
    }
    group.finish();

    let mut group = c.benchmark_group("one next_after");
    let t = trigger(json!({"cron": "0 9 * * mon-fri", "timezone": "Europe/Berlin", "startTime": start}));
    group.bench_function("cron weekdays 09:00 Europe/Berlin", |b| {
        b.iter(|| t.next_after(Some(black_box(from()))))
    });
    let spec: TriggerSpec = serde_json::from_value(json!({"cron": "0 9 * * mon-fri"})).expect("spec");
    group.bench_function("compile cron", |b| {
        b.iter(|| Trigger::compile(black_box(&spec), from()))
    });
    group.finish();
}

fn versus_cron_crate(c: &mut Criterion) {
    // (horolog crontab, cron crate form). Day-of-week only by name: the cron crate numbers 1 = Sunday.
    let cases = [
        ("* * * * *", "0 * * * * *"),
        ("0 9 * * mon-fri", "0 0 9 * * Mon-Fri"),
        ("*/15 * * * * *", "*/15 * * * * *"),
        ("*/5 * * * *", "0 */5 * * * *"),
        ("0 */2 * * *", "0 0 */2 * * *"),
        ("30 2 1,15 * *", "0 30 2 1,15 * *"),
        ("0 0 1 * *", "0 0 0 1 * *"),
        ("15,45 8-18 * jan-jun mon,wed", "0 15,45 8-18 * Jan-Jun Mon,Wed"),
    ];
    for (ours, theirs) in cases {
        let t = trigger(serde_json::json!({"cron": ours, "startTime": "2024-01-01T00:00:00Z"}));
        let schedule = cron::Schedule::from_str(theirs).expect("cron crate parses");
        // Both must agree before their speed is compared.
        let a: Vec<DateTime<Utc>> = t.fire_times(Some(from())).take(FIRES).collect();
        let b: Vec<DateTime<Utc>> = schedule.after(&from()).take(FIRES).collect();
        assert_eq!(a, b, "{ours} vs {theirs}");

        let mut group = c.benchmark_group(format!("vs cron crate: {ours}"));
        group.bench_function("horolog", |b| b.iter(|| next_fires(&t)));
        group.bench_function("cron 0.17", |b| {
            b.iter(|| schedule.after(&black_box(from())).take(FIRES).last())
        });
        group.finish();
    }
}

criterion_group!(benches, representative, versus_cron_crate);
criterion_main!(benches);
