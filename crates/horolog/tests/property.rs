//! Exactly once, as a property: random Schedules live through random histories of time
//! passing, Pods ending, graceful restarts, crashes right after a chosen write, API server
//! outages, pauses, runs deleted by hand, Pods deleted while the operator is down, foreign
//! Pods under our names, trigger edits (also while the operator is down or the Schedule
//! paused), a frozen operator, Schedules deleted (also with `--cascade=orphan`) while runs
//! wait and created again under the same name, and Tasks deleted while runs wait and created
//! again; and at the end every fire time between a
//! Schedule's creation and its cursor is exactly one of: a JobRun (in any phase), a count in
//! `missedFireTimes`, or a count in `coalescedFireTimes`. Never two, never none. A run of a
//! deleted Schedule (or a run made before its Task's deletion) never starts after it, and no
//! Pod is ever made twice.
//!
//! The JobRuns are witnessed by the API server's own change stream, so a run created, finished
//! and deleted by history in between is still seen, and a name created twice is caught.
//! `missedFireTimes` also counts runs that ended Missed once their Schedule has settled them
//! (they left `status.active`); those are JobRuns already, so they are taken out of the count.
//!
//! Most histories run with runs staged ahead of their fire time (`--stage-ahead` 10 s or
//! 30 s), some without: a staged run withdrawn before its fire time (deleted unstarted) is no
//! outcome, and one whose fire time the cursor has not reached at the end is none yet.
//!
//! The real operator on the in-memory API server, on tokio's paused clock. `PROPTEST_CASES`
//! sets how many histories are tried (default 24).

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use cluster::{Cluster, NS, OPERATOR};
use fixtures::*;
use horolog::api::{
    CatchUpPolicy, CoalescePolicy, ConcurrencyPolicy, JobRun, JobRunPhase, Schedule, Task, TaskRef, TaskSpec,
};
use horolog::clock::Clock;
use horolog_memserver::{ChangeKind, RequestMatch};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

/// One random Schedule: an interval trigger with random policies.
#[derive(Clone, Debug)]
struct ScheduleCase {
    interval_secs: i64,
    coalesce: CoalescePolicy,
    grace_secs: Option<i64>,
    limit: Option<(i32, ConcurrencyPolicy)>,
    catch_up: CatchUpPolicy,
    history: i32,
    /// It runs Task `t{i}` (its template, `backoffLimit` 0) instead of a jobTemplate.
    task: bool,
}

/// The write a crash follows.
#[derive(Clone, Copy, Debug)]
enum Write {
    CreateRun,
    CreatePod,
    ScheduleStatus,
    RunStatus,
    DeleteRun,
}

impl Write {
    fn matching(self) -> RequestMatch {
        let operator = RequestMatch::any().client(OPERATOR);
        match self {
            Write::CreateRun => operator.verb("create").resource("jobruns"),
            Write::CreatePod => operator.verb("create").resource("pods"),
            Write::ScheduleStatus => operator.writes().resource("schedules").subresource("status"),
            Write::RunStatus => operator.writes().resource("jobruns").subresource("status"),
            Write::DeleteRun => operator.verb("delete").resource("jobruns"),
        }
    }
}

