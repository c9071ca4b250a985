//! The reconcilers — Schedule (fires JobRuns), JobRun (runs Pods), Task, Backfill — and how
//! they are wired to the API server.
//!
//! Wiring: one watch per kind — Schedules, JobRuns, Pods labelled `horolog.dev/jobrun`,
//! Tasks, Backfills — shared by every reconciler. Each watch event is filed in the indexes
//! and applied to its store *before* it is turned into reconcile requests, so a reconcile
//! always reads caches at least as new as the event that triggered it:
//!
//! - a Schedule event reconciles that Schedule, and its runs that have not started (a raised
//!   limit or a changed policy may let them start);
//! - a JobRun event reconciles that JobRun, its Schedule (settling, history), and its
//!   siblings that have not finished (a slot may have freed, or a newer run replaces them);
//! - a Pod event reconciles its JobRun;
//! - a Task event reconciles the Task, its Schedules (one waiting for a missing Task starts
//!   firing) and its runs that have not started;
//! - a Backfill event reconciles the Backfill; a Schedule event, the Backfills that name it;
//!   a JobRun event, the Backfill that created it and those whose range holds its fire time.
//!
//! (kube-runtime's `Controller` would give each controller its own watch of JobRuns, and the
//! Schedule reconciler could then read a JobRun store older than the event it reacts to; the
//! stable [`applier`] with our own queues avoids that.)

mod admission;
pub mod attempt;
pub mod backfill;
mod context;
mod error;
pub mod events;
pub mod index;
pub mod jobrun;
mod recovery;
pub mod schedule;
pub mod status;
pub mod task;
pub mod trim;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{FutureExt, Stream, StreamExt, TryStreamExt, future};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Config as ApplierConfig, applier};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{info, warn};

pub use context::{Context, Observer, ScheduleState, Stores};
pub use error::{Error, ErrorKind, retry_delay};
pub use events::EventPolicy;
pub use status::status_diff;

use crate::api::{Backfill, Duration as ApiDuration, Executor, JOBRUN_LABEL, JobRun, Schedule, Task};
use crate::clock::Clock;
use error::{is_already_exists, is_not_found};

/// The field manager and event reporter name of the operator.
pub const MANAGER: &str = "horolog";

/// How soon a reconcile skipped because the cache is behind our own write looks again,
/// should the write's watch event not come.
pub(crate) const BEHIND_OWN_WRITE_RECHECK: Duration = Duration::from_secs(5);

/// Operator-wide defaults for what Schedules and Tasks leave unset (APScheduler's
/// TaskDefaults). Precedence: Schedule > Task > these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// `--default-misfire-grace-time`.
    pub misfire_grace_time: Option<ApiDuration>,
    /// `--default-max-running-jobs`.
    pub max_running_jobs: Option<i32>,
    /// `--default-executor`.
    pub executor: Executor,
}

/// How the controllers run.
#[derive(Clone)]
pub struct ControllerConfig {
    /// The namespace to watch; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// How many reconciles of each kind run at once.
    pub concurrency: u16,
    /// The catch-up bound of the planner.
    pub catch_up: horolog_core::plan::CatchUp,
    /// What Schedules and Tasks leave unset.
    pub defaults: Defaults,
    /// Which Events are published.
    pub events: EventPolicy,
    /// How long a Schedule's status may wait to record runs that succeeded
    /// (`--schedule-status-delay`), so that one write per fire carries them.
    pub status_delay: Duration,
    /// How long a Pod must have run before its run is reported Running.
    pub running_report_delay: TimeDelta,
    /// Run `executor: Job` runs as batch/v1 Jobs (`--job-executor`).
    pub job_executor: bool,
    /// The event reporter instance (e.g. the pod name); `None` uses the manager name.
    pub instance: Option<String>,
    /// Metrics hooks.
    pub observer: Option<Arc<dyn Observer>>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            concurrency: 4,
            catch_up: horolog_core::plan::CatchUp::default(),
            defaults: Defaults::default(),
            events: EventPolicy::default(),
            status_delay: Duration::from_secs(60),
            running_report_delay: jobrun::RUNNING_REPORT_DELAY,
            job_executor: false,
            instance: None,
            observer: None,
        }
    }
}

