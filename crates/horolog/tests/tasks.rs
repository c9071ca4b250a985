//! Tasks: one job template and one concurrency limit shared by several Schedules, with
//! arguments per Schedule and precedence Schedule > Task > operator default. The real operator
//! on the in-memory API server, on tokio's paused clock.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use cluster::{Cluster, NS, OPERATOR};
use fixtures::*;
use horolog::api::{ConcurrencyPolicy, JobRunPhase, JobTemplate, Schedule, Task, TaskRef, TaskSpec};
use horolog_memserver::RequestMatch;
use k8s_openapi::api::core::v1::{EnvVar, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use JobRunPhase::*;

/// A Task running busybox, with the given shared limit.
fn task(name: &str, max_running: Option<i32>) -> Task {
    let template = every("unused", "1m").spec.job_template.unwrap_or_default();
    Task::new(
        name,
        TaskSpec {
            job_template: JobTemplate {
                metadata: None,
                spec: template.spec,
            },
            max_running_jobs: max_running,
            concurrency_policy: None,
            max_waiting_runs: None,
            misfire_grace_time: None,
            calendar_refs: Vec::new(),
        },
    )
}

/// A Schedule every `interval` that runs Task `task`.
fn using(name: &str, interval: &str, task: &str) -> Schedule {
    let mut schedule = every(name, interval);
    schedule.spec.job_template = None;
    schedule.spec.task_ref = Some(TaskRef { name: task.into() });
    schedule
}

async fn create_task(cluster: &Cluster, task: Task) {
    let api: Api<Task> = Api::namespaced(cluster.client.clone(), NS);
    api.create(&PostParams::default(), &task)
        .await
        .unwrap_or_else(|err| panic!("create task: {err}"));
    cluster.settle().await;
}

async fn task_status(cluster: &Cluster, name: &str) -> horolog::api::TaskStatus {
    let api: Api<Task> = Api::namespaced(cluster.client.clone(), NS);
    api.get(name)
        .await
        .ok()
        .and_then(|t| t.status)
        .unwrap_or_default()
}

async fn pod(cluster: &Cluster, name: &str) -> Pod {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    api.get(name)
        .await
        .unwrap_or_else(|err| panic!("get pod {name}: {err}"))
}

fn ready_reason(schedule: &Schedule) -> Option<String> {
    schedule.condition("Ready").map(|c| c.reason.clone())
}

#[tokio::test(start_paused = true)]
async fn a_tasks_limit_is_shared_by_all_its_schedules_oldest_fire_time_first() {
    let cluster = Cluster::start().await;
    create_task(&cluster, task("report", Some(1))).await;
    cluster.apply(using("a", "1m", "report")).await;
    cluster.advance(30).await;
    cluster.apply(using("b", "1m", "report")).await;
    assert_eq!(cluster.phases("a").await, vec![Scheduled]);
    assert_eq!(
        cluster.phases("b").await,
        vec![Waiting],
        "the Task's one slot is taken by a"
    );
    assert_eq!(cluster.pod_names().await, vec!["a-1767225600-1"]);
    cluster.pod_running("a-1767225600-1").await;
    cluster.advance(31).await;
    assert_eq!(cluster.phases("a").await, vec![Running, Waiting]);
    assert_eq!(task_status(&cluster, "report").await.running_jobs, 1);
    assert_eq!(task_status(&cluster, "report").await.schedules, 2);
    // kstatus conditions: Ready True, Stalled False, each with observedGeneration.
    let conditions: Vec<_> = task_status(&cluster, "report")
        .await
        .conditions
        .into_iter()
        .map(|c| (c.type_, c.status, c.observed_generation))
        .collect();
    assert_eq!(
        conditions,
        [
            ("Ready".to_string(), "True".to_string(), Some(1)),
            ("Stalled".to_string(), "False".to_string(), Some(1))
        ]
    );
    cluster.pod_exits("a-1767225600-1", 0, "").await;
    // b's run (fire time 30 s) is older than a's second run (60 s): it goes first.
    assert_eq!(
        cluster.pod_names().await,
        vec!["a-1767225600-1", "b-1767225630-1"]
    );
    assert_eq!(cluster.phases("a").await, vec![Succeeded, Waiting]);
}

#[tokio::test(start_paused = true)]
async fn two_schedules_of_a_task_firing_in_the_same_instant_never_both_take_its_one_slot() {
    let cluster = Cluster::start().await;
    // The operator's JobRun cache lags its own creates, as over HTTP to a busy API server: a
    // Schedule's reconcile does not see the run another one created a moment before.
    cluster.server.faults().lag_watches(
        RequestMatch::any()
            .client(OPERATOR)
            .verb("watch")
            .resource("jobruns"),
        std::time::Duration::from_millis(200),
    );
    cluster.server.faults().drop_watches();
    // Skip: a run that finds the slot taken ends at once, so every minute the slot is free
    // and all six new runs ask for it in the same instant.
    let mut skipping = task("report", Some(1));
    skipping.spec.concurrency_policy = Some(ConcurrencyPolicy::Skip);
    create_task(&cluster, skipping).await;
    let names: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    for name in &names {
        cluster.apply(using(name, "1m", "report")).await;
    }
    for minute in 1..=3 {
        // Every Schedule fires in the same instant; the one running Pod finishes first.
        for pod in cluster.pod_names().await {
            cluster.try_pod_exits(&pod, 0, "").await;
        }
        cluster.advance_to(at(60 * minute)).await;
        let live: Vec<String> = cluster
            .pods()
            .await
            .into_iter()
            .filter(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
            })
            .map(|p| p.metadata.name.unwrap_or_default())
            .collect();
        assert!(live.len() <= 1, "minute {minute}: {live:?} ran at once");
    }
}

