//! Behaviour tables for the trigger engine. APScheduler conformance lives in
//! tests/conformance.rs; these pin horolog's own rules and the stateless-cursor contract.

use super::*;
use crate::spec::{CronField, Duration};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn spec(json: serde_json::Value) -> TriggerSpec {
    serde_json::from_value(json).unwrap()
}

fn compile(json: serde_json::Value) -> Trigger {
    Trigger::compile(&spec(json), at("2024-01-01T00:00:00Z")).unwrap()
}

fn fires(t: &Trigger, n: usize) -> Vec<String> {
    t.fire_times(None).take(n).map(rfc3339).collect()
}

#[test]
fn fire_sequences() {
    use serde_json::json;
    let cases: Vec<(&str, serde_json::Value, Vec<&str>)> = vec![
        (
            "weekday mornings",
            json!({"cron": "0 9 * * mon-fri", "startTime": "2024-01-05T10:00:00Z"}),
            vec![
                "2024-01-08T09:00:00Z",
                "2024-01-09T09:00:00Z",
                "2024-01-10T09:00:00Z",
            ],
        ),
        (
            "six fields: leading seconds",
            json!({"cron": "*/20 0 0 * * *", "startTime": "2024-01-01T00:00:00Z"}),
            vec![
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:00:20Z",
                "2024-01-01T00:00:40Z",
                "2024-01-02T00:00:00Z",
            ],
        ),
        (
            "@weekly is Sunday midnight",
            json!({"cron": "@weekly", "startTime": "2024-01-01T00:00:00Z"}),
            vec!["2024-01-07T00:00:00Z", "2024-01-14T00:00:00Z"],
        ),
        (
            "day and day of week combine with AND (Friday the 13th)",
            json!({"cron": "0 0 13 * 5", "startTime": "2024-01-01T00:00:00Z"}),
            vec![
                "2024-09-13T00:00:00Z",
                "2024-12-13T00:00:00Z",
                "2025-06-13T00:00:00Z",
            ],
        ),
        (
            "crontab day-of-week steps are honoured",
            json!({"cron": "0 0 * * 1-5/2", "startTime": "2024-01-01T00:00:00Z"}),
            vec![
                "2024-01-01T00:00:00Z",
                "2024-01-03T00:00:00Z",
                "2024-01-05T00:00:00Z",
                "2024-01-08T00:00:00Z",
            ],
        ),
        (
            "last friday of the month",
            json!({"cronFields": {"day": "last fri", "hour": "17"}, "startTime": "2024-01-01T00:00:00Z"}),
            vec![
                "2024-01-26T17:00:00Z",
                "2024-02-23T17:00:00Z",
                "2024-03-29T17:00:00Z",
            ],
        ),
        (
            "unset fields below the last set one default to their minimum",
            json!({"cronFields": {"minute": "7"}, "startTime": "2024-01-01T00:30:00Z"}),
            vec!["2024-01-01T01:07:00Z", "2024-01-01T02:07:00Z"],
        ),
        (
            "empty cronFields: Jan 1 yearly",
            json!({"cronFields": {}, "startTime": "2024-06-01T00:00:00Z"}),
            vec!["2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"],
        ),
        (
            "Feb 29 only in leap years",
            json!({"cronFields": {"month": "2", "day": "29"}, "startTime": "2024-03-01T00:00:00Z"}),
            vec!["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
        ),
        (
            "ISO week filter",
            json!({"cronFields": {"week": "1", "dayOfWeek": "mon"}, "startTime": "2024-06-01T00:00:00Z"}),
            vec![
                "2024-12-30T00:00:00Z",
                "2025-12-29T00:00:00Z",
                "2027-01-04T00:00:00Z",
            ],
        ),
        (
            "interval keeps startTime's sub-second part",
            json!({"interval": "1h30m", "startTime": "2024-01-01T00:00:00.250Z"}),
            vec![
                "2024-01-01T00:00:00.250Z",
                "2024-01-01T01:30:00.250Z",
                "2024-01-01T03:00:00.250Z",
            ],
        ),
        (
            "interval is elapsed time across DST",
            json!({"interval": "1h", "timezone": "Europe/Berlin", "startTime": "2024-03-31T00:00:00+01:00"}),
            vec![
                "2024-03-30T23:00:00Z",
                "2024-03-31T00:00:00Z",
                "2024-03-31T01:00:00Z",
                "2024-03-31T02:00:00Z",
            ],
        ),
        (
            "date fires once",
            json!({"date": "2026-12-31T23:59:59Z"}),
            vec!["2026-12-31T23:59:59Z"],
        ),
        (
            "calendar months from the 31st skip short months",
            json!({"calendarInterval": {"months": 1, "hour": 9}, "startTime": "2024-01-31T00:00:00Z"}),
            vec![
                "2024-01-31T09:00:00Z",
                "2024-03-31T09:00:00Z",
                "2024-05-31T09:00:00Z",
            ],
        ),
        (
            "calendar months and days drift as APScheduler's",
            json!({"calendarInterval": {"months": 1, "days": 1}, "startTime": "2024-01-30T00:00:00Z"}),
            vec![
                "2024-01-30T00:00:00Z",
                "2024-03-31T00:00:00Z",
                "2024-06-01T00:00:00Z",
                "2024-07-02T00:00:00Z",
            ],
        ),
        (
            "calendar never fires before startTime",
            json!({"calendarInterval": {"days": 1, "hour": 9}, "startTime": "2024-01-01T10:00:00Z"}),
            vec!["2024-01-02T09:00:00Z", "2024-01-03T09:00:00Z"],
        ),
        (
            "anyOf merges and deduplicates",
            json!({"anyOf": [{"cron": "0 * * * *"}, {"interval": "30m"}], "startTime": "2024-01-01T00:00:00Z"}),
            vec![
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:30:00Z",
                "2024-01-01T01:00:00Z",
            ],
        ),
        (
            "allOf: APScheduler user guide example",
            json!({"allOf": [{"calendarInterval": {"months": 2, "hour": 10}}, {"cron": "0 10 * * mon-fri"}],
                   "startTime": "2022-06-07T00:00:00Z"}),
            vec![
                "2022-06-07T10:00:00Z",
                "2022-10-07T10:00:00Z",
                "2022-12-07T10:00:00Z",
            ],
        ),
        (
            "allOf threshold is inclusive (2 s and 3 s intervals agree within 1 s)",
            json!({"allOf": [{"interval": "3s"}, {"interval": "2s"}], "startTime": "2024-01-01T00:00:00Z"}),
            vec![
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:00:02Z",
                "2024-01-01T00:00:06Z",
                "2024-01-01T00:00:08Z",
            ],
        ),
        (
            "members inherit the zone, but may set their own",
            json!({"anyOf": [{"cron": "0 9 * * *"}, {"cron": "0 9 * * *", "timezone": "UTC"}],
                   "timezone": "Europe/Berlin", "startTime": "2024-01-01T00:00:00Z"}),
            vec![
                "2024-01-01T08:00:00Z",
                "2024-01-01T09:00:00Z",
                "2024-01-02T08:00:00Z",
            ],
        ),
        (
            "endTime is inclusive",
            json!({"cron": "0 0 * * *", "startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-02T00:00:00Z"}),
            vec!["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"],
        ),
        (
            "all in the past: exhausted",
            json!({"cronFields": {"year": "2020"}}),
            vec![],
        ),
    ];
    for (name, json, want) in cases {
        let t = compile(json);
        assert_eq!(
            fires(&t, want.len() + 1)[..want.len().min(fires(&t, 99).len())],
            want[..],
            "{name}"
        );
    }
}

#[test]
fn dst_rules() {
    use serde_json::json;
    let berlin =
        |cron: &str, start: &str| json!({"cron": cron, "timezone": "Europe/Berlin", "startTime": start});
    let cases = [
        (
            "gap: a fixed time fires once, at the first instant after the gap",
            berlin("30 2 * * *", "2024-03-30T12:00:00Z"),
            vec!["2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"],
        ),
        (
            "gap: several fixed times inside it still fire once",
            berlin("0,15,30 2 * * *", "2024-03-31T00:00:00Z"),
            vec!["2024-03-31T01:00:00Z", "2024-04-01T00:00:00Z"],
        ),
        (
            "gap: an hourly cron keeps its rhythm (no extra fire)",
            berlin("5 * * * *", "2024-03-31T00:00:00Z"),
            vec![
                "2024-03-31T00:05:00Z",
                "2024-03-31T01:05:00Z",
                "2024-03-31T02:05:00Z",
            ],
        ),
        (
            "overlap: a fixed time fires once, at its first occurrence",
            berlin("30 2 * * *", "2024-10-26T12:00:00Z"),
            vec!["2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"],
        ),
        (
            "overlap: a stepped cron fires in both passes",
            berlin("*/30 * * * *", "2024-10-27T00:00:00Z"),
            vec![
                "2024-10-27T00:00:00Z",
                "2024-10-27T00:30:00Z",
                "2024-10-27T01:00:00Z",
                "2024-10-27T01:30:00Z",
                "2024-10-27T02:00:00Z",
            ],
        ),
        (
            "calendar gap fires at the first instant after it (APScheduler skips the date)",
            json!({"calendarInterval": {"days": 1, "hour": 2, "minute": 30}, "timezone": "Europe/Berlin",
                   "startTime": "2024-03-30T00:00:00+01:00"}),
            vec![
                "2024-03-30T01:30:00Z",
                "2024-03-31T01:00:00Z",
                "2024-04-01T00:30:00Z",
            ],
        ),
    ];
    for (name, json, want) in cases {
        assert_eq!(fires(&compile(json), want.len()), want, "{name}");
    }
}

/// The operator uses next_after as a stateless cursor: for any instant, it must equal the first
/// element of the full sequence that lies strictly after it.
#[test]
fn next_after_any_instant_matches_the_sequence() {
    use serde_json::json;
    let specs = [
        json!({"cron": "*/7 9-17 * * mon-fri", "timezone": "America/New_York"}),
        json!({"cron": "*/20 * * * *", "timezone": "Europe/Berlin", "startTime": "2024-10-26T22:00:00Z"}),
        json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin", "startTime": "2024-03-29T00:00:00Z"}),
        json!({"cronFields": {"day": "last", "hour": "*/6"}}),
        json!({"interval": "45m"}),
        json!({"calendarInterval": {"months": 1, "days": 3, "hour": 4}}),
        json!({"calendarInterval": {"months": 3}, "startTime": "2023-11-30T00:00:00Z"}),
        json!({"calendarInterval": {"weeks": 2, "hour": 2, "minute": 30}, "timezone": "Europe/Berlin"}),
        json!({"anyOf": [{"cron": "0 */5 * * *"}, {"interval": "3h"}]}),
        json!({"allOf": [{"cron": "0 * * * *"}, {"interval": "90m"}]}),
    ];
    for json in specs {
        let mut json = json;
        if json.get("startTime").is_none() {
            json["startTime"] = json!("2024-01-01T00:00:00Z");
        }
        let t = compile(json.clone());
        let seq: Vec<DateTime<Utc>> = t.fire_times(None).take(400).collect();
        let last = *seq.last().unwrap();
        let start = seq[0] - TimeDelta::hours(3);
        // About 4000 probes per trigger, at an odd step so they hit every minute and second.
        let step = TimeDelta::seconds(((last - start).num_seconds() / 4000).max(1) | 1);
        let mut probe = start;
        while probe < last {
            let want = seq.iter().copied().find(|f| *f > probe);
            assert_eq!(t.next_after(Some(probe)), want, "{json} after {probe}");
            probe += step;
        }
        for w in seq.windows(2) {
            assert_eq!(t.next_after(Some(w[0])), Some(w[1]), "{json}");
            assert_eq!(
                t.next_after(Some(w[1] - TimeDelta::nanoseconds(1))),
                Some(w[1]),
                "{json}"
            );
        }
    }
}

#[test]
fn errors_name_the_field_and_value() {
    use serde_json::json;
    let cases = [
        (
            json!({"cronFields": {"dayOfWeek": "mon-fry"}}),
            "trigger.cronFields.dayOfWeek: \"mon-fry\": unknown weekday \"fry\"",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"cron": "0 9 * * mon#2"}),
            "trigger.cron: \"0 9 * * mon#2\": day-of-week field: the #-syntax is not supported",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"cron": "0 0 30 2 *"}),
            "never occurs",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"cronFields": {"month": "feb,apr", "day": "31"}}),
            "trigger.cronFields: ",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"cron": "0 0 * * *", "timezone": "Europe/Berln"}),
            "trigger.timezone: \"Europe/Berln\"",
            TriggerErrorKind::InvalidTimezone,
        ),
        (
            json!({"anyOf": [{"cron": "0 0 * * *"}, {"interval": "0s"}]}),
            "trigger.anyOf[1].interval: \"0s\": the interval must be positive",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"interval": "500ms"}),
            "trigger.interval: \"500ms\": the interval must be at least 1s",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"anyOf": [{"cron": "0 0 * * *", "timezone": "Mars/Base"}]}),
            "trigger.anyOf[0].timezone",
            TriggerErrorKind::InvalidTimezone,
        ),
        (
            json!({"cron": "0 0 * * *", "interval": "1h"}),
            "trigger: \"cron, interval\": exactly one",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({}),
            "trigger: \"none set\"",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"cron": "@every 5m"}),
            "trigger.cron: \"@every 5m\": unknown macro",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"calendarInterval": {"hour": 9}}),
            "trigger.calendarInterval: ",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"cron": "0 0 * * *", "startTime": "2024-02-01T00:00:00Z", "endTime": "2024-01-01T00:00:00Z"}),
            "trigger.endTime",
            TriggerErrorKind::InvalidTrigger,
        ),
        (
            json!({"allOf": [{"interval": "1s"}, {"cron": "0 0 1 1 *"}], "allOfThreshold": "0s",
                   "startTime": "2024-01-01T00:00:01Z"}),
            "trigger.allOf",
            TriggerErrorKind::InvalidTrigger,
        ),
    ];
    for (json, want, kind) in cases {
        let err = Trigger::compile(&spec(json.clone()), at("2024-01-01T00:00:00Z")).unwrap_err();
        assert!(err.to_string().contains(want), "{json}: {err}");
        assert_eq!(err.kind, kind, "{json}");
    }
    assert_eq!(TriggerErrorKind::InvalidTimezone.reason(), "InvalidTimezone");
    assert_eq!(TriggerErrorKind::InvalidTrigger.reason(), "InvalidTrigger");
}