/// One step of a history.
#[derive(Clone, Debug)]
enum Step {
    /// Time passes with everything up.
    Advance(u64),
    /// The kubelet ends every Pod that has not ended; the Pod at index `i` fails when bit
    /// `i % 32` of the mask is set.
    Kubelet { fail_mask: u32 },
    /// The operator is stopped gracefully and started again `down` seconds later.
    Restart { down: u64 },
    /// The operator dies right after its next write of this kind (or after `window` seconds,
    /// whichever is first), and starts again `down` seconds later.
    Crash { after: Write, window: u64, down: u64 },
    /// The API server refuses every request for this many seconds.
    Outage(u64),
    /// A user deletes one JobRun its Schedule has settled (`kubectl delete jobrun`).
    DeleteSettled(usize),
    /// A user pauses one Schedule and resumes it this many seconds later.
    Pause { pick: usize, secs: u64 },
    /// Someone else (a StatefulSet, `kubectl run`) creates a Pod named as the first attempt of
    /// one Schedule's next run: the operator must neither adopt nor delete it.
    Squat(usize),
    /// The operator dies; meanwhile every Pod ends (as `Kubelet`) and is deleted (a node
    /// drain); it starts again `down` seconds later.
    DrainWhileDown { fail_mask: u32, down: u64 },
    /// A user deletes one Schedule (background, or `--cascade=orphan` keeping its runs) while
    /// its runs may wait, and creates it again under the same name `gap` seconds later.
    Recreate { pick: usize, orphan: bool, gap: u64 },
    /// A user changes one Schedule's interval to one of the four (the edit counts from its
    /// moment); with `down`, the operator is stopped from `down` seconds before the edit to
    /// `down` seconds after it; with `paused`, the Schedule is paused across it likewise.
    Edit {
        pick: usize,
        interval: usize,
        down: Option<u64>,
        paused: bool,
    },
    /// The operator freezes (SIGSTOP, a long GC): none of its requests reach the API server
    /// for this many seconds, then all of them do, late.
    Freeze(u64),
    /// A user deletes the Task one Schedule runs (if it runs one) while runs may wait, and
    /// creates it again `gap` seconds later.
    DeleteTask { pick: usize, gap: u64 },
}

/// The intervals a Schedule's trigger takes.
const INTERVALS: [i64; 4] = [15, 40, 60, 90];

fn schedule_case() -> impl Strategy<Value = ScheduleCase> {
    (
        select(INTERVALS.to_vec()),
        select(vec![
            CoalescePolicy::Earliest,
            CoalescePolicy::Latest,
            CoalescePolicy::All,
        ]),
        prop::option::of(select(vec![20i64, 45, 120])),
        select(vec![
            None,
            Some((1, ConcurrencyPolicy::Wait)),
            Some((2, ConcurrencyPolicy::Wait)),
            Some((1, ConcurrencyPolicy::Skip)),
            Some((1, ConcurrencyPolicy::BufferOne)),
            Some((1, ConcurrencyPolicy::Replace)),
            Some((1, ConcurrencyPolicy::Terminate)),
        ]),
        prop_oneof![3 => Just(CatchUpPolicy::Enabled), 1 => Just(CatchUpPolicy::Disabled)],
        1..4i32,
        prop_oneof![3 => Just(false), 1 => Just(true)],
    )
        .prop_map(
            |(interval_secs, coalesce, grace_secs, limit, catch_up, history, task)| ScheduleCase {
                interval_secs,
                coalesce,
                grace_secs,
                limit,
                catch_up,
                history,
                task,
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    let write = select(vec![
        Write::CreateRun,
        Write::CreatePod,
        Write::ScheduleStatus,
        Write::RunStatus,
        Write::DeleteRun,
    ]);
    prop_oneof![
        3 => (1u64..300).prop_map(Step::Advance),
        3 => any::<u32>().prop_map(|fail_mask| Step::Kubelet { fail_mask }),
        1 => (0u64..600).prop_map(|down| Step::Restart { down }),
        2 => (write, 1u64..120, 0u64..300)
            .prop_map(|(after, window, down)| Step::Crash { after, window, down }),
        1 => (1u64..60).prop_map(Step::Outage),
        1 => any::<usize>().prop_map(Step::DeleteSettled),
        1 => (any::<usize>(), 1u64..300).prop_map(|(pick, secs)| Step::Pause { pick, secs }),
        1 => (any::<u32>(), 0u64..300).prop_map(|(fail_mask, down)| Step::DrainWhileDown { fail_mask, down }),
        1 => (any::<usize>(), any::<bool>(), 0u64..200)
            .prop_map(|(pick, orphan, gap)| Step::Recreate { pick, orphan, gap }),
        1 => (any::<usize>(), 0..INTERVALS.len(), prop::option::of(1u64..200), any::<bool>())
            .prop_map(|(pick, interval, down, paused)| Step::Edit { pick, interval, down, paused }),
        1 => (1u64..40).prop_map(Step::Freeze),
        1 => (any::<usize>(), 1u64..200).prop_map(|(pick, gap)| Step::DeleteTask { pick, gap }),
    ]
}

/// The operator's `--stage-ahead` in seconds: mostly on (the product's 30 s, and 10 s, shorter
/// than some intervals and longer than others), sometimes off.
fn stage_ahead() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 1 => Just(10u64), 2 => Just(30u64)]
}

