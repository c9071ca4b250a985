//! Calendars on a real cluster: a Schedule that names a missing Calendar does not fire until
//! the Calendar exists; an excluded fire time makes no JobRun and is counted in
//! `status.excludedFireTimes` (also when nothing fires after it); a Calendar edit re-plans a
//! Schedule's `status.upcomingFireTimes` within seconds. The scenarios of
//! crates/horolog/tests/calendars.rs, on the wall clock.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use horolog::api::Calendar;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::*;

/// Applies the Calendar `name` with `spec` (server-side apply, as `kubectl apply
/// --server-side` would; again with another spec, an edit).
async fn apply_calendar(env: &Env, name: &str, spec: Value) -> Calendar {
    let object = json!({
        "apiVersion": "horolog.dev/v1alpha1", "kind": "Calendar",
        "metadata": {"name": name}, "spec": spec,
    });
    env.calendars()
        .patch(
            name,
            &PatchParams::apply(harness::MANAGER).force().validation_strict(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|err| panic!("apply Calendar {name}: {err}"))
}

/// A Schedule like [`schedule`] that names the Calendars `calendars`; `extra` is merged into
/// its spec.
fn schedule_using(name: &str, trigger: Value, calendars: &[&str], extra: Value) -> Value {
    let mut object = schedule(name, trigger, extra);
    let refs: Vec<Value> = calendars.iter().map(|c| json!({"name": c})).collect();
    object["spec"]["calendarRefs"] = json!(refs);
    object
}

fn excluded_of(schedule: &Schedule) -> i64 {
    status_of(schedule).excluded_fire_times
}

/// (operator) A Schedule whose Calendar does not exist is Ready=False with reason
/// CalendarNotFound (and an Event saying so) and fires nothing; once the Calendar is created
/// it fires, and the Calendar's status counts it as a user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_waits_for_its_missing_calendar_then_fires() {
    e2e("calendar-missing", Needs::Operator, |env| async move {
        let name = "trading";
        apply_schedule(
            &env,
            &schedule_using(name, json!({"interval": "2s"}), &["holidays"], json!({})),
        )
        .await;
        let waiting = wait_schedule(
            &env,
            name,
            Duration::from_secs(60),
            "Ready=False CalendarNotFound",
            |s| ready_of(s) == Some(("False".into(), "CalendarNotFound".into())),
        )
        .await;
        let message = waiting
            .condition("Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        assert!(
            message.contains("holidays"),
            "the Ready message names the Calendar: {message:?}"
        );
        let event = wait_event(&env, name, "CalendarNotFound", Duration::from_secs(60)).await;
        assert_eq!(event.type_.as_deref(), Some("Warning"), "{event:?}");
        // Three of its fire times pass: none fires (a holiday calendar fails closed).
        tokio::time::sleep(Duration::from_secs(6)).await;
        let runs = runs_of(&env, name).await;
        assert!(
            runs.is_empty(),
            "fired without its Calendar: {}",
            describe_runs(&runs)
        );

        apply_calendar(&env, "holidays", json!({"days": ["2000-01-01"]})).await;
        wait_runs(
            &env,
            name,
            Duration::from_secs(30),
            "a JobRun once the Calendar exists",
            |runs| !runs.is_empty(),
        )
        .await;
        wait_schedule(&env, name, Duration::from_secs(30), "Ready=True", |s| {
            ready_of(s).is_some_and(|(status, _)| status == "True")
        })
        .await;
        wait_object(
            &env,
            env.calendars(),
            "holidays",
            Duration::from_secs(30),
            "Ready=True and one user",
            |c: &Calendar| {
                let status = c.status.clone().unwrap_or_default();
                status.schedules == 1
                    && status
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            },
            |c| format!("status {:?}", c.status),
        )
        .await;
    })
    .await;
}

