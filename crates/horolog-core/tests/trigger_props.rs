//! Properties of the trigger engine over generated inputs: the parsers never panic, and fire
//! times of any valid trigger are strictly increasing, inside the window, and after the cursor.

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::spec::{CalendarInterval, CronField, CronFields, Duration, LeafTrigger, TriggerSpec};
use horolog_core::trigger::Trigger;
use proptest::prelude::*;

const ZONES: [&str; 8] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Beirut",
    "Pacific/Apia",
];

fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// Cron-ish text: pieces users and typos produce, glued by spaces, commas, dashes and slashes.
fn cron_text() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("*".to_string()),
        (0u32..70).prop_map(|n| n.to_string()),
        Just("mon".to_string()),
        Just("fri".to_string()),
        Just("jan".to_string()),
        Just("last".to_string()),
        Just("2nd".to_string()),
        Just("L".to_string()),
        Just("#".to_string()),
        Just("@daily".to_string()),
        "[a-z0-9*/,#?@-]{0,4}",
        any::<String>(),
    ];
    let sep = prop_oneof![Just(" "), Just(","), Just("-"), Just("/"), Just("  "), Just("")];
    proptest::collection::vec((atom, sep), 0..9)
        .prop_map(|parts| parts.into_iter().map(|(a, s)| format!("{a}{s}")).collect())
}

/// Field values that are mostly valid, so the generated triggers actually fire.
fn field_value(max: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        (0..=max).prop_map(|n| n.to_string()),
        (1..=max.max(2) / 2).prop_map(|s| format!("*/{s}")),
        (0..=max, 0..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
    ]
}

fn valid_leaf() -> impl Strategy<Value = LeafTrigger> {
    let cron = (
        field_value(59),
        field_value(23),
        field_value(28),
        field_value(12),
        field_value(7),
    )
        .prop_map(|(m, h, d, mo, w)| {
            let (d, mo) = (
                if d == "0" { "1".into() } else { d },
                if mo == "0" { "1".into() } else { mo },
            );
            let d = if d.starts_with('0') && d.contains('-') {
                d.replacen('0', "1", 1)
            } else {
                d
            };
            let mo = if mo.starts_with('0') && mo.contains('-') {
                mo.replacen('0', "1", 1)
            } else {
                mo
            };
            LeafTrigger {
                cron: Some(format!("{m} {h} {d} {mo} {w}")),
                ..Default::default()
            }
        });
    let fields = (
        field_value(59),
        field_value(23),
        prop_oneof![Just(None), Just(Some("last fri")), Just(Some("2nd mon"))],
    )
        .prop_map(|(s, h, day)| LeafTrigger {
            cron_fields: Some(CronFields {
                second: Some(CronField(s)),
                hour: Some(CronField(h)),
                day: day.map(CronField::from),
                ..Default::default()
            }),
            ..Default::default()
        });
    let interval = (28u64..200_000).prop_map(|ms| LeafTrigger {
        interval: Some(Duration::from_millis(ms * 37)),
        ..Default::default()
    });
    let calendar =
        (0i32..2, 0i32..14, 0i32..3, 0i32..10, 0i32..24, 0i32..60).prop_map(|(y, mo, w, d, h, mi)| {
            let d = if y + mo + w + d == 0 { 1 } else { d };
            LeafTrigger {
                calendar_interval: Some(CalendarInterval {
                    years: y,
                    months: mo,
                    weeks: w,
                    days: d,
                    hour: h,
                    minute: mi,
                    second: 0,
                }),
                ..Default::default()
            }
        });
    let date = (0i64..2_000_000_000).prop_map(|s| LeafTrigger {
        date: Some(instant(s).fixed_offset()),
        ..Default::default()
    });
    prop_oneof![4 => cron, 2 => fields, 2 => interval, 2 => calendar, 1 => date]
}

fn spec_from_leaf(leaf: LeafTrigger) -> TriggerSpec {
    TriggerSpec {
        cron: leaf.cron,
        cron_fields: leaf.cron_fields,
        interval: leaf.interval,
        date: leaf.date,
        calendar_interval: leaf.calendar_interval,
        ..Default::default()
    }
}

fn valid_spec() -> impl Strategy<Value = TriggerSpec> {
    let window = (
        0usize..ZONES.len(),
        946_684_800i64..1_900_000_000,
        proptest::option::of(1i64..400_000_000),
    );
    let shape = prop_oneof![
        4 => valid_leaf().prop_map(spec_from_leaf),
        1 => proptest::collection::vec(valid_leaf(), 1..4)
            .prop_map(|m| TriggerSpec { any_of: Some(m), ..Default::default() }),
        1 => proptest::collection::vec(valid_leaf(), 1..3)
            .prop_map(|m| TriggerSpec { all_of: Some(m), ..Default::default() }),
    ];
    (shape, window).prop_map(|(mut spec, (zone, start, len))| {
        spec.timezone = Some(ZONES[zone].to_string());
        spec.start_time = Some(instant(start).fixed_offset());
        spec.end_time = len.map(|l| instant(start + l).fixed_offset());
        spec
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn cron_parser_never_panics(text in cron_text(), zone in 0usize..ZONES.len()) {
        let spec = TriggerSpec { cron: Some(text), timezone: Some(ZONES[zone].into()), ..Default::default() };
        if let Ok(t) = Trigger::compile(&spec, instant(1_700_000_000)) {
            let _ = t.fire_times(None).take(3).count();
        }
    }

    #[test]
    fn cron_fields_never_panic(values in proptest::collection::vec(proptest::option::of(cron_text()), 8)) {
        let f = |i: usize| values[i].clone().map(CronField);
        let spec = TriggerSpec {
            cron_fields: Some(CronFields {
                year: f(0), month: f(1), day: f(2), week: f(3), day_of_week: f(4), hour: f(5), minute: f(6), second: f(7),
            }),
            ..Default::default()
        };
        if let Ok(t) = Trigger::compile(&spec, instant(1_700_000_000)) {
            let _ = t.fire_times(None).take(3).count();
        }
    }

    #[test]
    fn fire_times_increase_within_the_window(spec in valid_spec(), probe in 0i64..500_000_000) {
        let start = spec.start_time.map(|t| t.to_utc()).unwrap_or_default();
        let Ok(trigger) = Trigger::compile(&spec, start) else {
            // Only never-firing combinations may be rejected.
            return Ok(());
        };
        let end = spec.end_time.map(|t| t.to_utc());
        let mut prev: Option<DateTime<Utc>> = None;
        for t in trigger.fire_times(None).take(30) {
            prop_assert!(prev.is_none_or(|p| t > p), "{t} after {prev:?}");
            prop_assert!(end.is_none_or(|e| t <= e), "{t} after end {end:?}");
            if spec.date.is_none() {
                prop_assert!(t >= start, "{t} before start {start}");
            }
            prop_assert_eq!(trigger.next_after(prev), Some(t));
            prev = Some(t);
        }
        let after = start + TimeDelta::seconds(probe) + TimeDelta::milliseconds(probe % 1000);
        if let Some(next) = trigger.next_after(Some(after)) {
            prop_assert!(next > after, "{next} not after {after}");
        }
    }
}