impl ControllerConfig {
    /// Watches only `namespace`.
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
}

impl std::fmt::Debug for ControllerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerConfig")
            .field("namespace", &self.namespace)
            .field("concurrency", &self.concurrency)
            .field("catch_up", &self.catch_up)
            .field("defaults", &self.defaults)
            .field("events", &self.events)
            .field("status_delay", &self.status_delay)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The watch backoff: a watch that fails retries after 200 ms, doubling to at most 2 s, so
/// the caches follow the API server within seconds of an outage's end (kube's default waits
/// up to 30 s).
struct WatchBackoff(Duration);

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff(Duration::from_millis(200))
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        *self = WatchBackoff::default();
    }
}

fn api_for<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs every reconciler until `shutdown` completes. Fails only when the CRDs are missing.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let namespace = config.namespace.clone();
    let schedules_api: Api<Schedule> = api_for(&client, &namespace);
    let jobruns_api: Api<JobRun> = api_for(&client, &namespace);
    let pods_api: Api<Pod> = api_for(&client, &namespace);
    let tasks_api: Api<Task> = api_for(&client, &namespace);
    let backfills_api: Api<Backfill> = api_for(&client, &namespace);
    // Fail fast with a clear message instead of retrying watches of a missing resource forever.
    for result in [
        schedules_api
            .list_metadata(&ListParams::default().limit(1))
            .await
            .map(drop),
        jobruns_api
            .list_metadata(&ListParams::default().limit(1))
            .await
            .map(drop),
        tasks_api
            .list_metadata(&ListParams::default().limit(1))
            .await
            .map(drop),
        backfills_api
            .list_metadata(&ListParams::default().limit(1))
            .await
            .map(drop),
    ] {
        result.map_err(Error::CrdsMissing)?;
    }

    let (schedule_store, schedule_writer) = reflector::store::<Schedule>();
    let (jobrun_store, jobrun_writer) = reflector::store::<JobRun>();
    let (task_store, task_writer) = reflector::store::<Task>();
    let (backfill_store, backfill_writer) = reflector::store::<Backfill>();
    let queues = Queues::default();
    if let Some(observer) = &config.observer {
        observer.caches(jobrun_store.clone());
    }
    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance: config.instance.clone(),
    };
    let applier_config = ApplierConfig::default().concurrency(config.concurrency);
    let stores = Stores {
        schedules: schedule_store.clone(),
        jobruns: jobrun_store.clone(),
        tasks: task_store.clone(),
        backfills: backfill_store.clone(),
    };
    let ctx = Arc::new(Context::new(client.clone(), reporter, clock, config, stores));

    let watch_config = watcher::Config::default();
    let schedule_watch = {
        let ctx = ctx.clone();
        watcher(schedules_api, watch_config.clone())
            .modify(trim::trim_schedule)
            .inspect_ok(move |event| {
                if let watcher::Event::Delete(schedule) = event {
                    ctx.forget(&schedule.namespace().unwrap_or_default(), &schedule.name_any());
                }
            })
    };
    let schedule_events = reflector::reflector(schedule_writer, schedule_watch)
        .backoff(WatchBackoff::default())
        .touched_objects();
    let jobrun_watch = {
        let (ctx, store) = (ctx.clone(), jobrun_store.clone());
        watcher(jobruns_api, watch_config.clone())
            .modify(trim::trim_jobrun)
            .inspect_ok(move |event| ctx.runs.apply(event, &store))
    };
    let jobrun_events = reflector::reflector(jobrun_writer, jobrun_watch)
        .backoff(WatchBackoff::default())
        .touched_objects();
    let pod_events = {
        let ctx = ctx.clone();
        watcher(pods_api, watch_config.clone().labels(JOBRUN_LABEL))
            .inspect_ok(move |event| ctx.pods.apply(event))
            .backoff(WatchBackoff::default())
            .touched_objects()
    };
    let task_events = reflector::reflector(task_writer, watcher(tasks_api, watch_config.clone()))
        .backoff(WatchBackoff::default())
        .touched_objects();
    let backfill_events = reflector::reflector(backfill_writer, watcher(backfills_api, watch_config))
        .backoff(WatchBackoff::default())
        .touched_objects();

    let schedules_in = drive(schedule_events, "Schedule", {
        let (queues, ctx) = (queues.clone(), ctx.clone());
        move |schedule: Schedule| {
            send(&queues.schedules, ObjectRef::from_obj(&schedule));
            for run in ctx.runs_of(&schedule).iter().filter(|run| !run.is_finished()) {
                send(&queues.jobruns, ObjectRef::from_obj(run.as_ref()));
            }
            for backfill in backfill::of_schedule(&ctx, &schedule) {
                send(&queues.backfills, backfill);
            }
        }
    });
    let jobruns_in = drive(jobrun_events, "JobRun", {
        let (queues, ctx) = (queues.clone(), ctx.clone());
        move |run: JobRun| wake_for_run(&ctx, &queues, &run)
    });
    let pods_in = drive(pod_events, "Pod", {
        let queues = queues.clone();
        move |pod: Pod| {
            for owner in pod.owner_references().iter().filter(|o| o.kind == "JobRun") {
                if let Some(namespace) = pod.namespace() {
                    send(&queues.jobruns, ObjectRef::new(&owner.name).within(&namespace));
                }
            }
        }
    });
    let tasks_in = drive(task_events, "Task", {
        let (queues, ctx) = (queues.clone(), ctx.clone());
        move |task: Task| {
            let namespace = task.namespace().unwrap_or_default();
            send(&queues.tasks, ObjectRef::from_obj(&task));
            for schedule in ctx.stores.schedules.state().iter().filter(|s| {
                s.namespace().as_deref() == Some(namespace.as_str())
                    && s.task_name() == Some(task.name_any().as_str())
            }) {
                send(&queues.schedules, ObjectRef::from_obj(schedule.as_ref()));
            }
            for run in ctx
                .runs_of_task(&namespace, &task.name_any())
                .iter()
                .filter(|r| !r.is_finished())
            {
                send(&queues.jobruns, ObjectRef::from_obj(run.as_ref()));
            }
        }
    });
    let backfills_in = drive(backfill_events, "Backfill", {
        let queues = queues.clone();
        move |backfill: Backfill| send(&queues.backfills, ObjectRef::from_obj(&backfill))
    });
    // The Job executor's Jobs, watched only when it is enabled (it needs RBAC on batch jobs).
    let jobs_in = {
        let (queues, ctx) = (queues.clone(), ctx.clone());
        let enabled = ctx.config.job_executor;
        let jobs_api: Api<Job> = api_for(&client, &namespace);
        async move {
            if !enabled {
                return;
            }
            let events = {
                let ctx = ctx.clone();
                watcher(jobs_api, watcher::Config::default().labels(JOBRUN_LABEL))
                    .inspect_ok(move |event| ctx.jobs.apply(event))
                    .backoff(WatchBackoff::default())
                    .touched_objects()
            };
            drive(events, "Job", move |job: Job| {
                for owner in job.owner_references().iter().filter(|o| o.kind == "JobRun") {
                    if let Some(namespace) = job.namespace() {
                        send(&queues.jobruns, ObjectRef::new(&owner.name).within(&namespace));
                    }
                }
            })
            .await;
        }
    };
    let recovery = {
        let (queues, ctx) = (queues.clone(), ctx.clone());
        async move {
            ctx.retries
                .watch(
                    ctx.client.clone(),
                    ctx.config.namespace.clone(),
                    |(kind, namespace, name)| match kind.as_str() {
                        "Schedule" => send(&queues.schedules, ObjectRef::new(&name).within(&namespace)),
                        "JobRun" => send(&queues.jobruns, ObjectRef::new(&name).within(&namespace)),
                        "Task" => send(&queues.tasks, ObjectRef::new(&name).within(&namespace)),
                        "Backfill" => send(&queues.backfills, ObjectRef::new(&name).within(&namespace)),
                        _ => {}
                    },
                )
                .await;
        }
    };

    let (schedule_rx, jobrun_rx, task_rx, backfill_rx) = queues.receivers();
    let schedule_applier = applier(
        |schedule, ctx| {
            let key = status::key_of(schedule.as_ref());
            timed("schedule", key, schedule::reconcile(schedule, ctx.clone()), ctx).boxed()
        },
        error_policy,
        ctx.clone(),
        schedule_store.clone(),
        schedule_rx.map(Ok::<_, Infallible>),
        applier_config.clone(),
    )
    .for_each(|result| async move { log_applier_result(result) });
    let jobrun_applier = applier(
        |run, ctx| {
            let key = status::key_of(run.as_ref());
            timed("jobrun", key, jobrun::reconcile(run, ctx.clone()), ctx).boxed()
        },
        error_policy,
        ctx.clone(),
        jobrun_store.clone(),
        jobrun_rx.map(Ok::<_, Infallible>),
        applier_config.clone(),
    )
    .for_each(|result| async move { log_applier_result(result) });
    let task_applier = applier(
        |task, ctx| {
            let key = status::key_of(task.as_ref());
            timed("task", key, task::reconcile(task, ctx.clone()), ctx).boxed()
        },
        error_policy,
        ctx.clone(),
        task_store.clone(),
        task_rx.map(Ok::<_, Infallible>),
        applier_config.clone(),
    )
    .for_each(|result| async move { log_applier_result(result) });
    let backfill_applier = applier(
        |backfill, ctx| {
            let key = status::key_of(backfill.as_ref());
            timed("backfill", key, backfill::reconcile(backfill, ctx.clone()), ctx).boxed()
        },
        error_policy,
        ctx.clone(),
        backfill_store.clone(),
        backfill_rx.map(Ok::<_, Infallible>),
        applier_config,
    )
    .for_each(|result| async move { log_applier_result(result) });
    drop(queues);

    let appliers = {
        let ctx = ctx.clone();
        async move {
            // A Schedule reconciled before the JobRun and Pod caches are filled would see no runs.
            let ready = future::join4(
                schedule_store.wait_until_ready(),
                jobrun_store.wait_until_ready(),
                task_store.wait_until_ready(),
                backfill_store.wait_until_ready(),
            )
            .await;
            ctx.pods.wait_until_ready().await;
            if ready.0.is_err() || ready.1.is_err() || ready.2.is_err() || ready.3.is_err() {
                return;
            }
            info!("caches are filled; reconciling");
            future::join4(
                Box::pin(schedule_applier),
                Box::pin(jobrun_applier),
                Box::pin(task_applier),
                Box::pin(backfill_applier),
            )
            .await;
        }
    };
    // Each part lives on the heap: together they are too large for a test thread's stack.
    let watches = future::join(
        future::join5(
            Box::pin(schedules_in),
            Box::pin(jobruns_in),
            Box::pin(pods_in),
            Box::pin(tasks_in),
            Box::pin(backfills_in),
        ),
        Box::pin(jobs_in),
    );
    let everything = Box::pin(future::join3(watches, Box::pin(appliers), Box::pin(recovery)));
    let shutdown = shutdown.fuse();
    futures::pin_mut!(shutdown);
    future::select(everything, shutdown).await;
    info!("controllers stopped");
    Ok(())
}