/// The steps of [`step`], and now and then a Pod someone else made under one of our names.
fn step_with_squats() -> impl Strategy<Value = Step> {
    prop_oneof![8 => step(), 2 => any::<usize>().prop_map(Step::Squat)]
}

fn build(name: &str, case: &ScheduleCase) -> Schedule {
    let mut schedule = every(name, &format!("{}s", case.interval_secs))
        .coalesce(case.coalesce)
        .history(case.history, case.history)
        .backoff_limit(0);
    if let Some(grace) = case.grace_secs {
        schedule = schedule.grace(&format!("{grace}s"));
    }
    if let Some((limit, policy)) = case.limit {
        schedule = schedule.max_running(limit, policy);
    }
    schedule.spec.catch_up = case.catch_up;
    if case.task {
        schedule.spec.job_template = None;
        schedule.spec.task_ref = Some(TaskRef {
            name: format!("t{}", name.trim_start_matches('s')),
        });
    }
    schedule
}

/// The Task `name`: the fixtures' template, `backoffLimit` 0, no limit of its own.
fn task(name: &str) -> Task {
    let template = every("unused", "1m")
        .backoff_limit(0)
        .spec
        .job_template
        .unwrap_or_default();
    Task::new(
        name,
        TaskSpec {
            job_template: template,
            max_running_jobs: None,
            concurrency_policy: None,
            max_waiting_runs: None,
            misfire_grace_time: None,
            calendar_refs: Vec::new(),
        },
    )
}

async fn create_task(cluster: &Cluster, name: &str) {
    let api: Api<Task> = Api::namespaced(cluster.client.clone(), NS);
    api.create(&Default::default(), &task(name))
        .await
        .unwrap_or_else(|err| panic!("create task {name}: {err}"));
    cluster.settle().await;
}

/// Every JobRun the API server ever held: how often each name was created for each Schedule
/// (by the Schedule's uid: one created again under its name is another), and the last state
/// each was seen in (for a deleted run, the state it was deleted in).
#[derive(Default)]
struct Witness {
    created: HashMap<(String, String), usize>,
    /// By the run's uid: the uid of the Schedule that created it, and its last state.
    last: BTreeMap<String, (String, JobRun)>,
    /// How often each Pod name (one per attempt) was created for each run uid.
    pods_created: HashMap<(String, String), usize>,
    /// Each Pod's creation: the uid of its run, and when.
    pod_times: Vec<(String, String, DateTime<Utc>)>,
}

