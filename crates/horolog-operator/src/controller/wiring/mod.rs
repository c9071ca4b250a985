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

mod appliers;
mod touched;
mod watches;

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, future};
use kube::api::ListParams;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::{Api, Client, Resource};
use tracing::info;

use super::invalid::Invalids;
use super::queue::Queues;
use super::{Context, ControllerConfig, Error, MANAGER, Stores};
use crate::api::{Backfill, Calendar, JobRun, Schedule, Task};
use crate::clock::Clock;

use appliers::appliers;
use watches::{
    watch_backfills, watch_calendars, watch_jobruns, watch_jobs, watch_pods, watch_schedules, watch_tasks,
};

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

pub(super) fn api_for<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
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