/// A JobRun changed: reconcile it, its Schedule, and its siblings (in its Schedule and its
/// Task) that have not finished — a slot may have freed, or a newer run may replace them.
fn wake_for_run(ctx: &Context, queues: &Queues, run: &JobRun) {
    send(&queues.jobruns, ObjectRef::from_obj(run));
    let Some(namespace) = run.namespace() else {
        return;
    };
    let mut siblings = Vec::new();
    if let Some(schedule) = &run.spec.schedule_name {
        send(&queues.schedules, ObjectRef::new(schedule).within(&namespace));
        siblings.extend(ctx.runs_named(&namespace, schedule));
    }
    if let Some(task) = run.task_name() {
        send(&queues.tasks, ObjectRef::new(task).within(&namespace));
        siblings.extend(ctx.runs_of_task(&namespace, task));
    }
    for backfill in backfill::woken_by(ctx, run) {
        send(&queues.backfills, backfill);
    }
    for sibling in siblings
        .iter()
        .filter(|s| !s.is_finished() && s.name_any() != run.name_any())
    {
        send(&queues.jobruns, ObjectRef::from_obj(sibling.as_ref()));
    }
}

/// The reconcile requests of each kind, fed by the watches and the recovery watch.
#[derive(Clone)]
struct Queues {
    schedules: UnboundedSender<ObjectRef<Schedule>>,
    jobruns: UnboundedSender<ObjectRef<JobRun>>,
    tasks: UnboundedSender<ObjectRef<Task>>,
    backfills: UnboundedSender<ObjectRef<Backfill>>,
    receivers: Arc<std::sync::Mutex<Option<Receivers>>>,
}