/// The uid of `object`'s controller ownerReference, or an empty string.
fn controller_of(object: &serde_json::Value) -> String {
    object["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|owners| owners.iter().find(|o| o["controller"] == json!(true)))
        .and_then(|o| o["uid"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn witness(cluster: &Cluster) -> Arc<Mutex<Witness>> {
    let witness = Arc::new(Mutex::new(Witness::default()));
    let mut changes = cluster.server.subscribe_changes();
    let seen = witness.clone();
    let clock = cluster.clock.clone();
    tokio::spawn(async move {
        while let Ok(change) = changes.recv().await {
            if change.resource.plural == "pods" && change.kind == ChangeKind::Added {
                let name = change.object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let owner = controller_of(&change.object);
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                *seen
                    .pods_created
                    .entry((owner.clone(), name.clone()))
                    .or_default() += 1;
                seen.pod_times.push((owner, name, clock.now()));
                continue;
            }
            if change.resource.plural != "jobruns" {
                continue;
            }
            let Ok(run) = serde_json::from_value::<JobRun>((*change.object).clone()) else {
                continue;
            };
            let uid = run.uid().unwrap_or_default();
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            let owner = match seen.last.get(&uid) {
                // Orphaned later (--cascade=orphan): still the run of the Schedule that made it.
                Some((owner, _)) => owner.clone(),
                None => controller_of(&change.object),
            };
            if change.kind == ChangeKind::Added {
                *seen.created.entry((owner.clone(), run.name_any())).or_default() += 1;
            }
            // A run deleted before it started (no Pod, nothing in status, not finished) was
            // staged ahead of its fire time and withdrawn: it is no outcome, and the name may
            // be staged again. A run the operator wrongly withdrew leaves its fire time with
            // no outcome, which the check catches.
            let started = seen.pods_created.keys().any(|(of, _)| *of == uid)
                || run.is_finished()
                || run
                    .status
                    .as_ref()
                    .is_some_and(|s| s.pod_name.is_some() || s.attempts.is_some());
            if change.kind == ChangeKind::Deleted && !started {
                if let Some(count) = seen.created.get_mut(&(owner.clone(), run.name_any())) {
                    *count = count.saturating_sub(1);
                }
                seen.last.remove(&uid);
                continue;
            }
            seen.last.insert(uid, (owner, run));
        }
    });
    witness
}

/// What the test itself did that the check needs: the Pods it squatted, the Schedules it
/// deleted, and each Schedule's trigger over time.
#[derive(Default)]
struct Acts {
    squatted: Vec<Pod>,
    deleted: Vec<(String, DateTime<Utc>)>,
    /// Tasks deleted: the name, and when.
    deleted_tasks: Vec<(String, DateTime<Utc>)>,
    /// For each Schedule (`s{i}`): from when (its creation, then each edit) which interval.
    triggers: Vec<Vec<(DateTime<Utc>, i64)>>,
}

/// Deletes Schedule `name` as `kubectl delete` would (background), or with
/// `--cascade=orphan`, and records it.
async fn delete_schedule(cluster: &Cluster, name: &str, orphan: bool, acts: &mut Acts) {
    let api: Api<Schedule> = Api::namespaced(cluster.client.clone(), NS);
    let uid = cluster.schedule(name).await.uid().unwrap_or_default();
    let params = if orphan {
        DeleteParams::orphan()
    } else {
        DeleteParams::background()
    };
    if api.delete(name, &params).await.is_ok() {
        acts.deleted.push((uid, cluster.clock.now()));
    }
    cluster.settle().await;
}

async fn play(cluster: &mut Cluster, cases: &[ScheduleCase], step: &Step, acts: &mut Acts) {
    let schedules = cases.len();
    match *step {
        Step::Recreate { pick, orphan, gap } => {
            let i = pick % schedules.max(1);
            let name = format!("s{i}");
            delete_schedule(cluster, &name, orphan, acts).await;
            cluster.advance(gap).await;
            cluster.apply(build(&name, &cases[i])).await;
            let created = cluster.clock.now();
            acts.triggers[i] = vec![(created, cases[i].interval_secs)];
        }
        Step::Edit {
            pick,
            interval,
            down,
            paused,
        } => {
            let i = pick % schedules.max(1);
            let name = format!("s{i}");
            let secs = INTERVALS[interval % INTERVALS.len()];
            let before = down.unwrap_or(0);
            if down.is_some() {
                cluster.stop_operator().await;
            }
            if paused {
                cluster
                    .patch_schedule(&name, json!({"spec": {"paused": true}}))
                    .await;
            }
            cluster.advance(before).await;
            // managedFields times are whole seconds, as the real API server writes them; read
            // when the patch is sent (it settles after, and the clock may pass a second).
            let edited = cluster.clock.now();
            cluster
                .patch_schedule(
                    &name,
                    json!({"spec": {"trigger": {"interval": format!("{secs}s")}}}),
                )
                .await;
            let edited = edited - TimeDelta::nanoseconds(i64::from(edited.timestamp_subsec_nanos()));
            acts.triggers[i].push((edited, secs));
            cluster.advance(before).await;
            if down.is_some() {
                cluster.start_operator();
                cluster.settle().await;
            }
            if paused {
                cluster
                    .patch_schedule(&name, json!({"spec": {"paused": false}}))
                    .await;
            }
        }
        Step::DeleteTask { pick, gap } => {
            let i = pick % schedules.max(1);
            if !cases[i].task {
                return;
            }
            let name = format!("t{i}");
            let api: Api<Task> = Api::namespaced(cluster.client.clone(), NS);
            if api.delete(&name, &DeleteParams::background()).await.is_ok() {
                acts.deleted_tasks.push((name.clone(), cluster.clock.now()));
            }
            cluster.settle().await;
            cluster.advance(gap).await;
            create_task(cluster, &name).await;
        }
        Step::Freeze(secs) => {
            cluster.server.faults().delay(
                RequestMatch::any().client(OPERATOR),
                std::time::Duration::from_secs(secs),
            );
            cluster.advance(secs).await;
            cluster.server.faults().restore();
            cluster.advance(secs).await;
        }
        Step::Squat(pick) => {
            let name = format!("s{}", pick % schedules.max(1));
            let Some(next) = cluster
                .schedule(&name)
                .await
                .status
                .and_then(|s| s.next_fire_time)
            else {
                return;
            };
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {
                    "name": format!("{}-1", horolog::controller::schedule::run_name(&name, next)),
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "name": name, "uid": "5747e5e7-0000", "controller": true}],
                },
                "spec": {"containers": [{"name": "db", "image": "postgres"}]},
            }))
            .unwrap_or_else(|err| panic!("pod: {err}"));
            let api: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
            if let Ok(created) = api.create(&Default::default(), &pod).await {
                acts.squatted.push(created);
            }
            cluster.settle().await;
        }
        Step::Advance(secs) => cluster.advance(secs).await,
        Step::Kubelet { fail_mask } => {
            let unfinished: Vec<Pod> = cluster
                .pods()
                .await
                .into_iter()
                .filter(|pod| {
                    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                    pod.metadata.deletion_timestamp.is_none()
                        && !matches!(phase, Some("Succeeded" | "Failed"))
                })
                .collect();
            for (i, pod) in unfinished.iter().enumerate() {
                let code = if fail_mask & (1 << (i % 32)) != 0 { 1 } else { 0 };
                // The operator may have deleted it meanwhile (Replace): then it stays gone.
                cluster.try_pod_exits(&pod.name_any(), code, "done").await;
            }
        }
        Step::Restart { down } => {
            cluster.stop_operator().await;
            cluster.advance(down).await;
            cluster.start_operator();
            cluster.settle().await;
        }
        Step::Crash { after, window, down } => {
            cluster.server.faults().refuse_after(after.matching());
            cluster.advance(window).await;
            cluster.kill_operator().await;
            cluster.server.faults().restore();
            cluster.advance(down).await;
            cluster.start_operator();
            cluster.settle().await;
        }
        Step::Outage(secs) => {
            cluster.server.faults().refuse_all();
            cluster.advance(secs).await;
            cluster.server.faults().restore();
            cluster.settle().await;
        }
        Step::DeleteSettled(pick) => delete_settled(cluster, pick).await,
        Step::DrainWhileDown { fail_mask, down } => {
            cluster.kill_operator().await;
            Box::pin(play(cluster, cases, &Step::Kubelet { fail_mask }, acts)).await;
            // The drain deletes the runs' Pods; a Pod someone else made (Squat) is theirs to
            // keep, so the check that the operator never deletes it stays meaningful.
            let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
            for pod in cluster.pods().await {
                let ours = pod.owner_references().iter().any(|o| o.kind == "JobRun");
                if ours {
                    let _ = pods.delete(&pod.name_any(), &DeleteParams::default()).await;
                }
            }
            cluster.advance(down).await;
            cluster.start_operator();
            cluster.settle().await;
        }
        Step::Pause { pick, secs } => {
            let name = format!("s{}", pick % schedules.max(1));
            cluster
                .patch_schedule(&name, json!({"spec": {"paused": true}}))
                .await;
            cluster.advance(secs).await;
            cluster
                .patch_schedule(&name, json!({"spec": {"paused": false}}))
                .await;
        }
    }
}

