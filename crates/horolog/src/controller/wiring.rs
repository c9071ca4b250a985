//! How the reconcilers are wired to the API server: one watch per kind, shared by every
//! reconciler, each event filed in the indexes and the stores *before* it is turned into
//! reconcile requests, so a reconcile always reads caches at least as new as the event that
//! triggered it; one queue and one applier per kind; the recovery watch.
//!
//! - a Schedule event reconciles that Schedule, its runs that have not finished (a raised
//!   limit or a changed policy may let them start) and the Backfills that name it;
//! - a JobRun event reconciles that JobRun, its Schedule (settling, history), its Task, its
//!   Backfill, and its siblings that have not finished (a slot may have freed, or a newer run
//!   replaces them);
//! - a Pod or Job event reconciles its JobRun;
//! - a Task event reconciles the Task, its Schedules (one waiting for a missing Task starts
//!   firing), its runs that have not finished and the Calendars it names (their count);
//! - a Calendar event reconciles the Calendar, the Calendars of its namespace that include
//!   others (validity, cycles) and every Schedule that uses it, directly, through another
//!   Calendar or through its Task: it re-plans with the edited exclusions at once;
//! - a Schedule event also reconciles the Calendars it names (their count).
//!
//! The watches of the four horolog kinds decode each object on its own (`invalid.rs`): one the
//! types cannot read is reported on itself and left out, so it cannot fail the LIST that a
//! restart or a relist needs for every other object of its kind.
//!
//! (kube-runtime's `Controller` would give each controller its own watch of JobRuns, and the
//! Schedule reconciler could then read a JobRun store older than the event it reacts to; the
//! stable [`applier`] with our own queues avoids that.)

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt, future};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Config as ApplierConfig, applier};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use super::index::{JobView, PodView};
use super::invalid::{self, Decoded, Invalids, Watched};
use super::queue::{Queues, Receiver, Receivers};
use super::{
    Context, ControllerConfig, Error, ErrorKind, MANAGER, Observer, Stores, WatchBackoff, backfill, calendar,
    jobrun, retry_delay, schedule, status, task, tracking, trim,
};
use crate::api::{Backfill, Calendar, CalendarRef, JOBRUN_LABEL, JobRun, Schedule, Task};
use crate::clock::Clock;

/// Runs every reconciler until `shutdown` completes. Fails only when the CRDs are missing.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let namespace = config.namespace.clone();
    check_crds(&client, &namespace).await?;
    let (schedules, schedule_writer) = reflector::store::<Schedule>();
    let (jobruns, jobrun_writer) = reflector::store::<JobRun>();
    let (tasks, task_writer) = reflector::store::<Task>();
    let (backfills, backfill_writer) = reflector::store::<Backfill>();
    let (calendars, calendar_writer) = reflector::store::<Calendar>();
    if let Some(observer) = &config.observer {
        observer.caches(jobruns.clone());
    }
    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance: config.instance.clone(),
    };
    let stores = Stores {
        schedules,
        jobruns,
        tasks,
        backfills,
        calendars,
    };
    let ctx = Arc::new(Context::new(client.clone(), reporter, clock, config, stores));
    let queues = Queues::new(&ctx.config.observer);
    let invalids = Arc::new(Invalids::default());
    // Each part lives on the heap: together they are too large for a test thread's stack.
    let watches = future::join_all([
        watch_schedules(&ctx, &queues, &invalids, schedule_writer),
        watch_jobruns(&ctx, &queues, &invalids, jobrun_writer),
        watch_pods(&ctx, &queues, api_for(&client, &namespace)),
        watch_tasks(&ctx, &queues, &invalids, task_writer),
        watch_backfills(&ctx, &queues, &invalids, backfill_writer),
        watch_jobs(&ctx, &queues, api_for(&client, &namespace)),
        watch_calendars(&ctx, &queues, &invalids, calendar_writer),
    ]);
    let recovery = recover(ctx.clone(), queues.clone());
    let appliers = appliers(ctx, &queues);
    drop(queues);
    let everything = Box::pin(future::join3(watches, appliers, recovery));
    let shutdown = shutdown.fuse();
    futures::pin_mut!(shutdown);
    future::select(everything, shutdown).await;
    info!("controllers stopped");
    Ok(())
}

