//! Backfill on a real cluster: a dry run that lists the fire times of a past range and creates
//! nothing, then the range run as if it had happened, once, with the usual JobRun names. The
//! scenarios of crates/horolog/tests/backfill.rs, on the wall clock.

use std::time::Duration;

use chrono::TimeDelta;
use horolog::api::{BACKFILL_LABEL, Backfill, BackfillPhase, BackfillStatus};
use kube::api::PostParams;

use super::*;

/// A Backfill of `schedule`'s fire times in `[from, to)`, one run at a time.
fn backfill(name: &str, schedule: &str, from: DateTime<Utc>, to: DateTime<Utc>, dry_run: bool) -> Backfill {
    let object = json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "Backfill",
        "metadata": {"name": name},
        "spec": {
            "scheduleName": schedule,
            "from": rfc3339(from),
            "to": rfc3339(to),
            "concurrencyPolicy": "Wait",
            "dryRun": dry_run,
        },
    });
    serde_json::from_value(object).unwrap_or_else(|err| panic!("Backfill {name}: {err}"))
}

async fn create_backfill(env: &Env, backfill: &Backfill) {
    env.backfills()
        .create(&PostParams::default(), backfill)
        .await
        .unwrap_or_else(|err| panic!("create Backfill {}: {err}", backfill.name_any()));
}

/// Waits (at most `within`) until the Backfill `name`'s status satisfies `check`.
async fn wait_backfill(
    env: &Env,
    name: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&BackfillStatus) -> bool,
) -> BackfillStatus {
    let status_of = |b: &Backfill| b.status.clone().unwrap_or_default();
    let backfill = wait_object(
        env,
        env.backfills(),
        name,
        within,
        what,
        |b| check(&status_of(b)),
        |b| format!("{:?}", status_of(b)),
    )
    .await;
    status_of(&backfill)
}

/// The JobRuns labelled as created by Backfill `name`.
async fn backfilled(env: &Env, name: &str) -> Vec<JobRun> {
    labelled(env.jobruns(), BACKFILL_LABEL, name).await
}

/// (operator; with a node, also the runs' outcome) A paused Schedule `interval: 1m` whose
/// startTime lies ten minutes back, and a range of its first three fire times:
/// - a dry run counts 3, lists them in status.preview, completes, and creates no JobRun;
/// - the Backfill creates exactly those three JobRuns, named `<schedule>-<unix seconds>` and
///   labelled with the Backfill;
/// - with a node: the three runs succeed one at a time (concurrencyPolicy Wait), the Backfill
///   reaches Complete, and a second Backfill over the same range creates nothing more (the
///   names exist) and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_runs_the_fire_times_of_a_past_range_once_and_a_dry_run_only_lists_them() {
    e2e("backfill", Needs::Operator, |env| async move {
        let start = now_secs() - TimeDelta::minutes(10);
        let object = schedule(
            "nightly",
            json!({"interval": "1m", "startTime": rfc3339(start)}),
            json!({"paused": true, "successfulRunsHistoryLimit": 100, "failedRunsHistoryLimit": 100}),
        );
        apply_schedule(&env, &object).await;
        let (from, to) = (start, start + TimeDelta::minutes(3));
        let expected: Vec<DateTime<Utc>> = (0..3).map(|m| start + TimeDelta::minutes(m)).collect();

        create_backfill(&env, &backfill("preview", "nightly", from, to, true)).await;
        let preview = wait_backfill(
            &env,
            "preview",
            Duration::from_secs(30),
            "a complete dry run",
            |s| s.phase == Some(BackfillPhase::Complete),
        )
        .await;
        assert_eq!(preview.fire_times, Some(3), "{preview:?}");
        assert_eq!(preview.preview, expected);
        assert!(
            backfilled(&env, "preview").await.is_empty(),
            "a dry run creates nothing"
        );
        assert!(
            runs_of(&env, "nightly").await.is_empty(),
            "a paused Schedule fires nothing"
        );

        create_backfill(&env, &backfill("catch-up", "nightly", from, to, false)).await;
        // One run at a time: without a node the first holds the slot, so the Backfill creates
        // all three but completes only once they have finished.
        let created = wait_backfill(&env, "catch-up", Duration::from_secs(60), "3 runs created", |s| {
            s.created == 3
        })
        .await;
        assert_eq!(created.fire_times, Some(3), "{created:?}");
        let runs = backfilled(&env, "catch-up").await;
        assert_eq!(fire_times(&runs), expected, "{}", describe_runs(&runs));
        let mut names: Vec<String> = runs.iter().map(|r| r.name_any()).collect();
        names.sort();
        let want: Vec<String> = expected
            .iter()
            .map(|t| format!("nightly-{}", t.timestamp()))
            .collect();
        assert_eq!(names, want);
        if !pods_run_or_skip(&env, "the backfilled runs' outcome and a second Backfill").await {
            return;
        }

        let runs = wait_runs(&env, "nightly", Duration::from_secs(180), "3 Succeeded", |runs| {
            runs.len() == 3 && runs.iter().all(|r| phase(r) == Some(JobRunPhase::Succeeded))
        })
        .await;
        // Wait: one at a time, in fire-time order.
        let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = runs
            .iter()
            .filter_map(|r| {
                let status = r.status.as_ref()?;
                Some((status.start_time?, status.completion_time?))
            })
            .collect();
        spans.sort();
        assert_eq!(spans.len(), 3, "{}", describe_runs(&runs));
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "runs overlapped: {spans:?}");
        }
        wait_backfill(&env, "catch-up", Duration::from_secs(60), "Complete", |s| {
            s.phase == Some(BackfillPhase::Complete)
        })
        .await;

        create_backfill(&env, &backfill("again", "nightly", from, to, false)).await;
        wait_backfill(&env, "again", Duration::from_secs(60), "Complete", |s| {
            s.phase == Some(BackfillPhase::Complete)
        })
        .await;
        assert!(
            backfilled(&env, "again").await.is_empty(),
            "no fire time runs twice"
        );
        assert_eq!(runs_of(&env, "nightly").await.len(), 3);
    })
    .await;
}