/// Deletes one finished JobRun that its Schedule has settled: counted (not in
/// `status.active`) and covered by the cursor it persisted.
async fn delete_settled(cluster: &Cluster, pick: usize) {
    let schedules: Api<Schedule> = Api::namespaced(cluster.client.clone(), NS);
    let Ok(schedules) = schedules.list(&ListParams::default()).await else {
        return;
    };
    let settled: Vec<JobRun> = cluster
        .runs()
        .await
        .into_iter()
        .filter(|run| {
            let Some(status) = schedules
                .items
                .iter()
                .find(|s| Some(s.name_any()) == run.spec.schedule_name)
                .and_then(|s| s.status.as_ref())
            else {
                return false;
            };
            run.is_finished()
                && !status.active.iter().any(|a| a.name == run.name_any())
                && status.cursor.is_some_and(|cursor| run.fire_time() <= cursor)
        })
        .collect();
    if settled.is_empty() {
        return;
    }
    let run = &settled[pick % settled.len()];
    let api: Api<JobRun> = Api::namespaced(cluster.client.clone(), NS);
    let _ = api.delete(&run.name_any(), &DeleteParams::default()).await;
    cluster.settle().await;
}

/// The fire times of an interval of `secs` from `created` up to `until`, inclusive.
fn grid(created: DateTime<Utc>, secs: i64, until: DateTime<Utc>) -> BTreeSet<DateTime<Utc>> {
    (0..)
        .map(|k| created + TimeDelta::seconds(k * secs))
        .take_while(|t| *t <= until)
        .collect()
}