/// Fails fast with a clear message instead of retrying watches of a missing resource forever.
async fn check_crds(client: &Client, namespace: &Option<String>) -> Result<(), Error> {
    let one = ListParams::default().limit(1);
    api_for::<Schedule>(client, namespace)
        .list_metadata(&one)
        .await
        .map_err(Error::CrdsMissing)?;
    api_for::<JobRun>(client, namespace)
        .list_metadata(&one)
        .await
        .map_err(Error::CrdsMissing)?;
    api_for::<Task>(client, namespace)
        .list_metadata(&one)
        .await
        .map_err(Error::CrdsMissing)?;
    api_for::<Backfill>(client, namespace)
        .list_metadata(&one)
        .await
        .map_err(Error::CrdsMissing)?;
    api_for::<Calendar>(client, namespace)
        .list_metadata(&one)
        .await
        .map_err(Error::CrdsMissing)?;
    Ok(())
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

/// The watch of every object of kind `K`, each decoded on its own: one that does not decode is
/// reported and left out ([`invalid::sift`]) instead of failing the whole list.
fn watch_decoded<K: Watched>(
    ctx: &Arc<Context>,
    invalids: &Arc<Invalids>,
    store: Store<K>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    let api = api_for::<Decoded<K>>(&ctx.client, &ctx.config.namespace);
    invalid::sift(ctx, invalids, store, watcher(api, watcher::Config::default()))
}

fn watch_schedules(
    ctx: &Arc<Context>,
    queues: &Queues,
    invalids: &Arc<Invalids>,
    writer: Writer<Schedule>,
) -> BoxFuture<'static, ()> {
    let forgetting = ctx.clone();
    let watch = watch_decoded(ctx, invalids, ctx.stores.schedules.clone())
        .modify(trim::trim_schedule)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(schedule) = event {
                forgetting.forget(&schedule.namespace().unwrap_or_default(), &schedule.name_any());
            }
        });
    let (ctx, queues) = (ctx.clone(), queues.clone());
    let observer = ctx.config.observer.clone();
    drive(
        reflected(writer, watch),
        "Schedule",
        observer,
        move |schedule: Schedule| {
            queues.schedules.send(ObjectRef::from_obj(&schedule));
            // By name, not owner: runs orphaned by a deletion learn that their Schedule is gone.
            let namespace = schedule.namespace().unwrap_or_default();
            for run in ctx
                .runs_named(&namespace, &schedule.name_any())
                .iter()
                .filter(|run| !run.is_finished())
            {
                queues.jobruns.send(ObjectRef::from_obj(run.as_ref()));
            }
            for backfill in backfill::of_schedule(&ctx, &schedule) {
                queues.backfills.send(backfill);
            }
            wake_calendars(&queues, &schedule, &schedule.spec.calendar_refs);
        },
    )
    .boxed()
}

fn watch_jobruns(
    ctx: &Arc<Context>,
    queues: &Queues,
    invalids: &Arc<Invalids>,
    writer: Writer<JobRun>,
) -> BoxFuture<'static, ()> {
    let (indexing, store) = (ctx.clone(), ctx.stores.jobruns.clone());
    let watch = watch_decoded(ctx, invalids, store.clone())
        .modify(trim::trim_jobrun)
        .inspect_ok(move |event| {
            indexing.runs.apply(event, &store);
            // A deleted run's Pods must not stay Terminating on their tracking finalizer.
            if let watcher::Event::Delete(run) = event {
                let namespace = run.namespace().unwrap_or_default();
                let pods = indexing.pods.of_run(run);
                if let Some(job) = indexing.jobs.of_run(run) {
                    tracking::release_orphan_job(&indexing, namespace.clone(), run.name_any(), job);
                }
                tracking::release_orphans(&indexing, namespace, run.name_any(), pods.into_values().collect());
            }
        });
    let (ctx, queues) = (ctx.clone(), queues.clone());
    let observer = ctx.config.observer.clone();
    drive(
        reflected(writer, watch),
        "JobRun",
        observer,
        move |run: JobRun| wake_for_run(&ctx, &queues, &run),
    )
    .boxed()
}

fn watch_pods(ctx: &Arc<Context>, queues: &Queues, api: Api<Pod>) -> BoxFuture<'static, ()> {
    let indexing = ctx.clone();
    let events = watcher(api, watcher::Config::default().labels(JOBRUN_LABEL))
        .inspect_ok(move |event| indexing.pods.apply(event))
        .backoff(WatchBackoff::default())
        .touched_objects();
    let observer = ctx.config.observer.clone();
    let (ctx, queues) = (ctx.clone(), queues.clone());
    drive(events, "Pod", observer, move |pod: Pod| {
        release_if_orphaned(&ctx, &pod);
        wake_owner(&queues, &pod)
    })
    .boxed()
}

