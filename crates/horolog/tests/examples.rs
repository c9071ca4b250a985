//! Every manifest under examples/ parses into the Rust types, passes validation, and its
//! Schedules preview: a newcomer can apply each one unchanged.

use std::path::Path;

use chrono::{DateTime, Utc};
use horolog::manifest::{Manifest, read_manifests};
use horolog::preview::{preview, preview_with};

/// examples/ (what `run --local examples/` runs) and examples/cluster/ (what needs a cluster).
fn examples() -> Vec<Manifest> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut manifests = read_manifests(&dir).expect("examples parse");
    manifests.extend(read_manifests(&dir.join("cluster")).expect("examples/cluster parse"));
    manifests
}

#[test]
fn every_example_validates() {
    let manifests = examples();
    let mut schedules = 0;
    for manifest in &manifests {
        match manifest {
            Manifest::Schedule(s) => {
                schedules += 1;
                s.spec
                    .validate()
                    .unwrap_or_else(|e| panic!("{:?}: {e}", s.metadata.name));
            }
            Manifest::JobRun(j) => {
                j.spec
                    .run
                    .validate("spec")
                    .unwrap_or_else(|e| panic!("{:?}: {e}", j.metadata.name));
            }
            Manifest::Task(t) => {
                assert_eq!(t.spec.problems(), vec![], "{:?}", t.metadata.name);
            }
            Manifest::Backfill(b) => {
                assert_eq!(b.spec.problems(), vec![], "{:?}", b.metadata.name);
                let schedule = manifests.iter().any(|m| {
                    matches!(m, Manifest::Schedule(s) if s.metadata.name.as_deref() == Some(b.spec.schedule_name.as_str()))
                });
                assert!(
                    schedule,
                    "Backfill {:?} names Schedule {:?}, which examples/ lacks",
                    b.metadata.name, b.spec.schedule_name
                );
            }
            Manifest::Calendar(c) => {
                let def = horolog::controller::calendar::def_of(c);
                horolog_core::exclusion::Exclusions::compile("c", "spec", &def.spec, chrono_tz::Tz::UTC)
                    .unwrap_or_else(|e| panic!("Calendar {:?}: {e}", c.metadata.name));
            }
            Manifest::Other { kind, .. } => {
                panic!("examples/ holds a {kind}; only horolog kinds belong there")
            }
        }
    }
    assert!(
        schedules >= 8,
        "at least eight example Schedules, found {schedules}"
    );
    assert!(
        manifests.iter().any(|m| matches!(m, Manifest::JobRun(_))),
        "a one-off JobRun example"
    );
    assert!(
        manifests.iter().any(|m| matches!(m, Manifest::Backfill(_))),
        "a Backfill example"
    );
}

#[test]
fn every_example_schedule_previews_with_future_fire_times() {
    let from: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().unwrap();
    let manifests = examples();
    for result in preview(&manifests, from, 5) {
        let p = result.unwrap_or_else(|e| panic!("{e}"));
        // The one-shot date examples may have passed; everything else keeps firing.
        if !p.name.contains("new-year") && !p.name.contains("run-now") {
            assert_eq!(p.fire_times.len(), 5, "{} has 5 upcoming fire times", p.name);
        }
        for t in &p.fire_times {
            let t = DateTime::parse_from_rfc3339(t).unwrap();
            assert!(t >= from, "{}: {t} is before {from}", p.name);
        }
    }
}

#[test]
fn examples_cover_every_trigger_kind_and_policy() {
    let manifests = examples();
    let specs: Vec<_> = manifests
        .iter()
        .filter_map(|m| {
            if let Manifest::Schedule(s) = m {
                Some(&s.spec)
            } else {
                None
            }
        })
        .collect();
    let t = |f: &dyn Fn(&horolog::api::TriggerSpec) -> bool| specs.iter().any(|s| f(&s.trigger));
    assert!(t(&|t| t.cron.is_some()), "cron");
    assert!(t(&|t| t.cron_fields.is_some()), "cronFields");
    assert!(t(&|t| t.interval.is_some()), "interval");
    assert!(t(&|t| t.date.is_some()), "date");
    assert!(t(&|t| t.calendar_interval.is_some()), "calendarInterval");
    assert!(t(&|t| t.any_of.is_some()), "anyOf");
    assert!(t(&|t| t.all_of.is_some()), "allOf");
    assert!(
        t(&|t| t.timezone.as_deref() == Some("Europe/Berlin")),
        "a DST time zone"
    );
    use horolog::api::{CoalescePolicy, ConcurrencyPolicy};
    assert!(
        specs.iter().any(|s| s.coalesce == CoalescePolicy::All),
        "coalesce"
    );
    assert!(
        specs.iter().any(|s| s.misfire_grace_time.is_some()),
        "misfireGraceTime"
    );
    assert!(specs.iter().any(|s| s.paused), "paused");
    for policy in [
        ConcurrencyPolicy::Wait,
        ConcurrencyPolicy::Skip,
        ConcurrencyPolicy::Replace,
    ] {
        assert!(
            specs
                .iter()
                .any(|s| s.max_running_jobs.is_some() && s.concurrency_policy == Some(policy)),
            "maxRunningJobs with {policy:?}"
        );
    }
    assert!(
        manifests.iter().any(|m| matches!(m, Manifest::Schedule(s)
            if s.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("horolog.dev/run-now")))),
        "run-now"
    );
}

#[test]
fn the_trading_day_example_runs_a_monday_holiday_on_the_friday_before() {
    let manifests = examples();
    let from: DateTime<Utc> = "2027-01-13T00:00:00Z".parse().unwrap();
    let previews = preview_with(&manifests, from, 4, true);
    let trading = previews
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .find(|p| p.name == "trading-day-prep")
        .expect("the trading-day example previews");
    // Wed 13, Thu 14, Fri 15 (which also carries Monday 18's run), Tue 19.
    assert_eq!(
        trading.fire_times,
        [
            "2027-01-13T06:00:00-05:00",
            "2027-01-14T06:00:00-05:00",
            "2027-01-15T06:00:00-05:00",
            "2027-01-19T06:00:00-05:00"
        ]
    );
    let monday = trading
        .excluded
        .iter()
        .find(|x| x.fire_time == "2027-01-18T06:00:00-05:00")
        .expect("Monday 18 is listed as excluded");
    assert_eq!(monday.calendar, "nyse-2027");
    assert_eq!(monday.moved_to.as_deref(), Some("2027-01-15T06:00:00-05:00"));
    assert!(monday.merged);
}