/// Every Pod someone else made under one of our names is still there, never deleted nor
/// adopted, and no run counted it as its own attempt.
async fn check_squatted(cluster: &Cluster, squatted: &[Pod], runs: &[JobRun]) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    for pod in squatted {
        let name = pod.name_any();
        let now = api
            .get_opt(&name)
            .await
            .map_err(|err| format!("get {name}: {err}"))?
            .ok_or_else(|| format!("foreign Pod {name} was deleted"))?;
        if now.uid() != pod.uid() || now.metadata.deletion_timestamp.is_some() {
            return Err(format!("foreign Pod {name} was deleted or replaced"));
        }
        if now.owner_references() != pod.owner_references() || now.labels() != pod.labels() {
            return Err(format!("foreign Pod {name} was adopted: {:?}", now.metadata));
        }
        let run = name.trim_end_matches("-1");
        for run in runs.iter().filter(|r| r.name_any() == run) {
            if let Some(status) = &run.status
                && status.pod_name.as_deref() == Some(name.as_str())
                && status.reason.as_deref() != Some("NameConflict")
            {
                return Err(format!(
                    "run {} took the foreign Pod {name}: {status:?}",
                    run.name_any()
                ));
            }
        }
    }
    Ok(())
}

/// No run of a deleted Schedule got a Pod after the deletion, nor a run created before its
/// Task's deletion (a second's grace for the reconcile that was under way when it came).
fn check_deleted(acts: &Acts, witness: &Witness) -> Result<(), String> {
    for (task, at) in &acts.deleted_tasks {
        for (run, pod, created) in &witness.pod_times {
            let Some((_, run)) = witness.last.get(run) else {
                continue;
            };
            let made = run
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
                .unwrap_or_default();
            if run.task_name() == Some(task.as_str())
                && made < *at - TimeDelta::seconds(1)
                && *created > *at + TimeDelta::seconds(1)
            {
                return Err(format!(
                    "pod {pod} of run {}, made before Task {task} was deleted at {at}, was created at {created}",
                    run.name_any()
                ));
            }
        }
    }
    for (schedule, at) in &acts.deleted {
        for (run, pod, created) in &witness.pod_times {
            let owner = witness.last.get(run).map(|(owner, _)| owner);
            if owner == Some(schedule) && *created > *at + TimeDelta::seconds(1) {
                return Err(format!(
                    "pod {pod} of a run of Schedule {schedule}, deleted at {at}, was created at {created}"
                ));
            }
        }
    }
    Ok(())
}