/// A tracked Pod being deleted whose JobRun the (filled) cache does not hold: its run was
/// deleted (its Schedule's deletion, a user), so nothing will record its outcome; it is
/// released so that it does not stay Terminating.
fn release_if_orphaned(ctx: &Arc<Context>, pod: &Pod) {
    let Some((_, view)) = PodView::of(pod) else {
        return;
    };
    if view.tracking.is_none() || !view.deleting {
        return;
    }
    let namespace = pod.namespace().unwrap_or_default();
    let Some(run) = pod
        .owner_references()
        .iter()
        .find(|o| o.kind == "JobRun")
        .map(|o| o.name.clone())
    else {
        tracking::release_orphans(ctx, namespace, String::new(), vec![view]);
        return;
    };
    if ctx.jobrun(&namespace, &run).is_some() {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        // Before the JobRun cache is filled, absent means nothing yet.
        if ctx.stores.jobruns.wait_until_ready().await.is_err() || ctx.jobrun(&namespace, &run).is_some() {
            return;
        }
        tracking::release_orphans(&ctx, namespace, run, vec![view]);
    });
}

/// The Job executor's Jobs, watched only when it is enabled (it needs RBAC on batch jobs).
fn watch_jobs(ctx: &Arc<Context>, queues: &Queues, api: Api<Job>) -> BoxFuture<'static, ()> {
    if !ctx.config.job_executor {
        return future::ready(()).boxed();
    }
    let indexing = ctx.clone();
    let events = watcher(api, watcher::Config::default().labels(JOBRUN_LABEL))
        .inspect_ok(move |event| indexing.jobs.apply(event))
        .backoff(WatchBackoff::default())
        .touched_objects();
    let queues = queues.clone();
    let observer = ctx.config.observer.clone();
    let ctx = ctx.clone();
    drive(events, "Job", observer, move |job: Job| {
        release_job_if_orphaned(&ctx, &job);
        wake_owner(&queues, &job)
    })
    .boxed()
}

/// A tracked Job being deleted whose JobRun the (filled) cache does not hold: released, as
/// [`release_if_orphaned`] does for a Pod.
fn release_job_if_orphaned(ctx: &Arc<Context>, job: &Job) {
    let Some((_, view)) = JobView::of(job) else {
        return;
    };
    if view.tracking.is_none() || !view.deleting {
        return;
    }
    let namespace = job.namespace().unwrap_or_default();
    let Some(run) = job
        .owner_references()
        .iter()
        .find(|o| o.kind == "JobRun")
        .map(|o| o.name.clone())
    else {
        tracking::release_orphan_job(ctx, namespace, String::new(), view);
        return;
    };
    if ctx.jobrun(&namespace, &run).is_some() {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if ctx.stores.jobruns.wait_until_ready().await.is_err() || ctx.jobrun(&namespace, &run).is_some() {
            return;
        }
        tracking::release_orphan_job(&ctx, namespace, run, view);
    });
}

fn watch_tasks(
    ctx: &Arc<Context>,
    queues: &Queues,
    invalids: &Arc<Invalids>,
    writer: Writer<Task>,
) -> BoxFuture<'static, ()> {
    let watch = watch_decoded(ctx, invalids, ctx.stores.tasks.clone());
    let (ctx, queues) = (ctx.clone(), queues.clone());
    let observer = ctx.config.observer.clone();
    drive(reflected(writer, watch), "Task", observer, move |task: Task| {
        let namespace = task.namespace().unwrap_or_default();
        let name = task.name_any();
        queues.tasks.send(ObjectRef::from_obj(&task));
        let schedules = ctx.stores.schedules.state();
        for schedule in schedules.iter().filter(|s| {
            s.namespace().as_deref() == Some(namespace.as_str()) && s.task_name() == Some(name.as_str())
        }) {
            queues.schedules.send(ObjectRef::from_obj(schedule.as_ref()));
        }
        for run in ctx
            .runs_of_task(&namespace, &name)
            .iter()
            .filter(|r| !r.is_finished())
        {
            queues.jobruns.send(ObjectRef::from_obj(run.as_ref()));
        }
        wake_calendars(&queues, &task, &task.spec.calendar_refs);
    })
    .boxed()
}

