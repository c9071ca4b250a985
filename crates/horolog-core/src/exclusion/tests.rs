//! Exclusion rules: Skip, Following and Preceding on ordinary days, month ends, DST
//! transition days and where two fire times shift onto one; Calendar resolution; and a
//! property test that an excluded fire time never fires.

use super::*;
use crate::spec::TriggerSpec;
use crate::trigger::Trigger;
use proptest::prelude::*;
use serde_json::json;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn trigger(spec: serde_json::Value) -> Trigger {
    let spec: TriggerSpec = serde_json::from_value(spec).unwrap();
    Trigger::compile(&spec, at("2020-01-01T00:00:00Z")).unwrap()
}

fn calendar(spec: serde_json::Value) -> Exclusions {
    let spec: ExclusionSpec = serde_json::from_value(spec).unwrap();
    Exclusions::compile("holidays", "spec", &spec, Tz::UTC).unwrap()
}

fn with(trigger: Trigger, cal: serde_json::Value, on: OnExcluded) -> Trigger {
    trigger.excluding(calendar(cal), on)
}

fn fires(t: &Trigger, from: &str, n: usize) -> Vec<String> {
    t.fire_times(Some(at(from)))
        .take(n)
        .map(|t| t.to_rfc3339())
        .collect()
}

/// Weekdays 06:00 New York, with the weekend and two holidays of January 2027 excluded.
fn trading(on: OnExcluded) -> Trigger {
    with(
        trigger(json!({"cron": "0 6 * * mon-fri", "timezone": "America/New_York"})),
        json!({"timezone": "America/New_York", "days": ["2027-01-01", "2027-01-18"],
               "recurring": [{"dayOfWeek": "sat,sun"}]}),
        on,
    )
}

#[test]
fn skip_leaves_out_excluded_fire_times_and_counts_them() {
    let t = trading(OnExcluded::Skip);
    assert_eq!(
        fires(&t, "2026-12-31T12:00:00Z", 3),
        [
            "2027-01-04T11:00:00+00:00",
            "2027-01-05T11:00:00+00:00",
            "2027-01-06T11:00:00+00:00"
        ]
    );
    let counts = t.exclusion_counts(Some(at("2026-12-31T12:00:00Z")), at("2027-01-31T00:00:00Z"), 1000);
    assert_eq!(counts.excluded, 2, "New Year and MLK day");
    assert!(counts.exact);
    assert_eq!(
        t.fate(at("2027-01-18T11:00:00Z")),
        Fate::Skipped {
            by: "holidays".into()
        }
    );
}

#[test]
fn the_next_counted_fire_time_and_how_far_counts_reach() {
    let t = trading(OnExcluded::Skip);
    // From New Year's Eve, the next fire time (Jan 4) is after New Year's Day, excluded: the
    // Schedule wakes at it to count it.
    let after = Some(at("2026-12-31T12:00:00Z"));
    let next = t.next_after(after);
    assert_eq!(next, Some(at("2027-01-04T11:00:00Z")));
    assert_eq!(t.next_counted(after, next, 100), Some(at("2027-01-01T11:00:00Z")));
    // From Jan 4 to Jan 18, none before the next fire time; one (MLK day) with no bound.
    let after = Some(at("2027-01-04T12:00:00Z"));
    assert_eq!(t.next_counted(after, t.next_after(after), 100), None);
    assert_eq!(t.next_counted(after, None, 100), Some(at("2027-01-18T11:00:00Z")));
    // Past the visiting bound: the last fire time visited, to look again from there.
    assert_eq!(t.next_counted(after, None, 2), Some(at("2027-01-06T11:00:00Z")));
    // Counts cover (after, through]; past the bound, through is where the next count starts.
    let counts = t.exclusion_counts(after, at("2027-01-31T00:00:00Z"), 3);
    assert!(!counts.exact);
    assert_eq!(counts.through, Some(at("2027-01-07T11:00:00Z")));
    let rest = t.exclusion_counts(counts.through, at("2027-01-31T00:00:00Z"), 1000);
    assert!(rest.exact);
    assert_eq!(counts.excluded + rest.excluded, 1);
    // Following: MLK day merges into Tuesday's own fire time, so it is counted (coalesced).
    let t = trading(OnExcluded::Following);
    let after = Some(at("2027-01-15T12:00:00Z"));
    assert_eq!(
        t.next_counted(after, t.next_after(after), 100),
        Some(at("2027-01-18T11:00:00Z"))
    );
    // A holiday that only moves is not counted, so it does not wake anyone.
    let t = with(
        trigger(json!({"cron": "0 6 * * mon"})),
        json!({"days": ["2027-01-18"]}),
        OnExcluded::Following,
    );
    assert_eq!(t.next_after(after), Some(at("2027-01-19T06:00:00Z")));
    assert_eq!(
        t.next_counted(after, None, 3),
        Some(at("2027-02-01T06:00:00Z")),
        "the bound"
    );
    assert_eq!(t.next_counted(after, t.next_after(after), 100), None);
}