/// The fire times of a Schedule created at `created` whose interval changed over time
/// (`triggers`: from when, which interval; the first from its creation) up to `until`: each
/// interval's grid (from the creation) from its edit, exclusive, to the next edit, inclusive.
/// Also the instants of the edits, where a cursor may stand.
fn fire_times(
    created: DateTime<Utc>,
    triggers: &[(DateTime<Utc>, i64)],
    until: DateTime<Utc>,
) -> (BTreeSet<DateTime<Utc>>, BTreeSet<DateTime<Utc>>) {
    let mut times = BTreeSet::new();
    for (i, (from, secs)) in triggers.iter().enumerate() {
        let to = triggers.get(i + 1).map_or(until, |(next, _)| (*next).min(until));
        times.extend(
            grid(created, *secs, to)
                .into_iter()
                .filter(|t| i == 0 || *t > *from),
        );
    }
    let edits = triggers.iter().skip(1).map(|(at, _)| *at).collect();
    (times, edits)
}

/// True when `run` was created before its fire time's second: staged ahead of it.
fn created_ahead(run: &JobRun) -> bool {
    run.metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.0.as_second() + 1, 0))
        .is_some_and(|created| created <= run.fire_time())
}

/// Checks the property for one Schedule; `Err` says how it fails.
fn check(
    schedule: &Schedule,
    triggers: &[(DateTime<Utc>, i64)],
    witness: &Witness,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let name = schedule.name_any();
    let created = schedule
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32))
        .unwrap_or_default();
    let status = schedule.status.clone().unwrap_or_default();
    // Handled within 2 s of falling due, however the history ended; the fire times up to the
    // cursor are the ones the property speaks of.
    let (must_be_handled, _) = fire_times(created, triggers, now - TimeDelta::seconds(2));
    let (due, edits) = fire_times(created, triggers, now);
    let Some(cursor) = status.cursor.filter(|c| due.contains(c) || edits.contains(c)) else {
        return Err(format!(
            "{name}: cursor {:?} is not a due fire time",
            status.cursor
        ));
    };
    if must_be_handled.last().is_some_and(|latest| *latest > cursor) {
        return Err(format!(
            "{name}: cursor {cursor}, but {:?} was due 2 s ago",
            must_be_handled.last()
        ));
    }
    let due: BTreeSet<_> = due.into_iter().filter(|t| *t <= cursor).collect();
    let uid = schedule.uid().unwrap_or_default();
    let runs: Vec<&JobRun> = witness
        .last
        .values()
        .filter(|(owner, _)| *owner == uid)
        .map(|(_, run)| run)
        .collect();
    // A run staged ahead of a fire time the cursor has not reached is no outcome yet.
    let runs: Vec<&JobRun> = runs
        .into_iter()
        .filter(|run| !(run.fire_time() > cursor && !run.is_finished() && created_ahead(run)))
        .collect();
    let mut fire_times = BTreeSet::new();
    for run in &runs {
        let key = (uid.clone(), run.name_any());
        let times = witness.created.get(&key).copied().unwrap_or(0);
        if times != 1 {
            return Err(format!(
                "{name}: JobRun {} was created {times} times",
                run.name_any()
            ));
        }
        if !due.contains(&run.fire_time()) {
            return Err(format!(
                "{name}: JobRun {} is not for a due fire time",
                run.name_any()
            ));
        }
        if !fire_times.insert(run.fire_time()) {
            return Err(format!("{name}: two JobRuns for {}", run.fire_time()));
        }
    }
    let settled_missed_runs = runs
        .iter()
        .filter(|run| {
            run.phase() == JobRunPhase::Missed && !status.active.iter().any(|a| a.name == run.name_any())
        })
        .count() as i64;
    let missed = status.missed_fire_times - settled_missed_runs;
    if missed < 0 {
        return Err(format!(
            "{name}: missedFireTimes {} counts fewer than the {settled_missed_runs} settled Missed runs",
            status.missed_fire_times
        ));
    }
    let outcomes = runs.len() as i64 + missed + status.coalesced_fire_times;
    if outcomes != due.len() as i64 {
        return Err(format!(
            "{name}: {} due fire times but {outcomes} outcomes ({} JobRuns, {missed} missed, {} coalesced)",
            due.len(),
            runs.len(),
            status.coalesced_fire_times
        ));
    }
    Ok(())
}