fn watch_calendars(
    ctx: &Arc<Context>,
    queues: &Queues,
    invalids: &Arc<Invalids>,
    writer: Writer<Calendar>,
) -> BoxFuture<'static, ()> {
    let watch = watch_decoded(ctx, invalids, ctx.stores.calendars.clone());
    let observer = ctx.config.observer.clone();
    let (ctx, queues) = (ctx.clone(), queues.clone());
    drive(
        reflected(writer, watch),
        "Calendar",
        observer,
        move |edited: Calendar| {
            let namespace = edited.namespace().unwrap_or_default();
            let name = edited.name_any();
            queues.calendars.send(ObjectRef::from_obj(&edited));
            let in_namespace = |ns: Option<String>| ns.as_deref() == Some(namespace.as_str());
            for other in ctx.stores.calendars.state().iter().filter(|c| {
                in_namespace(c.namespace()) && !c.spec.calendar_refs.is_empty() && c.name_any() != name
            }) {
                queues.calendars.send(ObjectRef::from_obj(other.as_ref()));
            }
            for schedule in ctx
                .stores
                .schedules
                .state()
                .iter()
                .filter(|s| in_namespace(s.namespace()))
            {
                if calendar::uses(&ctx, schedule, &name) {
                    queues.schedules.send(ObjectRef::from_obj(schedule.as_ref()));
                }
            }
        },
    )
    .boxed()
}

/// A Schedule or Task changed: reconcile the Calendars it names (they count their users).
fn wake_calendars(queues: &Queues, user: &impl Resource, refs: &[CalendarRef]) {
    let Some(namespace) = user.meta().namespace.as_deref() else {
        return;
    };
    for calendar in refs {
        queues
            .calendars
            .send(ObjectRef::new(&calendar.name).within(namespace));
    }
}

fn watch_backfills(
    ctx: &Arc<Context>,
    queues: &Queues,
    invalids: &Arc<Invalids>,
    writer: Writer<Backfill>,
) -> BoxFuture<'static, ()> {
    let queues = queues.clone();
    let watch = watch_decoded(ctx, invalids, ctx.stores.backfills.clone());
    drive(
        reflected(writer, watch),
        "Backfill",
        ctx.config.observer.clone(),
        move |b: Backfill| queues.backfills.send(ObjectRef::from_obj(&b)),
    )
    .boxed()
}

/// A watch applied to its store, retried with [`WatchBackoff`], as the objects it touches.
fn reflected<K>(
    writer: Writer<K>,
    watch: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    reflector::reflector(writer, watch)
        .backoff(WatchBackoff::default())
        .touched_objects()
}

/// A Pod or Job changed: reconcile the JobRun that owns it.
fn wake_owner(queues: &Queues, object: &impl Resource) {
    let Some(namespace) = object.meta().namespace.clone() else {
        return;
    };
    for owner in object.owner_references().iter().filter(|o| o.kind == "JobRun") {
        queues
            .jobruns
            .send(ObjectRef::new(&owner.name).within(&namespace));
    }
}

/// A JobRun changed: reconcile it, its Schedule, its Task, its Backfill, and its siblings
/// (in its Schedule and its Task) that have not finished — a slot may have freed, or a newer
/// run may replace them.
fn wake_for_run(ctx: &Context, queues: &Queues, run: &JobRun) {
    queues.jobruns.send(ObjectRef::from_obj(run));
    let Some(namespace) = run.namespace() else {
        return;
    };
    let mut siblings = Vec::new();
    if let Some(schedule) = &run.spec.schedule_name {
        queues.schedules.send(ObjectRef::new(schedule).within(&namespace));
        siblings.extend(ctx.runs_named(&namespace, schedule));
    }
    if let Some(task) = run.task_name() {
        queues.tasks.send(ObjectRef::new(task).within(&namespace));
        siblings.extend(ctx.runs_of_task(&namespace, task));
    }
    for backfill in backfill::woken_by(ctx, run) {
        queues.backfills.send(backfill);
    }
    for sibling in siblings
        .iter()
        .filter(|s| !s.is_finished() && s.name_any() != run.name_any())
    {
        queues.jobruns.send(ObjectRef::from_obj(sibling.as_ref()));
    }
}