/// (operator) A Calendar excludes `[t0+8s, t0+16s)`. An every-2s Schedule using it makes no
/// JobRun for the four fire times in it, counts them in `status.excludedFireTimes` (never as
/// missed, with an Excluded Event) and fires again after it. A one-off `date` inside it,
/// after which nothing ever fires, is counted once its time has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_excluded_fire_time_makes_no_run_and_is_counted() {
    e2e("calendar-skip", Needs::Operator, |env| async move {
        let t0 = now_secs();
        let (from, to) = (t0 + TimeDelta::seconds(8), t0 + TimeDelta::seconds(16));
        apply_calendar(
            &env,
            "blackout",
            json!({"ranges": [{"from": rfc3339(from), "to": rfc3339(to)}]}),
        )
        .await;
        let history = json!({"successfulRunsHistoryLimit": 100, "failedRunsHistoryLimit": 100});
        apply_schedule(
            &env,
            &schedule_using("every-2s", json!({"interval": "2s"}), &["blackout"], history),
        )
        .await;
        let once_at = t0 + TimeDelta::seconds(10);
        apply_schedule(
            &env,
            &schedule_using(
                "once",
                json!({"date": rfc3339(once_at)}),
                &["blackout"],
                json!({}),
            ),
        )
        .await;

        let once = wait_schedule(
            &env,
            "once",
            Duration::from_secs(40),
            "excludedFireTimes 1",
            |s| excluded_of(s) == 1,
        )
        .await;
        assert_eq!(
            status_of(&once).missed_fire_times,
            0,
            "{}",
            describe_schedule(&once)
        );
        let runs = runs_of(&env, "once").await;
        assert!(
            runs.is_empty(),
            "an excluded date fired: {}",
            describe_runs(&runs)
        );

        let runs = wait_runs(
            &env,
            "every-2s",
            Duration::from_secs(60),
            "a run after the blackout",
            |runs| fire_times(runs).iter().any(|t| *t >= to),
        )
        .await;
        let inside: Vec<_> = fire_times(&runs)
            .into_iter()
            .filter(|t| *t >= from && *t < to)
            .collect();
        assert!(inside.is_empty(), "JobRuns for excluded fire times: {inside:?}");
        let every = get_schedule(&env, "every-2s").await;
        let status = status_of(&every);
        assert_eq!(
            (status.excluded_fire_times, status.missed_fire_times),
            (4, 0),
            "the four fire times in the blackout are excluded, none missed: {}",
            describe_schedule(&every)
        );
        let event = wait_event(&env, "every-2s", "Excluded", Duration::from_secs(30)).await;
        assert!(
            event.note.as_deref().is_some_and(|n| n.contains("blackout")),
            "the Event names the Calendar: {event:?}"
        );
    })
    .await;
}

/// (operator) Editing a Calendar re-plans the Schedules that use it at once: the hourly
/// Schedule's second upcoming fire time, newly excluded, leaves `status.upcomingFireTimes`
/// within seconds (a watch of the Calendar, no polling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_edit_replans_upcoming_fire_times_within_seconds() {
    e2e("calendar-edit", Needs::Operator, |env| async move {
        let name = "hourly";
        apply_calendar(&env, "maintenance", json!({"days": ["2000-01-01"]})).await;
        apply_schedule(
            &env,
            &schedule_using(name, json!({"cron": "0 * * * *"}), &["maintenance"], json!({})),
        )
        .await;
        let planned = wait_schedule(
            &env,
            name,
            Duration::from_secs(60),
            "five upcoming fire times",
            |s| observed(s) && status_of(s).upcoming_fire_times.len() == 5,
        )
        .await;
        let before = status_of(&planned).upcoming_fire_times;
        // The second one: at least an hour away, so it cannot pass during the test.
        let dropped = before[1];
        let edited = Instant::now();
        apply_calendar(
            &env,
            "maintenance",
            json!({"ranges": [{"from": rfc3339(dropped), "to": rfc3339(dropped + TimeDelta::seconds(1))}]}),
        )
        .await;
        let replanned = wait_schedule(
            &env,
            name,
            Duration::from_secs(10),
            &format!("upcomingFireTimes without {}", rfc3339(dropped)),
            |s| {
                let upcoming = status_of(s).upcoming_fire_times;
                upcoming.len() == 5 && !upcoming.contains(&dropped)
            },
        )
        .await;
        let took = edited.elapsed();
        println!("the Calendar edit re-planned the Schedule in {took:?}");
        let after = status_of(&replanned).upcoming_fire_times;
        assert_eq!(
            after,
            [
                before[0],
                before[2],
                before[3],
                before[4],
                before[4] + TimeDelta::hours(1)
            ],
            "only the excluded hour left the plan"
        );
        assert!(took < Duration::from_secs(5), "re-planned only after {took:?}");
        // The Calendar's own status names the day it now excludes.
        let day = dropped.date_naive().to_string();
        wait_object(
            &env,
            env.calendars(),
            "maintenance",
            Duration::from_secs(30),
            &format!("nextExcludedDay {day}"),
            |c: &Calendar| {
                c.status.as_ref().and_then(|s| s.next_excluded_day.as_deref()) == Some(day.as_str())
            },
            |c| format!("status {:?}", c.status),
        )
        .await;
    })
    .await;
}