/// Runs one history; `stage_ahead` seconds (0: off) is the operator's `--stage-ahead`.
async fn history(cases: &[ScheduleCase], steps: &[Step], stage_ahead: u64) -> Result<(), String> {
    let mut cluster =
        Cluster::start_with(|config| config.stage_ahead = std::time::Duration::from_secs(stage_ahead)).await;
    let witness = witness(&cluster);
    let mut acts = Acts::default();
    for (i, case) in cases.iter().enumerate() {
        if case.task {
            create_task(&cluster, &format!("t{i}")).await;
        }
        cluster.apply(build(&format!("s{i}"), case)).await;
        let created = cluster
            .schedule(&format!("s{i}"))
            .await
            .created_at()
            .unwrap_or_default();
        acts.triggers.push(vec![(created, case.interval_secs)]);
    }
    for step in steps {
        play(&mut cluster, cases, step, &mut acts).await;
    }
    // The end: everything up, and time for the operator to handle what is due (it promises
    // to within 2 s of the API server's return).
    cluster.server.faults().restore();
    if !cluster.operator_running() {
        cluster.start_operator();
    }
    cluster.advance(3).await;
    let now = cluster.clock.now();
    cluster.stop_operator().await;
    cluster.settle().await;
    let runs: Vec<JobRun> = witness
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last
        .values()
        .map(|(_, run)| run.clone())
        .collect();
    check_squatted(&cluster, &acts.squatted, &runs).await?;
    {
        let seen = witness.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(((_, pod), times)) = seen.pods_created.iter().find(|(_, times)| **times > 1) {
            return Err(format!("pod {pod} (one attempt) was created {times} times"));
        }
        check_deleted(&acts, &seen)?;
    }
    let stuck: Vec<String> = cluster
        .pods()
        .await
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_some())
        .map(|pod| pod.name_any())
        .collect();
    if !stuck.is_empty() {
        return Err(format!("pods left Terminating: {stuck:?}"));
    }
    for (i, triggers) in acts.triggers.iter().enumerate() {
        let schedule = cluster.schedule(&format!("s{i}")).await;
        check(
            &schedule,
            triggers,
            &witness.lock().unwrap_or_else(|p| p.into_inner()),
            now,
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_fire_time_is_exactly_one_run_miss_or_coalesced_fire_time(
        cases in prop::collection::vec(schedule_case(), 1..4),
        steps in prop::collection::vec(step(), 1..10),
        stage_ahead in stage_ahead(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        runtime.block_on(history(&cases, &steps, stage_ahead)).map_err(TestCaseError::fail)?;
    }

    /// The same promise while Pods someone else made hold some of the names of our runs'
    /// first attempts; those Pods are never adopted nor deleted.
    #[test]
    fn foreign_pods_under_our_names_are_never_adopted_nor_deleted(
        cases in prop::collection::vec(schedule_case(), 1..3),
        steps in prop::collection::vec(step_with_squats(), 1..10),
        stage_ahead in stage_ahead(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        runtime.block_on(history(&cases, &steps, stage_ahead)).map_err(TestCaseError::fail)?;
    }
}