#[tokio::test(start_paused = true)]
async fn a_schedule_of_a_task_adds_its_env_and_replaces_the_first_containers_args() {
    let cluster = Cluster::start().await;
    create_task(&cluster, task("report", None)).await;
    let mut schedule = using("incoming", "1h", "report");
    schedule.spec.env = vec![EnvVar {
        name: "SOURCE".into(),
        value: Some("s3://incoming".into()),
        value_from: None,
    }];
    schedule.spec.args = Some(vec!["--batch-size".into(), "1000".into()]);
    cluster.apply(schedule).await;
    let pod = pod(&cluster, "incoming-1767225600-1").await;
    let container = pod.spec.unwrap_or_default().containers.remove(0);
    let env: Vec<(String, String)> = container
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.name, v.value.unwrap_or_default()))
        .collect();
    assert!(
        env.contains(&("SOURCE".into(), "s3://incoming".into())),
        "{env:?}"
    );
    assert!(
        env.contains(&("HOROLOG_SCHEDULE".into(), "incoming".into())),
        "{env:?}"
    );
    assert_eq!(container.args, Some(vec!["--batch-size".into(), "1000".into()]));
    assert_eq!(
        pod.metadata
            .labels
            .unwrap_or_default()
            .get("horolog.dev/task")
            .map(String::as_str),
        Some("report")
    );
}

#[tokio::test(start_paused = true)]
async fn a_schedule_whose_task_is_missing_waits_and_fires_when_it_appears() {
    let cluster = Cluster::start().await;
    cluster.apply(using("early", "1h", "later")).await;
    assert!(cluster.runs_of("early").await.is_empty());
    let schedule = cluster.schedule("early").await;
    assert_eq!(ready_reason(&schedule), Some("TaskNotFound".into()));
    assert!(
        cluster
            .reasons_of("early")
            .await
            .contains(&"TaskNotFound".to_string())
    );
    cluster.advance(10).await;
    create_task(&cluster, task("later", None)).await;
    assert_eq!(
        ready_reason(&cluster.schedule("early").await),
        Some("Scheduled".into())
    );
    assert_eq!(
        cluster.fire_secs("early").await,
        vec![0],
        "the fire time that passed meanwhile"
    );
    assert_eq!(cluster.pod_names().await, vec!["early-1767225600-1"]);
}