#[test]
fn describe_is_short_and_readable() {
    use serde_json::json;
    let cases = [
        (json!({"cron": " 0 9 * * mon-fri "}), "cron 0 9 * * mon-fri"),
        (
            json!({"cron": "0 9 * * *", "timezone": "Europe/Berlin"}),
            "cron 0 9 * * *",
        ),
        (
            json!({"anyOf": [{"cron": "0 9 * * *", "timezone": "Asia/Tokyo"}, {"cron": "0 9 * * *"}]}),
            "anyOf(cron 0 9 * * * (Asia/Tokyo), cron 0 9 * * *)",
        ),
        (json!({"interval": "90m"}), "every 1h30m"),
        (
            json!({"date": "2026-12-31T23:59:59Z"}),
            "once 2026-12-31T23:59:59Z",
        ),
        (
            json!({"calendarInterval": {"months": 1, "hour": 9}}),
            "calendar every 1 month at 09:00:00",
        ),
        (
            json!({"calendarInterval": {"years": 1, "weeks": 2}}),
            "calendar every 1 year 2 weeks at 00:00:00",
        ),
        (
            json!({"cronFields": {"dayOfWeek": "mon-fri", "hour": 9}}),
            "cronFields dayOfWeek=mon-fri hour=9",
        ),
        (
            json!({"anyOf": [{"cron": "0 9 * * *"}, {"interval": "2h"}]}),
            "anyOf(cron 0 9 * * *, every 2h)",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(compile(json).describe(), want);
    }
}

#[test]
fn default_start_anchors_but_does_not_hide_a_past_date() {
    let created = at("2024-05-05T12:34:56Z");
    let interval = TriggerSpec {
        interval: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let t = Trigger::compile(&interval, created).unwrap();
    assert_eq!(t.next_after(None), Some(created));
    let past = TriggerSpec {
        date: Some(DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap()),
        ..Default::default()
    };
    let t = Trigger::compile(&past, created).unwrap();
    assert_eq!(t.next_after(None), Some(at("2024-01-01T00:00:00Z")));
    assert_eq!(t.next_after(Some(at("2024-01-01T00:00:00Z"))), None);
    let fields = TriggerSpec {
        cron_fields: Some(CronFields {
            hour: Some(CronField::from("13")),
            ..Default::default()
        }),
        ..Default::default()
    };
    let t = Trigger::compile(&fields, created).unwrap();
    assert_eq!(t.next_after(None), Some(at("2024-05-05T13:00:00Z")));
    assert_eq!(t.timezone(), Tz::UTC);
}

#[test]
fn extreme_cursors_do_not_panic() {
    use serde_json::json;
    let kinds = [
        json!({"cron": "* * * * * *"}),
        json!({"interval": "1s"}),
        json!({"date": "2026-01-01T00:00:00Z"}),
        json!({"calendarInterval": {"days": 1}}),
        json!({"anyOf": [{"cron": "0 0 * * *"}, {"interval": "1h"}]}),
        json!({"allOf": [{"cron": "0 0 * * *"}, {"interval": "1h"}]}),
    ];
    for json in kinds {
        let t = compile(json);
        for after in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            at("9999-12-31T23:59:59Z"),
        ] {
            let _ = t.next_after(Some(after));
        }
    }
}