#[test]
fn following_moves_a_holiday_to_the_next_free_day_and_merges_it_there() {
    let t = trading(OnExcluded::Following);
    // Friday Jan 1 moves past the weekend to Monday Jan 4, which fires anyway: merged.
    assert_eq!(
        fires(&t, "2026-12-31T12:00:00Z", 2),
        ["2027-01-04T11:00:00+00:00", "2027-01-05T11:00:00+00:00"]
    );
    assert_eq!(
        t.fate(at("2027-01-01T11:00:00Z")),
        Fate::Merged {
            into: at("2027-01-04T11:00:00Z"),
            by: "holidays".into()
        }
    );
    let counts = t.exclusion_counts(Some(at("2026-12-31T12:00:00Z")), at("2027-01-31T00:00:00Z"), 1000);
    assert_eq!((counts.excluded, counts.merged), (0, 2));
}

#[test]
fn following_and_preceding_move_a_weekly_fire_time_over_a_holiday() {
    // Mondays only; Monday Jan 18 2027 is a holiday.
    let mondays = || trigger(json!({"cron": "0 6 * * mon", "timezone": "America/New_York"}));
    let cal = json!({"timezone": "America/New_York", "days": ["2027-01-18"], "recurring": [{"dayOfWeek": "sat,sun"}]});
    let following = with(mondays(), cal.clone(), OnExcluded::Following);
    assert_eq!(
        fires(&following, "2027-01-12T00:00:00Z", 2),
        ["2027-01-19T11:00:00+00:00", "2027-01-25T11:00:00+00:00"]
    );
    assert!(following.is_shifted(at("2027-01-19T11:00:00Z")));
    assert!(!following.is_shifted(at("2027-01-25T11:00:00Z")));
    // Preceding plans ahead: Monday the 18th's run happens on Friday the 15th.
    let preceding = with(mondays(), cal, OnExcluded::Preceding);
    assert_eq!(
        fires(&preceding, "2027-01-12T00:00:00Z", 2),
        ["2027-01-15T11:00:00+00:00", "2027-01-25T11:00:00+00:00"]
    );
    assert_eq!(
        preceding.fate(at("2027-01-18T11:00:00Z")),
        Fate::Shifted {
            to: at("2027-01-15T11:00:00Z"),
            by: "holidays".into()
        }
    );
    // Asked from just before the shifted time, and from between it and the holiday.
    assert_eq!(
        preceding.next_after(Some(at("2027-01-15T10:59:59Z"))),
        Some(at("2027-01-15T11:00:00Z"))
    );
    assert_eq!(
        preceding.next_after(Some(at("2027-01-15T11:00:00Z"))),
        Some(at("2027-01-25T11:00:00Z"))
    );
    assert_eq!(
        following.next_after(Some(at("2027-01-18T12:00:00Z"))),
        Some(at("2027-01-19T11:00:00Z")),
        "asked after the holiday's own time, the shifted time is still ahead"
    );
}