type Receivers = (
    futures::channel::mpsc::UnboundedReceiver<ObjectRef<Schedule>>,
    futures::channel::mpsc::UnboundedReceiver<ObjectRef<JobRun>>,
    futures::channel::mpsc::UnboundedReceiver<ObjectRef<Task>>,
    futures::channel::mpsc::UnboundedReceiver<ObjectRef<Backfill>>,
);

impl Default for Queues {
    fn default() -> Self {
        let (schedules, schedule_rx) = unbounded();
        let (jobruns, jobrun_rx) = unbounded();
        let (tasks, task_rx) = unbounded();
        let (backfills, backfill_rx) = unbounded();
        Queues {
            schedules,
            jobruns,
            tasks,
            backfills,
            receivers: Arc::new(std::sync::Mutex::new(Some((
                schedule_rx,
                jobrun_rx,
                task_rx,
                backfill_rx,
            )))),
        }
    }
}

impl Queues {
    /// The receiving ends (once).
    fn receivers(&self) -> Receivers {
        let taken = self
            .receivers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        taken.unwrap_or_else(|| {
            let (_, a) = unbounded();
            let (_, b) = unbounded();
            let (_, c) = unbounded();
            let (_, d) = unbounded();
            (a, b, c, d)
        })
    }
}

/// Times a reconcile of the object `key`, counts it, and forgets the object's failures when
/// it succeeds.
async fn timed(
    controller: &'static str,
    key: String,
    reconcile: impl Future<Output = Result<Action, Error>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile.await;
    if let Some(observer) = ctx.observer() {
        observer.reconciled(
            controller,
            started.elapsed(),
            result.as_ref().err().map(|e| e.kind().as_str()),
        );
    }
    if result.is_ok() {
        ctx.retries.succeeded(&key);
    }
    result
}

