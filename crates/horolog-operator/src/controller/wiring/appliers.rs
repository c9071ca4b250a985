//! One applier per kind, each driving its reconciler from its queue, and what a failed
//! reconcile does next.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt, future};
use kube::runtime::controller::{Action, Config as ApplierConfig, applier};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::controller::queue::{Queues, Receiver, Receivers};
use crate::controller::{
    Context, Error, ErrorKind, Observer, backfill, calendar, jobrun, retry_delay, schedule, status, task,
};

/// The appliers, started once every cache is filled (a Schedule reconciled before the
/// JobRun and Pod caches are would see no runs).
pub(super) fn appliers(ctx: Arc<Context>, queues: &Queues) -> BoxFuture<'static, ()> {
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
pub(super) fn reconciling<K, R, F>(
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
pub(super) async fn timed(
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
pub(super) fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    err: &Error,
    ctx: Arc<Context>,
) -> Action {
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
pub(super) async fn drive<K>(
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

pub(super) fn log_applier_result<K, E1: std::fmt::Display, E2: std::fmt::Display>(
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