#[test]
fn month_ends_shift_across_the_month_boundary() {
    // The last day of January 2027 is a Sunday.
    let last = || trigger(json!({"cronFields": {"day": "last", "hour": "9"}}));
    let weekend = json!({"recurring": [{"dayOfWeek": "sat,sun"}]});
    let following = with(last(), weekend.clone(), OnExcluded::Following);
    assert_eq!(
        fires(&following, "2027-01-15T00:00:00Z", 2),
        ["2027-02-01T09:00:00+00:00", "2027-03-01T09:00:00+00:00"],
        "Jan 31 (Sun) -> Feb 1; Feb 28 (Sun) -> Mar 1"
    );
    let preceding = with(last(), weekend.clone(), OnExcluded::Preceding);
    assert_eq!(
        fires(&preceding, "2027-01-15T00:00:00Z", 2),
        ["2027-01-29T09:00:00+00:00", "2027-02-26T09:00:00+00:00"]
    );
    let skip = with(last(), weekend, OnExcluded::Skip);
    assert_eq!(
        fires(&skip, "2027-01-15T00:00:00Z", 1),
        ["2027-03-31T09:00:00+00:00"]
    );
}

#[test]
fn shifts_keep_the_local_time_across_dst_transitions() {
    // Berlin springs forward on Sunday 2024-03-31 (02:00 -> 03:00). A daily 09:00 excluded on
    // Saturday moves to Sunday 09:00 CEST (07:00Z), not 08:00Z: the same local time.
    let daily = || trigger(json!({"cron": "0 9 * * mon-fri,sat", "timezone": "Europe/Berlin"}));
    let sat = json!({"days": ["2024-03-30"], "timezone": "Europe/Berlin"});
    let t = with(daily(), sat, OnExcluded::Following);
    assert_eq!(
        fires(&t, "2024-03-29T12:00:00Z", 2),
        ["2024-03-31T07:00:00+00:00", "2024-04-01T07:00:00+00:00"]
    );
    // 02:30 does not exist on the 31st: the shifted fire time is the first instant after the
    // gap, where the trigger's own 02:30 fires too: merged into one.
    let t = with(
        trigger(json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin"})),
        json!({"days": ["2024-03-30"], "timezone": "Europe/Berlin"}),
        OnExcluded::Following,
    );
    assert_eq!(
        fires(&t, "2024-03-29T12:00:00Z", 2),
        ["2024-03-31T01:00:00+00:00", "2024-04-01T00:30:00+00:00"]
    );
    assert!(matches!(t.fate(at("2024-03-30T01:30:00Z")), Fate::Merged { .. }));
    // New York falls back on 2024-11-03: 01:30 happens twice and fires once, at the first.
    let t = with(
        trigger(json!({"cron": "30 1 * * *", "timezone": "America/New_York"})),
        json!({"days": ["2024-11-04"], "timezone": "America/New_York"}),
        OnExcluded::Preceding,
    );
    assert_eq!(
        fires(&t, "2024-11-02T12:00:00Z", 2),
        ["2024-11-03T05:30:00+00:00", "2024-11-05T06:30:00+00:00"]
    );
    let counts = t.exclusion_counts(Some(at("2024-11-02T12:00:00Z")), at("2024-11-06T00:00:00Z"), 100);
    assert_eq!((counts.excluded, counts.merged), (0, 1));
}

#[test]
fn skip_following_and_preceding_on_the_dst_days_of_berlin_and_new_york() {
    // A Sunday 09:00 on the transition Sunday (Berlin springs forward on 2024-03-31, New York
    // falls back on 2024-11-03), excluded: each mode, keeping the local time.
    let cases = [
        (
            "Europe/Berlin",
            "2024-03-31",
            "2024-03-29T00:00:00Z",
            [
                ("Skip", "2024-04-07T07:00:00+00:00"),
                ("Following", "2024-04-01T07:00:00+00:00"),
                ("Preceding", "2024-03-30T08:00:00+00:00"),
            ],
        ),
        (
            "America/New_York",
            "2024-11-03",
            "2024-11-01T00:00:00Z",
            [
                ("Skip", "2024-11-10T14:00:00+00:00"),
                ("Following", "2024-11-04T14:00:00+00:00"),
                ("Preceding", "2024-11-02T13:00:00+00:00"),
            ],
        ),
    ];
    for (zone, day, from, expected) in cases {
        for (mode, first) in expected {
            let on = match mode {
                "Skip" => OnExcluded::Skip,
                "Following" => OnExcluded::Following,
                _ => OnExcluded::Preceding,
            };
            let t = with(
                trigger(json!({"cron": "0 9 * * sun", "timezone": zone})),
                json!({"days": [day], "timezone": zone}),
                on,
            );
            assert_eq!(fires(&t, from, 1), [first], "{zone} {mode}");
            let counts = t.exclusion_counts(Some(at(from)), at(from) + TimeDelta::days(10), 100);
            let skipped = u64::from(on == OnExcluded::Skip);
            assert_eq!((counts.excluded, counts.merged), (skipped, 0), "{zone} {mode}");
        }
    }
    // Following across the fall-back: Saturday 09:00 EDT moves to Sunday 09:00 EST (an hour
    // later in UTC), Preceding across the spring-forward: Monday 09:00 CEST to Sunday's.
    let t = with(
        trigger(json!({"cron": "0 9 * * sat", "timezone": "America/New_York"})),
        json!({"days": ["2024-11-02"], "timezone": "America/New_York"}),
        OnExcluded::Following,
    );
    assert_eq!(
        fires(&t, "2024-11-01T00:00:00Z", 1),
        ["2024-11-03T14:00:00+00:00"]
    );
    let t = with(
        trigger(json!({"cron": "0 9 * * mon", "timezone": "Europe/Berlin"})),
        json!({"days": ["2024-04-01"], "timezone": "Europe/Berlin"}),
        OnExcluded::Preceding,
    );
    assert_eq!(
        fires(&t, "2024-03-29T00:00:00Z", 1),
        ["2024-03-31T07:00:00+00:00"]
    );
}

#[test]
fn two_fire_times_shifted_onto_one_day_fire_once() {
    // Daily 06:00 with a three-day blackout: all three move to the day after it.
    let t = with(
        trigger(json!({"cron": "0 6 * * *"})),
        json!({"ranges": [{"from": "2027-03-01T00:00:00", "to": "2027-03-04T00:00:00"}]}),
        OnExcluded::Following,
    );
    assert_eq!(
        fires(&t, "2027-02-28T12:00:00Z", 2),
        ["2027-03-04T06:00:00+00:00", "2027-03-05T06:00:00+00:00"]
    );
    let counts = t.exclusion_counts(Some(at("2027-02-28T12:00:00Z")), at("2027-03-05T00:00:00Z"), 100);
    assert_eq!((counts.excluded, counts.merged), (0, 3));
    // A Monday-only trigger over a long blackout moves once and merges the rest.
    let t = with(
        trigger(json!({"cron": "0 6 * * mon"})),
        json!({"ranges": [{"from": "2027-03-01", "to": "2027-03-16T00:00:00Z"}]}),
        OnExcluded::Following,
    );
    assert_eq!(
        fires(&t, "2027-02-28T12:00:00Z", 1),
        ["2027-03-16T06:00:00+00:00"]
    );
    let counts = t.exclusion_counts(Some(at("2027-02-28T12:00:00Z")), at("2027-03-17T00:00:00Z"), 100);
    assert_eq!(
        (counts.excluded, counts.merged),
        (0, 2),
        "Mar 15 shifted (nearest); Mar 1 and 8 merged into it"
    );
}

#[test]
fn a_shift_farther_than_31_days_is_skipped_and_counted() {
    let t = with(
        trigger(json!({"cron": "0 6 1 * *"})),
        json!({"ranges": [{"from": "2027-03-01T00:00:00Z", "to": "2027-04-15T00:00:00Z"}]}),
        OnExcluded::Following,
    );
    // Mar 1 would move past Apr 1 (also excluded) to Apr 15: 45 days, too far.
    assert_eq!(
        t.fate(at("2027-03-01T06:00:00Z")),
        Fate::Skipped {
            by: "holidays".into()
        }
    );
    // Apr 1 moves 14 days to Apr 15.
    assert_eq!(
        fires(&t, "2027-02-15T00:00:00Z", 1),
        ["2027-04-15T06:00:00+00:00"]
    );
    let counts = t.exclusion_counts(Some(at("2027-02-15T00:00:00Z")), at("2027-04-16T00:00:00Z"), 100);
    assert_eq!((counts.excluded, counts.merged), (1, 0));
}

#[test]
fn a_shift_never_leaves_the_trigger_window() {
    let blackout = || json!({"ranges": [{"from": "2027-03-03T00:00:00Z", "to": "2027-03-05T00:00:00Z"}]});
    // Following: the last two fire times are excluded and the next free day (Mar 5) is after
    // endTime: they are skipped and counted, never fired after the end.
    let t = with(
        trigger(json!({"cron": "0 6 * * *", "endTime": "2027-03-04T06:00:00Z"})),
        blackout(),
        OnExcluded::Following,
    );
    assert_eq!(t.window().1, Some(at("2027-03-04T06:00:00Z")));
    assert_eq!(
        fires(&t, "2027-03-01T12:00:00Z", 5),
        ["2027-03-02T06:00:00+00:00"]
    );
    assert!(matches!(t.fate(at("2027-03-03T06:00:00Z")), Fate::Skipped { .. }));
    let counts = t.exclusion_counts(Some(at("2027-03-01T12:00:00Z")), at("2027-03-10T00:00:00Z"), 100);
    assert_eq!((counts.excluded, counts.merged), (2, 0));
    // A free day inside the window still takes them: endTime Mar 5 06:00.
    let t = with(
        trigger(json!({"cron": "0 6 * * *", "endTime": "2027-03-05T06:00:00Z"})),
        blackout(),
        OnExcluded::Following,
    );
    assert_eq!(
        fires(&t, "2027-03-01T12:00:00Z", 5),
        ["2027-03-02T06:00:00+00:00", "2027-03-05T06:00:00+00:00"]
    );
    // Preceding: the first fire times are excluded and the free day before them (Mar 2) is
    // before startTime: skipped, never fired before the start.
    let t = with(
        trigger(json!({"cron": "0 6 * * *", "startTime": "2027-03-03T00:00:00Z"})),
        blackout(),
        OnExcluded::Preceding,
    );
    assert_eq!(
        fires(&t, "2027-02-20T00:00:00Z", 2),
        ["2027-03-05T06:00:00+00:00", "2027-03-06T06:00:00+00:00"]
    );
    assert_eq!(t.next_after(None), Some(at("2027-03-05T06:00:00Z")));
    let counts = t.exclusion_counts(None, at("2027-03-06T00:00:00Z"), 100);
    assert_eq!((counts.excluded, counts.merged), (2, 0));
    // A combined trigger's end bounds its shifts too: anyOf ends at its latest member end.
    let t = with(
        trigger(json!({"anyOf": [
            {"cron": "0 6 * * *", "endTime": "2027-03-02T06:00:00Z"},
            {"cron": "0 7 * * *", "endTime": "2027-03-04T07:00:00Z"}
        ]})),
        blackout(),
        OnExcluded::Following,
    );
    assert_eq!(t.window().1, Some(at("2027-03-04T07:00:00Z")));
    assert_eq!(
        fires(&t, "2027-03-01T12:00:00Z", 5),
        ["2027-03-02T06:00:00+00:00", "2027-03-02T07:00:00+00:00"]
    );
    // The outer endTime of a combination bounds it even when its members have none.
    let t = with(
        trigger(json!({"endTime": "2027-03-04T12:00:00Z", "allOf": [
            {"cron": "0 6 * * *"}, {"cron": "0 * * * *"}
        ]})),
        blackout(),
        OnExcluded::Following,
    );
    assert_eq!(
        fires(&t, "2027-03-01T12:00:00Z", 5),
        ["2027-03-02T06:00:00+00:00"]
    );
}

#[test]
fn recurring_hours_exclude_part_of_each_day() {
    let t = with(
        trigger(json!({"cron": "0 */4 * * *"})),
        json!({"recurring": [{"hour": "0-5"}]}),
        OnExcluded::Skip,
    );
    assert_eq!(
        fires(&t, "2027-01-01T00:00:00Z", 4),
        [
            "2027-01-01T08:00:00+00:00",
            "2027-01-01T12:00:00+00:00",
            "2027-01-01T16:00:00+00:00",
            "2027-01-01T20:00:00+00:00"
        ]
    );
    // Fields left out match everything: {month: 12, day: 24-26} is three whole days.
    let t = with(
        trigger(json!({"cron": "0 12 * * *"})),
        json!({"recurring": [{"month": "12", "day": "24-26"}]}),
        OnExcluded::Skip,
    );
    assert_eq!(
        fires(&t, "2027-12-23T13:00:00Z", 1),
        ["2027-12-27T12:00:00+00:00"]
    );
}

#[test]
fn the_inline_exclude_uses_the_trigger_zone_and_joins_calendars() {
    let t = trigger(json!({"cron": "0 23 * * *", "timezone": "Asia/Tokyo",
                           "exclude": {"days": ["2027-01-02"]}}));
    assert_eq!(
        fires(&t, "2027-01-01T00:00:00Z", 2),
        ["2027-01-01T14:00:00+00:00", "2027-01-03T14:00:00+00:00"]
    );
    let t = t.excluding(
        calendar(json!({"days": ["2027-01-03"], "timezone": "Asia/Tokyo"})),
        OnExcluded::Skip,
    );
    assert_eq!(
        fires(&t, "2027-01-01T00:00:00Z", 2)[1],
        "2027-01-04T14:00:00+00:00"
    );
    assert_eq!(
        t.exclusions().map(|(e, _)| e.names()),
        Some(vec!["trigger.exclude", "holidays"])
    );
}

#[test]
fn invalid_entries_name_the_field() {
    let bad = |spec: serde_json::Value| {
        let spec: ExclusionSpec = serde_json::from_value(spec).unwrap();
        Exclusions::compile("c", "spec", &spec, Tz::UTC).unwrap_err()
    };
    assert_eq!(
        bad(json!({"days": ["2027-01-01", "2027-13-01"]})).field,
        "spec.days[1]"
    );
    assert_eq!(
        bad(json!({"ranges": [{"from": "2027-01-02", "to": "2027-01-01"}]})).field,
        "spec.ranges[0].to"
    );
    assert_eq!(
        bad(json!({"ranges": [{"from": "soon", "to": "later"}]})).field,
        "spec.ranges[0].from"
    );
    assert_eq!(
        bad(json!({"recurring": [{"dayOfWeek": "sat"}, {"dayOfWeek": "funday"}]})).field,
        "spec.recurring[1].dayOfWeek"
    );
    assert_eq!(bad(json!({"recurring": [{}]})).field, "spec.recurring[0]");
    let tz = bad(json!({"timezone": "Mars/Olympus"}));
    assert_eq!(
        (tz.field.as_str(), tz.kind),
        ("spec.timezone", TriggerErrorKind::InvalidTimezone)
    );
}

#[test]
fn calendars_resolve_through_refs_and_report_cycles_and_missing_ones() {
    let specs: Vec<(&str, ExclusionSpec, Vec<String>)> = vec![
        (
            "a",
            serde_json::from_value(json!({"days": ["2027-01-01"]})).unwrap(),
            vec!["b".into()],
        ),
        (
            "b",
            serde_json::from_value(json!({"days": ["2027-01-02"]})).unwrap(),
            vec![],
        ),
        ("c", ExclusionSpec::default(), vec!["d".into()]),
        ("d", ExclusionSpec::default(), vec!["c".into()]),
        ("e", ExclusionSpec::default(), vec!["nope".into()]),
    ];
    let lookup = |name: &str| {
        specs
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, spec, refs)| CalendarDef {
                spec: spec.clone(),
                refs: refs.clone(),
            })
    };
    let a = resolve(&["a".into()], &lookup).unwrap();
    assert_eq!(a.names(), ["b", "a"]);
    assert!(a.excluded_by(at("2027-01-02T12:00:00Z")).is_some());
    assert_eq!(
        resolve(&["c".into()], &lookup).unwrap_err(),
        CalendarProblem::Cycle {
            cycle: vec!["c".into(), "d".into(), "c".into()]
        }
    );
    assert_eq!(
        resolve(&["d".into()], &lookup).unwrap_err().reason(),
        "CalendarCycle"
    );
    let missing = resolve(&["e".into()], &lookup).unwrap_err();
    assert_eq!(missing.reason(), "CalendarNotFound");
    assert!(missing.to_string().contains("\"nope\""), "{missing}");
    assert_eq!(
        resolve(&["zzz".into()], &lookup).unwrap_err().reason(),
        "CalendarNotFound"
    );
}