#[tokio::test(start_paused = true)]
async fn deleting_a_task_leaves_its_schedules_not_ready_but_never_deletes_them() {
    let cluster = Cluster::start().await;
    create_task(&cluster, task("gone", None)).await;
    cluster.apply(using("orphan", "1m", "gone")).await;
    let api: Api<Task> = Api::namespaced(cluster.client.clone(), NS);
    api.delete("gone", &DeleteParams::default())
        .await
        .unwrap_or_else(|err| panic!("delete task: {err}"));
    cluster.advance(60).await;
    let schedule = cluster.schedule("orphan").await;
    assert_eq!(ready_reason(&schedule), Some("TaskNotFound".into()));
    assert_eq!(
        cluster.fire_secs("orphan").await,
        vec![0],
        "nothing fires without it"
    );
}

#[tokio::test(start_paused = true)]
async fn the_schedules_settings_win_over_the_tasks_which_win_over_the_operators() {
    let cluster = Cluster::start_with(|config| {
        config.defaults.misfire_grace_time = Some("1h".parse().unwrap_or_default());
    })
    .await;
    let mut shared = task("defaults", None);
    shared.spec.misfire_grace_time = Some("10m".parse().unwrap_or_default());
    create_task(&cluster, shared).await;
    cluster.apply(using("task-grace", "1h", "defaults")).await;
    let mut own = using("own-grace", "1h", "defaults");
    own.spec.misfire_grace_time = Some("30s".parse().unwrap_or_default());
    cluster.apply(own).await;
    cluster.apply(every("operator-grace", "1h")).await;
    let deadline = |run: Option<horolog::api::JobRun>| run.and_then(|r| r.spec.start_deadline);
    assert_eq!(
        deadline(cluster.run("task-grace-1767225600").await),
        Some(at(600))
    );
    assert_eq!(deadline(cluster.run("own-grace-1767225600").await), Some(at(30)));
    assert_eq!(
        deadline(cluster.run("operator-grace-1767225600").await),
        Some(at(3600))
    );
}

#[tokio::test(start_paused = true)]
async fn the_tasks_policy_applies_to_a_schedule_that_sets_none() {
    let cluster = Cluster::start().await;
    let mut skipping = task("skipper", None);
    skipping.spec.concurrency_policy = Some(ConcurrencyPolicy::Skip);
    create_task(&cluster, skipping).await;
    let mut schedule = using("s", "1m", "skipper").history(10, 10);
    schedule.spec.max_running_jobs = Some(1);
    cluster.apply(schedule).await;
    cluster.pod_running("s-1767225600-1").await;
    cluster.advance(60).await;
    assert_eq!(cluster.phases("s").await, vec![Running, Skipped]);
}

#[tokio::test(start_paused = true)]
async fn an_edit_of_the_task_reaches_runs_that_have_not_started() {
    let cluster = Cluster::start().await;
    create_task(&cluster, task("evolving", Some(1))).await;
    cluster.apply(using("e", "1m", "evolving")).await;
    cluster.advance(60).await;
    assert_eq!(cluster.phases("e").await, vec![Scheduled, Waiting]);
    let api: Api<Task> = Api::namespaced(cluster.client.clone(), NS);
    api.patch(
        "evolving",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "main", "image": "busybox:2"}]
        }}}}}})),
    )
    .await
    .unwrap_or_else(|err| panic!("patch task: {err}"));
    cluster.settle().await;
    cluster.pod_exits("e-1767225600-1", 0, "").await;
    let started = pod(&cluster, "e-1767225660-1").await;
    let image = started.spec.unwrap_or_default().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("busybox:2"));
    assert_eq!(
        cluster.runs_of("e").await[1].name_any(),
        "e-1767225660",
        "the run waited, then started with the Task as it is now"
    );
}

#[tokio::test(start_paused = true)]
async fn deleting_a_task_cancels_its_waiting_runs_instead_of_starting_them() {
    let cluster = Cluster::start().await;
    let mut shared = task("shared", Some(1));
    shared.spec.concurrency_policy = Some(ConcurrencyPolicy::Wait);
    create_task(&cluster, shared).await;
    cluster.apply(using("uses", "1m", "shared").history(10, 10)).await;
    cluster.advance(60).await;
    cluster.advance(60).await;
    assert_eq!(cluster.phases("uses").await, vec![Scheduled, Waiting, Waiting]);
    let api: Api<Task> = Api::namespaced(cluster.client.clone(), NS);
    api.delete("shared", &DeleteParams::default())
        .await
        .unwrap_or_else(|err| panic!("delete task: {err}"));
    cluster.advance(1).await;
    assert_eq!(
        cluster.phases("uses").await,
        vec![Scheduled, Cancelled, Cancelled]
    );
    let runs = cluster.runs_of("uses").await;
    let reason = runs[2].status.as_ref().and_then(|s| s.reason.clone());
    assert_eq!(reason.as_deref(), Some("TaskDeleted"));
    assert_eq!(
        cluster.pod_names().await,
        vec!["uses-1767225600-1"],
        "nothing else started"
    );
}

