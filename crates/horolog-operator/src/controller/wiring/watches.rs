//! The watches: each event is filed in the indexes and the stores, then turned into the
//! reconcile requests it calls for.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, TryStreamExt, future};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::api_for;
use super::appliers::drive;
use super::touched::touched;
use crate::api::{Backfill, Calendar, CalendarRef, JOBRUN_LABEL, JobRun, JobRunPhase, Schedule, Task};
use crate::controller::index::{JobView, PodView};
use crate::controller::invalid::{self, Decoded, Invalids, Watched};
use crate::controller::queue::Queues;
use crate::controller::{Context, WatchBackoff, backfill, calendar, schedule, tracking, trim};

/// The watch of every object of kind `K`, each decoded on its own: one that does not decode is
/// reported and left out ([`invalid::sift`]) instead of failing the whole list.
pub(super) fn watch_decoded<K: Watched>(
    ctx: &Arc<Context>,
    invalids: &Arc<Invalids>,
    store: Store<K>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    let api = api_for::<Decoded<K>>(&ctx.client, &ctx.config.namespace);
    invalid::sift(ctx, invalids, store, watcher(api, watcher::Config::default()))
}

pub(super) fn watch_schedules(
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

pub(super) fn watch_jobruns(
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

pub(super) fn watch_pods(ctx: &Arc<Context>, queues: &Queues, api: Api<Pod>) -> BoxFuture<'static, ()> {
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
pub(super) fn release_if_orphaned(ctx: &Arc<Context>, pod: &Pod) {
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
pub(super) fn watch_jobs(ctx: &Arc<Context>, queues: &Queues, api: Api<Job>) -> BoxFuture<'static, ()> {
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

pub(super) fn watch_tasks(
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

pub(super) fn watch_calendars(
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
pub(super) fn wake_calendars(queues: &Queues, user: &impl Resource, refs: &[CalendarRef]) {
    let Some(namespace) = user.meta().namespace.as_deref() else {
        return;
    };
    for calendar in refs {
        queues
            .calendars
            .send(ObjectRef::new(&calendar.name).within(namespace));
    }
}

pub(super) fn watch_backfills(
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

/// A watch applied to its store, retried with [`WatchBackoff`], as the objects it touches,
/// each once the store holds it ([`touched`]).
pub(super) fn reflected<K>(
    writer: Writer<K>,
    watch: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let reader = writer.as_reader();
    touched(
        reader,
        reflector::reflector(writer, watch).backoff(WatchBackoff::default()),
    )
}

/// A Pod or Job changed: reconcile the JobRun that owns it.
pub(super) fn wake_owner(queues: &Queues, object: &impl Resource) {
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
pub(super) fn wake_for_run(ctx: &Context, queues: &Queues, run: &JobRun) {
    queues.jobruns.send(ObjectRef::from_obj(run));
    // A run staged ahead of its fire time changes nothing yet for its Schedule (which looks
    // again at that time), its Task or its siblings (it holds no slot), and their changes
    // nothing for it: no reconcile of theirs is spent on its creation.
    let now = ctx.now();
    let staged = |r: &JobRun| {
        r.phase() == JobRunPhase::Scheduled && r.fire_time() > now && schedule::stage::created_ahead(r)
    };
    if staged(run) {
        return;
    }
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
        .filter(|s| !s.is_finished() && !staged(s) && s.name_any() != run.name_any())
    {
        queues.jobruns.send(ObjectRef::from_obj(sibling.as_ref()));
    }
}