#[test]
fn the_next_excluded_day_is_found_in_the_calendar_zone() {
    let c = calendar(json!({"days": ["2027-01-18"], "recurring": [{"dayOfWeek": "sat,sun"}]}));
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(
        c.next_excluded_day(Tz::UTC, day("2027-01-11")),
        Some(day("2027-01-16"))
    );
    let c = calendar(json!({"days": ["2027-01-18"]}));
    assert_eq!(
        c.next_excluded_day(Tz::UTC, day("2027-01-11")),
        Some(day("2027-01-18"))
    );
    assert_eq!(c.next_excluded_day(Tz::UTC, day("2027-01-19")), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Over two months of an hourly or daily trigger with random excluded days (and maybe a
    /// startTime and an endTime): no fire time leaves the window; no fire time
    /// after exclusion is excluded; fire times strictly increase; every own fire time that is
    /// kept or shifted fires at its place, every skipped one is not a fire time of its own
    /// unless another one lands there; every fire time has an origin.
    #[test]
    fn an_excluded_fire_time_never_fires(
        days in proptest::collection::btree_set(0u64..60, 1..25),
        on in prop_oneof![Just(OnExcluded::Skip), Just(OnExcluded::Following), Just(OnExcluded::Preceding)],
        cron in prop_oneof![Just("0 6 * * *"), Just("0 */5 * * *"), Just("30 2 * * mon-fri"), Just("0 9 * * mon")],
        zone in prop_oneof![Just("UTC"), Just("Europe/Berlin"), Just("America/New_York")],
        window in proptest::option::of((0u64..30, 30u64..60)),
    ) {
        let start = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        // Optionally a startTime and an endTime inside the two months: no shift leaves them.
        let bounds = window.map(|(from, to)| {
            let day = |d: u64| day_start(Tz::UTC, start.checked_add_days(Days::new(d)).unwrap());
            (day(from) + TimeDelta::hours(7), day(to) + TimeDelta::hours(7))
        });
        let listed: Vec<String> = days.iter()
            .map(|d| start.checked_add_days(Days::new(*d)).unwrap().to_string())
            .collect();
        let mut spec = json!({"cron": cron, "timezone": zone});
        if let Some((first, last)) = bounds {
            spec["startTime"] = json!(first.to_rfc3339());
            spec["endTime"] = json!(last.to_rfc3339());
        }
        let t = with(trigger(spec), json!({"days": listed, "timezone": zone}), on);
        let from = at("2024-03-01T00:00:00Z");
        let until = at("2024-04-30T00:00:00Z");
        let fired: Vec<DateTime<Utc>> = t.fire_times(Some(from)).take_while(|f| *f <= until).collect();
        let (exclusions, _) = t.exclusions().unwrap();
        for w in fired.windows(2) {
            prop_assert!(w[0] < w[1]);
        }
        for f in &fired {
            prop_assert!(exclusions.excluded_by(*f).is_none(), "{f} fired but is excluded");
            if let Some((first, last)) = bounds {
                prop_assert!(*f >= first && *f <= last, "{f} fired outside [{first}, {last}]");
            }
        }
        // Own fire times well inside the window (shifts reach at most 31 days).
        let inner_from = from + TimeDelta::days(32);
        let inner_until = until - TimeDelta::days(32);
        let mut landed = HashSet::new();
        for own in t.own_fire_times(Some(from)).take_while(|o| *o <= until) {
            match t.fate(own) {
                Fate::Kept => { landed.insert(own); }
                Fate::Shifted { to, .. } | Fate::Merged { into: to, .. } => { landed.insert(to); }
                Fate::Skipped { .. } => {}
            }
            if own > inner_from && own < inner_until {
                match t.fate(own) {
                    Fate::Kept => prop_assert!(fired.contains(&own)),
                    Fate::Shifted { to, .. } | Fate::Merged { into: to, .. } => prop_assert!(fired.contains(&to), "{own} -> {to} missing"),
                    Fate::Skipped { .. } => {}
                }
            }
        }
        for f in fired.iter().filter(|f| **f > inner_from && **f < inner_until) {
            prop_assert!(landed.contains(f), "{f} fired with no origin");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, max_shrink_iters: 64, ..ProptestConfig::default() })]

    /// The shortcut `next_after` takes when no exclusion is near gives what replaying the
    /// days gives, from any instant (fire times and the instants between them), with
    /// excluded days, weekend and hour patterns, startTime / endTime and DST zones.
    #[test]
    fn the_shortcut_agrees_with_replaying_the_days(
        days in proptest::collection::btree_set(0u64..60, 1..12),
        weekend in any::<bool>(),
        hours in any::<bool>(),
        on in prop_oneof![Just(OnExcluded::Following), Just(OnExcluded::Preceding)],
        cron in prop_oneof![Just("0 6 * * *"), Just("0 */5 * * *"), Just("30 2 * * mon-fri"), Just("0 9 * * mon"), Just("0 6 * * mon-fri"), Just("31h"), Just("17h")],
        zone in prop_oneof![Just("UTC"), Just("Europe/Berlin"), Just("America/New_York")],
        window in proptest::option::of((0u64..30, 30u64..60)),
        probes in proptest::collection::vec(0i64..60 * 24 * 60, 1..8),
    ) {
        let start = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let listed: Vec<String> = days.iter()
            .map(|d| start.checked_add_days(Days::new(*d)).unwrap().to_string())
            .collect();
        let mut recurring = Vec::new();
        if weekend {
            recurring.push(json!({"dayOfWeek": "sat,sun"}));
        }
        if hours {
            recurring.push(json!({"dayOfWeek": "wed", "hour": "6"}));
        }
        // An interval puts its fire times at a different local time each day, so a shifted
        // one lands between the own fire times of its new day.
        let mut spec = if cron.ends_with('h') {
            json!({"interval": cron, "timezone": zone, "startTime": "2024-03-01T03:00:00Z"})
        } else {
            json!({"cron": cron, "timezone": zone})
        };
        if let Some((from, to)) = window {
            let day = |d: u64| day_start(Tz::UTC, start.checked_add_days(Days::new(d)).unwrap());
            spec["startTime"] = json!((day(from) + TimeDelta::hours(7)).to_rfc3339());
            spec["endTime"] = json!((day(to) + TimeDelta::hours(7)).to_rfc3339());
        }
        let t = with(trigger(spec), json!({"days": listed, "timezone": zone, "recurring": recurring}), on);
        let (exclusions, on) = t.exclusions().unwrap();
        let excluded = Excluded {
            raw: |after| t.own_fire_times(after).next(),
            tz: zone.parse().unwrap(),
            window: t.window(),
            exclusions,
            on,
        };
        let from = at("2024-03-01T00:00:00Z");
        let mut afters: Vec<DateTime<Utc>> = probes.iter().map(|m| from + TimeDelta::minutes(*m)).collect();
        afters.extend(t.own_fire_times(Some(from)).take(8));
        for a in afters {
            prop_assert_eq!(excluded.next_after(Some(a)), excluded.replayed_next_after(Some(a)), "after {}", a);
        }
    }
}