fn error_policy<K: Resource<DynamicType = ()>>(object: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = status::key_of(object.as_ref());
    let failures = ctx.retries.failed(&key);
    let kind = err.kind();
    if kind == ErrorKind::Unavailable {
        ctx.retries.park((
            K::kind(&()).into_owned(),
            object.namespace().unwrap_or_default(),
            object.name_any(),
        ));
    }
    let delay = retry_delay(kind, failures);
    warn!(object = %key, error = %err, kind = kind.as_str(), failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn send<K: Resource>(tx: &UnboundedSender<ObjectRef<K>>, object: ObjectRef<K>)
where
    K::DynamicType: Clone + Eq + std::hash::Hash,
{
    // The receiver lives as long as the appliers; a closed channel means we are shutting down.
    let _ = tx.unbounded_send(object);
}

/// Drives a watch: every object it touches goes to `on_object`; watch errors are logged
/// (the watcher backs off and resumes by itself).
async fn drive<K>(
    events: impl Stream<Item = Result<K, watcher::Error>>,
    kind: &'static str,
    mut on_object: impl FnMut(K),
) {
    let events = events.into_stream();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(object) => on_object(object),
            Err(err) => warn!(kind, error = %err, "watch failed; retrying"),
        }
    }
}

fn log_applier_result<K, E1: std::fmt::Display, E2: std::fmt::Display>(
    result: Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<E1, E2>>,
) where
    K: Resource,
    K::DynamicType: std::fmt::Debug,
{
    match result {
        Ok(_) => {}
        Err(kube::runtime::controller::Error::ObjectNotFound(_)) => {}
        Err(err) => tracing::debug!(error = %err, "reconcile did not succeed"),
    }
}

/// Empty stores, for code that builds a [`Context`] by hand (benches, tests).
pub fn empty_stores() -> Stores {
    Stores {
        schedules: reflector::store().0,
        jobruns: reflector::store().0,
        tasks: reflector::store().0,
        backfills: reflector::store().0,
    }
}
