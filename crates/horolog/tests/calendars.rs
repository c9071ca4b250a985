//! Calendars: a Schedule that names a missing Calendar does not fire until it exists; an edit
//! of a Calendar re-plans the Schedules that use it within a second; excluded fire times are
//! counted in status, never as missed; a Calendar's own status. The real operator on the
//! in-memory API server, on tokio's paused clock.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use chrono::{DateTime, Utc};
use cluster::{Cluster, NS};
use fixtures::*;
use horolog::api::{Calendar, CalendarRef, CalendarSpec, OnExcluded, Schedule, TriggerSpec, find_condition};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

fn cron(name: &str, expr: &str) -> Schedule {
    schedule(
        name,
        TriggerSpec {
            cron: Some(expr.into()),
            ..TriggerSpec::default()
        },
    )
}

fn using(mut schedule: Schedule, calendars: &[&str]) -> Schedule {
    schedule.spec.calendar_refs = calendars
        .iter()
        .map(|name| CalendarRef {
            name: name.to_string(),
        })
        .collect();
    schedule
}

async fn create_calendar(cluster: &Cluster, name: &str, spec: serde_json::Value) {
    let spec: CalendarSpec = serde_json::from_value(spec).unwrap();
    let api: Api<Calendar> = Api::namespaced(cluster.client.clone(), NS);
    api.create(&PostParams::default(), &Calendar::new(name, spec))
        .await
        .unwrap();
}

async fn edit_calendar(cluster: &Cluster, name: &str, spec: serde_json::Value) {
    let api: Api<Calendar> = Api::namespaced(cluster.client.clone(), NS);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": spec})),
    )
    .await
    .unwrap();
}

async fn calendar(cluster: &Cluster, name: &str) -> Calendar {
    let api: Api<Calendar> = Api::namespaced(cluster.client.clone(), NS);
    api.get(name).await.unwrap()
}