/// Many Schedules of one Task with `maxRunningJobs: 1`, firing every second on a runtime with
/// several threads, so reconciles really run at once (on one thread, admission's sync section
/// cannot be interleaved, and the race it guards against cannot happen). Both caches the pools
/// are read from lag (the JobRun watch, the Pod watch), by different amounts, so runs settle
/// and reservations end while other reconciles compute their verdicts. A stand-in kubelet
/// ends every Pod as soon as it sees it. Real time, a few seconds: the paused clock needs a
/// single thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_schedules_of_a_task_racing_for_its_one_slot_never_run_two_at_once() {
    use futures::StreamExt;
    use kube::api::{WatchEvent, WatchParams};

    let cluster = Cluster::start_with(|config| config.concurrency = 16).await;
    cluster.server.faults().lag_watches(
        RequestMatch::any()
            .client(OPERATOR)
            .verb("watch")
            .resource("jobruns"),
        std::time::Duration::from_millis(10),
    );
    cluster.server.faults().lag_watches(
        RequestMatch::any()
            .client(OPERATOR)
            .verb("watch")
            .resource("pods"),
        std::time::Duration::from_millis(2),
    );
    cluster.server.faults().drop_watches();
    // Every Pod's life as the API server orders it: the resourceVersion of its creation and
    // of the status write that ended it.
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    let mut events = api
        .watch(&WatchParams::default().timeout(120), "0")
        .await
        .unwrap_or_else(|err| panic!("watch pods: {err}"))
        .boxed();
    let lives = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        String,
        (u64, Option<u64>),
    >::new()));
    let recording = lives.clone();
    let recorder = tokio::spawn(async move {
        while let Some(Ok(event)) = events.next().await {
            let pod = match event {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) => pod,
                _ => continue,
            };
            let version: u64 = pod.resource_version().and_then(|v| v.parse().ok()).unwrap_or(0);
            let ended = matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            );
            let mut lives = recording.lock().unwrap_or_else(|p| p.into_inner());
            let life = lives.entry(pod.name_any()).or_insert((version, None));
            if ended && life.1.is_none() {
                life.1 = Some(version);
            }
        }
    });
    // Skip: every run that starts is one its Schedule has just created and starts in the same
    // reconcile (admitted with the runs it created, which the JobRun cache does not show yet),
    // and all six Schedules fire at the same whole seconds, racing for the one slot.
    let mut shared = task("report", Some(1));
    shared.spec.concurrency_policy = Some(ConcurrencyPolicy::Skip);
    create_task(&cluster, shared).await;
    for i in 0..6 {
        let mut schedule = using(&format!("s{i}"), "1s", "report");
        schedule.spec.trigger.start_time = Some(t0().fixed_offset());
        cluster.apply(schedule).await;
    }
    // The kubelet stand-in, for a few seconds: each Pod runs a few hundred milliseconds.
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < until {
        for pod in cluster.pods().await {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if !matches!(phase, Some("Succeeded" | "Failed")) {
                let _ = cluster.try_pod_exits(&pod.name_any(), 0, "").await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    recorder.abort();
    let lives = lives.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(lives.len() > 5, "the slot was handed on ({} pods)", lives.len());
    for (a, (a_created, a_ended)) in &lives {
        for (b, (b_created, _)) in &lives {
            let overlaps = a != b && a_created < b_created && a_ended.is_none_or(|end| *b_created < end);
            assert!(
                !overlaps,
                "{b} was created (version {b_created}) while {a} ran (versions {a_created}..{a_ended:?})"
            );
        }
    }
}