/// Hands every object parked by an unavailable API server back to its queue as soon as the
/// server answers again.
fn recover(ctx: Arc<Context>, queues: Queues) -> BoxFuture<'static, ()> {
    async move {
        let namespace = ctx.config.namespace.clone();
        ctx.retries
            .watch(
                ctx.client.clone(),
                namespace,
                |(kind, namespace, name)| match kind.as_str() {
                    "Schedule" => queues.schedules.send(ObjectRef::new(&name).within(&namespace)),
                    "JobRun" => queues.jobruns.send(ObjectRef::new(&name).within(&namespace)),
                    "Task" => queues.tasks.send(ObjectRef::new(&name).within(&namespace)),
                    "Backfill" => queues.backfills.send(ObjectRef::new(&name).within(&namespace)),
                    "Calendar" => queues.calendars.send(ObjectRef::new(&name).within(&namespace)),
                    _ => {}
                },
            )
            .await;
    }
    .boxed()
}

/// The appliers, started once every cache is filled (a Schedule reconciled before the
/// JobRun and Pod caches are would see no runs).
fn appliers(ctx: Arc<Context>, queues: &Queues) -> BoxFuture<'static, ()> {
    let Receivers {
        schedules,
        jobruns,
        tasks,
        backfills,
        calendars,
    } = queues.receivers();
    let config = ApplierConfig::default().concurrency(ctx.config.concurrency);
    let stores = ctx.stores.clone();
    let all = future::join5(
        reconciling(
            "schedule",
            schedule::reconcile,
            &ctx,
            stores.schedules.clone(),
            schedules,
            &config,
        ),
        reconciling(
            "jobrun",
            jobrun::reconcile,
            &ctx,
            stores.jobruns.clone(),
            jobruns,
            &config,
        ),
        reconciling(
            "task",
            task::reconcile,
            &ctx,
            stores.tasks.clone(),
            tasks,
            &config,
        ),
        reconciling(
            "backfill",
            backfill::reconcile,
            &ctx,
            stores.backfills.clone(),
            backfills,
            &config,
        ),
        reconciling(
            "calendar",
            calendar::reconcile,
            &ctx,
            stores.calendars.clone(),
            calendars,
            &config,
        ),
    );
    async move {
        let ready = future::join5(
            stores.schedules.wait_until_ready(),
            stores.jobruns.wait_until_ready(),
            stores.tasks.wait_until_ready(),
            stores.backfills.wait_until_ready(),
            stores.calendars.wait_until_ready(),
        )
        .await;
        ctx.pods.wait_until_ready().await;
        if ready.0.is_err() || ready.1.is_err() || ready.2.is_err() || ready.3.is_err() || ready.4.is_err() {
            return;
        }
        info!("caches are filled; reconciling");
        all.await;
    }
    .boxed()
}

/// The applier of one kind: `reconcile` for every request of `requests`, timed and counted,
/// with the error policy.
fn reconciling<K, R, F>(
    controller: &'static str,
    reconcile: R,
    ctx: &Arc<Context>,
    store: Store<K>,
    (requests, waiting): Receiver<K>,
    config: &ApplierConfig,
) -> BoxFuture<'static, ()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    R: Fn(Arc<K>, Arc<Context>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Action, Error>> + Send + 'static,
{
    applier(
        move |object, ctx| {
            let key = status::key_of(object.as_ref());
            waiting.started(&key);
            timed(controller, key, reconcile(object, ctx.clone()), ctx).boxed()
        },
        error_policy,
        ctx.clone(),
        store,
        requests.map(Ok::<_, Infallible>),
        config.clone(),
    )
    .for_each(|result| async move { log_applier_result(result) })
    .boxed()
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

/// How soon a failed reconcile is retried; an object that failed because the API server is
/// unavailable is also parked for the recovery watch.
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
    let mut delay = retry_delay(kind, failures);
    if let Some(by) = err.retry_by() {
        // A refused start is retried by the run's start deadline at the latest, so the run
        // is Missed on time rather than one backoff late.
        delay = delay.min((by - ctx.now()).to_std().unwrap_or_default());
    }
    warn!(object = %key, error = %err, kind = kind.as_str(), failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Drives a watch: every object it touches goes to `on_object`; watch errors are logged and
/// counted (`horolog_watch_errors_total`; the watcher backs off and resumes by itself).
async fn drive<K>(
    events: impl Stream<Item = Result<K, watcher::Error>>,
    kind: &'static str,
    observer: Option<Arc<dyn Observer>>,
    mut on_object: impl FnMut(K),
) {
    let events = events.into_stream();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(object) => on_object(object),
            Err(err) => {
                warn!(kind, error = %err, "watch failed; retrying");
                if let Some(observer) = &observer {
                    observer.watch_failed(kind);
                }
            }
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