async fn ready(cluster: &Cluster, schedule: &str) -> (String, String) {
    let status = cluster.schedule(schedule).await.status.unwrap_or_default();
    find_condition(&status.conditions, "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

async fn upcoming(cluster: &Cluster, schedule: &str) -> Vec<DateTime<Utc>> {
    cluster
        .schedule(schedule)
        .await
        .status
        .unwrap_or_default()
        .upcoming_fire_times
}

#[tokio::test(start_paused = true)]
async fn a_missing_calendar_stops_firing_until_it_appears() {
    let cluster = Cluster::start().await;
    cluster
        .apply(using(cron("trading", "* * * * *"), &["holidays"]))
        .await;
    cluster.advance(150).await;
    assert!(cluster.runs_of("trading").await.is_empty(), "fails closed");
    assert_eq!(
        ready(&cluster, "trading").await,
        ("False".into(), "CalendarNotFound".into())
    );
    assert!(
        cluster
            .reasons_of("trading")
            .await
            .contains(&"CalendarNotFound".to_string())
    );

    create_calendar(&cluster, "holidays", json!({"days": ["2026-01-05"]})).await;
    cluster.advance(1).await;
    assert_eq!(
        cluster.runs_of("trading").await.len(),
        1,
        "fires as soon as the Calendar exists"
    );
    assert_eq!(ready(&cluster, "trading").await.0, "True");
    let status = calendar(&cluster, "holidays").await.status.unwrap_or_default();
    assert_eq!(status.schedules, 1);
    assert_eq!(status.next_excluded_day.as_deref(), Some("2026-01-05"));
    assert_eq!(
        find_condition(&status.conditions, "Ready").map(|c| c.status.as_str()),
        Some("True")
    );
}

#[tokio::test(start_paused = true)]
async fn a_calendar_edit_replans_its_schedules_within_a_second() {
    let cluster = Cluster::start().await;
    create_calendar(&cluster, "night", json!({"recurring": [{"hour": "1"}]})).await;
    cluster
        .apply(using(cron("hourly", "0 * * * *"), &["night"]))
        .await;
    cluster.advance(1).await;
    assert_eq!(
        upcoming(&cluster, "hourly").await,
        [
            at(3600 * 2),
            at(3600 * 3),
            at(3600 * 4),
            at(3600 * 5),
            at(3600 * 6)
        ],
        "01:00 is excluded"
    );
    edit_calendar(
        &cluster,
        "night",
        json!({"ranges": [{"from": "2026-01-01T02:00:00", "to": "2026-01-01T04:00:00"}]}),
    )
    .await;
    cluster.advance(1).await;
    assert_eq!(
        upcoming(&cluster, "hourly").await,
        [
            at(3600 * 4),
            at(3600 * 5),
            at(3600 * 6),
            at(3600 * 7),
            at(3600 * 8)
        ],
        "01:00, 02:00 and 03:00 are excluded after the edit"
    );
}

#[tokio::test(start_paused = true)]
async fn excluded_fire_times_make_no_run_and_are_counted_never_missed() {
    let cluster = Cluster::start().await;
    let mut minutely = cron("minutely", "* * * * *");
    minutely.spec.trigger.exclude =
        Some(serde_json::from_value(json!({"recurring": [{"minute": "2-3"}]})).unwrap());
    cluster.apply(minutely).await;
    cluster.advance_to(at(5 * 60)).await;
    cluster.advance(1).await;
    let fired = cluster.fire_secs("minutely").await;
    assert_eq!(fired, [0, 60, 240, 300]);
    let status = cluster.schedule("minutely").await.status.unwrap_or_default();
    assert_eq!(status.excluded_fire_times, 2);
    assert_eq!(status.missed_fire_times, 0);
    assert!(
        cluster
            .reasons_of("minutely")
            .await
            .contains(&"Excluded".to_string())
    );
}

#[tokio::test(start_paused = true)]
async fn following_moves_a_fire_time_past_a_calendar_and_a_cycle_stops_firing() {
    let cluster = Cluster::start().await;
    // 2026-01-01 is excluded: the 06:00 run moves to the 2nd.
    create_calendar(&cluster, "new-year", json!({"days": ["2026-01-01"]})).await;
    let mut daily = using(cron("daily", "0 6 * * *"), &["new-year"]);
    daily.spec.on_excluded = OnExcluded::Following;
    cluster.apply(daily).await;
    cluster.advance(1).await;
    assert_eq!(upcoming(&cluster, "daily").await[0], at(86_400 + 6 * 3600));

    create_calendar(&cluster, "a", json!({"calendarRefs": [{"name": "b"}]})).await;
    create_calendar(&cluster, "b", json!({"calendarRefs": [{"name": "a"}]})).await;
    cluster.apply(using(cron("looped", "* * * * *"), &["a"])).await;
    cluster.advance(120).await;
    assert!(cluster.runs_of("looped").await.is_empty());
    assert_eq!(
        ready(&cluster, "looped").await,
        ("False".into(), "CalendarCycle".into())
    );
    for name in ["a", "b"] {
        let status = calendar(&cluster, name).await.status.unwrap_or_default();
        assert_eq!(
            find_condition(&status.conditions, "Ready").map(|c| c.reason.as_str()),
            Some("CalendarCycle"),
            "{name}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_tasks_calendars_apply_to_its_schedules_and_an_invalid_calendar_names_the_field() {
    let cluster = Cluster::start().await;
    create_calendar(&cluster, "bad", json!({"days": ["2026-13-01"]})).await;
    create_calendar(&cluster, "night", json!({"recurring": [{"hour": "1"}]})).await;
    let template = cron("unused", "* * * * *").spec.job_template.unwrap_or_default();
    let task: horolog::api::Task = serde_json::from_value(json!({
        "apiVersion": "horolog.dev/v1alpha1", "kind": "Task",
        "metadata": {"name": "job"},
        "spec": {"jobTemplate": template, "calendarRefs": [{"name": "night"}]},
    }))
    .unwrap();
    Api::<horolog::api::Task>::namespaced(cluster.client.clone(), NS)
        .create(&PostParams::default(), &task)
        .await
        .unwrap();
    let mut hourly = cron("hourly", "0 * * * *");
    hourly.spec.job_template = None;
    hourly.spec.task_ref = Some(horolog::api::TaskRef { name: "job".into() });
    cluster.apply(hourly).await;
    cluster.advance(1).await;
    assert_eq!(
        upcoming(&cluster, "hourly").await[0],
        at(3600 * 2),
        "the Task's Calendar excludes 01:00"
    );
    let status = calendar(&cluster, "bad").await.status.unwrap_or_default();
    let ready = find_condition(&status.conditions, "Ready")
        .cloned()
        .expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidCalendar")
    );
    assert!(ready.message.contains("spec.days[0]"), "{}", ready.message);
    assert_eq!(
        calendar(&cluster, "night")
            .await
            .status
            .unwrap_or_default()
            .schedules,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn an_excluded_fire_time_is_counted_when_it_passes_and_once_across_restarts() {
    let metrics = horolog::metrics::Metrics::new();
    let observer = metrics.clone();
    let mut cluster =
        Cluster::start_with(move |config| config.observer = Some(std::sync::Arc::new(observer))).await;
    create_calendar(&cluster, "night", json!({"recurring": [{"hour": "1"}]})).await;
    // 01:00 is excluded; 02:00 fires. The 01:00 is counted at 01:00, not when 02:00 fires.
    cluster
        .apply(using(cron("nightly", "0 1,2 * * *"), &["night"]))
        .await;
    let excluded = |s: Schedule| s.status.unwrap_or_default().excluded_fire_times;
    cluster.advance_to(at(3600 + 1)).await;
    assert_eq!(
        excluded(cluster.schedule("nightly").await),
        1,
        "counted once 01:00 passed"
    );
    assert!(cluster.runs_of("nightly").await.is_empty());
    let text = metrics.encode();
    for line in [
        "horolog_excluded_fire_times_total 1",
        "horolog_schedule_excluded_fire_times_total{namespace=\"default\",schedule=\"nightly\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert_eq!(
        cluster
            .schedule("nightly")
            .await
            .status
            .unwrap_or_default()
            .cursor,
        Some(at(3600))
    );

    // A restart (and one killed mid-way) counts nothing again.
    cluster.stop_operator().await;
    cluster.start_operator();
    cluster.advance(5).await;
    cluster.kill_operator().await;
    cluster.start_operator();
    cluster.advance(5).await;
    assert_eq!(
        excluded(cluster.schedule("nightly").await),
        1,
        "not counted twice"
    );

    cluster.advance_to(at(2 * 3600 + 1)).await;
    assert_eq!(cluster.fire_secs("nightly").await, [2 * 3600]);
    assert_eq!(excluded(cluster.schedule("nightly").await), 1);
    // Stopped over the next 01:00: counted when the operator is back, once.
    cluster.stop_operator().await;
    cluster.advance_to(at(86_400 + 3600 + 30)).await;
    assert_eq!(excluded(cluster.schedule("nightly").await), 1);
    cluster.start_operator();
    cluster.advance(1).await;
    assert_eq!(excluded(cluster.schedule("nightly").await), 2);
    let status = cluster.schedule("nightly").await.status.unwrap_or_default();
    assert_eq!(
        status.missed_fire_times, 0,
        "an excluded fire time is never a miss"
    );
}

#[tokio::test(start_paused = true)]
async fn a_calendar_edit_applies_from_the_calendars_edit_time() {
    let mut cluster = Cluster::start().await;
    create_calendar(&cluster, "night", json!({"recurring": [{"hour": "2"}]})).await;
    let mut every20 = using(cron("every20", "*/20 * * * *"), &["night"]);
    every20.spec.catch_up = horolog::api::CatchUpPolicy::Enabled;
    cluster.apply(every20).await;
    cluster.advance_to(at(3600 + 1)).await;
    assert_eq!(cluster.fire_secs("every20").await, [0, 1200, 2400, 3600]);
    // While no operator runs, at 02:30 the Calendar stops excluding 02:xx; the operator is back
    // at 02:55. 02:00 and 02:20 passed under the old Calendar: excluded, not run. 02:40 passed
    // under the new one: it runs (catchUp Enabled), late. Counting the edit from the operator's
    // return (or from the Schedule's last write) would get one of them wrong. 01:20 and 01:40
    // passed before the edit with no operator: recorded missed, as for a trigger edit.
    cluster.stop_operator().await;
    cluster.advance_to(at(2 * 3600 + 1800)).await;
    edit_calendar(&cluster, "night", json!({"recurring": [{"hour": "5"}]})).await;
    cluster.advance_to(at(2 * 3600 + 3300)).await;
    cluster.start_operator();
    cluster.advance(1).await;
    assert_eq!(
        cluster.fire_secs("every20").await,
        [0, 1200, 2400, 3600, 2 * 3600 + 2400],
        "02:40 runs, 02:00 and 02:20 do not"
    );
    let status = cluster.schedule("every20").await.status.unwrap_or_default();
    assert_eq!(status.missed_fire_times, 2);
    assert_eq!(status.upcoming_fire_times[0], at(3 * 3600));
    assert!(
        cluster
            .events_of("every20")
            .await
            .iter()
            .any(|(reason, message)| reason == "TriggerChanged" && message.contains("02:30:00")),
        "{:?}",
        cluster.events_of("every20").await
    );
}
