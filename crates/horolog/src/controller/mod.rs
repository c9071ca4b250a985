//! The two reconcilers — Schedule (fires JobRuns) and JobRun (runs Pods) — and how they are
//! wired to the API server.
//!
//! Wiring: one watch (and one reflector store) per kind — Schedules, JobRuns, and Pods
//! labelled `horolog.dev/jobrun` — shared by both reconcilers. Each watch event is applied
//! to its store *before* it is turned into reconcile requests, so a reconcile always reads
//! a store at least as new as the event that triggered it:
//!
//! - a Schedule event reconciles that Schedule;
//! - a JobRun event reconciles that JobRun, its Schedule (status: active runs, last success,
//!   history limits) and the Waiting runs of that Schedule (a slot may have freed);
//! - a Pod event reconciles its JobRun.
//!
//! (kube-runtime's `Controller` would give each controller its own watch of JobRuns, and the
//! Schedule reconciler could then read a JobRun store older than the event it reacts to;
//! the stable [`applier`] with our own queues avoids that.)
//!
//! The JobRun watch also feeds an index of runs by Schedule, so a reconcile (and each JobRun
//! event) reads only its own Schedule's runs: O(own runs), not O(all JobRuns), and no LIST.

mod context;
pub mod events;
pub mod jobrun;
pub mod schedule;
pub mod trim;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{FutureExt, Stream, StreamExt, TryStreamExt, future};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Config as ApplierConfig, applier};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{info, warn};

pub use context::{Context, Observer, status_diff};

use crate::api::{JOBRUN_LABEL, JobRun, Schedule, TriggerSpec};
use crate::clock::Clock;
use horolog_core::plan::FireTimes;
use horolog_core::trigger::Trigger;

/// The field manager and event reporter name of the operator.
pub const MANAGER: &str = "horolog";

/// A compiled trigger, as the Schedule reconciler uses it.
pub trait CompiledTrigger: FireTimes + Send + Sync {
    /// The trigger in short, for `kubectl get` (status.trigger).
    fn describe(&self) -> String;
}

/// Why a trigger does not compile, for the Ready condition and the InvalidTrigger Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerFault {
    /// `InvalidTrigger` or `InvalidTimezone`.
    pub reason: String,
    /// The field, the value and what is wrong, e.g.
    /// `trigger.cronFields.dayOfWeek: "mon-fry": unknown weekday "fry"`.
    pub message: String,
}

/// Compiles a Schedule's trigger with its creation time as the default start time.
pub type TriggerCompiler =
    Arc<dyn Fn(&TriggerSpec, DateTime<Utc>) -> Result<Box<dyn CompiledTrigger>, TriggerFault> + Send + Sync>;

/// The production trigger engine, `horolog_core::trigger::Trigger`, as a [`TriggerCompiler`].
pub fn trigger_compiler() -> TriggerCompiler {
    Arc::new(|spec: &TriggerSpec, default_start: DateTime<Utc>| {
        Trigger::compile(spec, default_start)
            .map(|t| Box::new(t) as Box<dyn CompiledTrigger>)
            .map_err(|e| TriggerFault {
                reason: e.kind.reason().to_string(),
                message: e.to_string(),
            })
    })
}

impl CompiledTrigger for Trigger {
    fn describe(&self) -> String {
        Trigger::describe(self)
    }
}

/// How the controllers run.
#[derive(Clone)]
pub struct ControllerConfig {
    /// The namespace to watch; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// How many reconciles of each kind run at once.
    pub concurrency: u16,
    /// The trigger engine (`horolog_core::trigger::Trigger::compile` in production).
    pub triggers: TriggerCompiler,
    /// The catch-up bound of the planner.
    pub catch_up: horolog_core::plan::CatchUp,
    /// The event reporter instance (e.g. the pod name); `None` uses the manager name.
    pub instance: Option<String>,
    /// Metrics hooks.
    pub observer: Option<Arc<dyn Observer>>,
}

impl ControllerConfig {
    /// All namespaces, 4 concurrent reconciles per kind, the default catch-up bound.
    pub fn new(triggers: TriggerCompiler) -> Self {
        ControllerConfig {
            namespace: None,
            concurrency: 4,
            triggers,
            catch_up: horolog_core::plan::CatchUp::default(),
            instance: None,
            observer: None,
        }
    }

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
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// What can go wrong in a reconcile. User mistakes are not errors: they become conditions
/// and Events, and the reconcile succeeds.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed (retried with backoff).
    #[error("could not {action} {kind} {namespace}/{name}: {source}")]
    Api {
        /// What was attempted, e.g. `create`.
        action: &'static str,
        /// The kind of the object.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The horolog CRDs are not installed in the cluster (or not readable by the operator).
    #[error("the horolog CRDs are not installed or not readable (kubectl apply --server-side -f crds/): {0}")]
    CrdsMissing(#[source] kube::Error),
    /// A JobRun's Pod could not be built.
    #[error(transparent)]
    Pod(#[from] crate::pod::PodError),
}

impl Error {
    /// An API error while doing `action` to `kind` `namespace/name`.
    pub fn api(
        action: &'static str,
        kind: impl Into<String>,
        namespace: &str,
        name: &str,
        source: kube::Error,
    ) -> Self {
        Error::Api {
            action,
            kind: kind.into(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        }
    }

    /// True for a 409: another writer was first; retry soon with a fresh read.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source, .. } if matches!(source.as_ref(), kube::Error::Api(status) if status.code == 409))
    }
}

/// True when `err` says the object does not exist.
pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.is_not_found())
}

/// True when `err` says the object already exists.
pub(crate) fn is_already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

/// Requeue delay after the `failures`-th failure in a row: a 409 means the cache was behind
/// and the next watch event usually fixes it, so conflicts retry after 200 ms, doubling to at
/// most 5 s (a fire is never seconds late because of a few conflicts in a row); everything
/// else backs off exponentially from 1 s to 256 s.
pub fn backoff(err: &Error, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(8);
    if err.is_conflict() {
        return (Duration::from_millis(200) * (1u32 << doublings)).min(Duration::from_secs(5));
    }
    Duration::from_secs(1u64 << doublings).min(Duration::from_secs(300))
}

/// How soon a reconcile skipped because the cache is behind our own write
/// ([`Context::behind_own_write`]) looks again, should the write's watch event not come.
pub(crate) const BEHIND_OWN_WRITE_RECHECK: Duration = Duration::from_secs(5);

fn error_policy<K: Resource<DynamicType = ()>>(object: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = object_key(object.as_ref());
    let failures = ctx.failed(&key);
    let delay = backoff(err, failures);
    warn!(object = %key, error = %err, failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

pub(crate) fn object_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Runs both reconcilers until `shutdown` completes. Fails only when the CRDs are missing.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let (schedules_api, jobruns_api, pods_api): (Api<Schedule>, Api<JobRun>, Api<Pod>) =
        match &config.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
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
    ] {
        result.map_err(Error::CrdsMissing)?;
    }

    let (schedule_store, schedule_writer) = reflector::store::<Schedule>();
    let (jobrun_store, jobrun_writer) = reflector::store::<JobRun>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (schedule_tx, schedule_rx) = unbounded::<ObjectRef<Schedule>>();
    let (jobrun_tx, jobrun_rx) = unbounded::<ObjectRef<JobRun>>();

    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance: config.instance.clone(),
    };
    if let Some(observer) = &config.observer {
        observer.caches(jobrun_store.clone());
    }
    let applier_config = ApplierConfig::default().concurrency(config.concurrency);
    let ctx = Arc::new(Context::new(
        client,
        reporter,
        clock,
        config,
        (schedule_store.clone(), jobrun_store.clone(), pod_store.clone()),
    ));

    let watch_config = watcher::Config::default();
    let schedule_events = reflector::reflector(
        schedule_writer,
        watcher(schedules_api, watch_config.clone()).modify(trim::trim_schedule),
    )
    .default_backoff()
    .touched_objects();
    // The run index sees each JobRun event just before the store does (see
    // `Context::index_jobrun_event`), so a Schedule's runs are found without scanning the store.
    let jobrun_watch = {
        let ctx = ctx.clone();
        watcher(jobruns_api, watch_config.clone())
            .modify(trim::trim_jobrun)
            .inspect_ok(move |event| ctx.index_jobrun_event(event))
    };
    let jobrun_events = reflector::reflector(jobrun_writer, jobrun_watch)
        .default_backoff()
        .touched_objects();
    let pod_watch = {
        let ctx = ctx.clone();
        watcher(pods_api, watch_config.labels(JOBRUN_LABEL))
            .modify(trim::trim_pod)
            .try_filter_map(move |event| {
                match &event {
                    watcher::Event::Apply(pod) if trim::is_finished(pod) => {
                        ctx.finished_pod_seen(pod.clone())
                    }
                    watcher::Event::Delete(pod) => ctx.finished_pod_gone(pod),
                    _ => {}
                }
                future::ready(Ok(trim::forget_finished_pod(event)))
            })
    };
    let pod_events = reflector::reflector(pod_writer, pod_watch)
        .default_backoff()
        .touched_objects();

    let schedules_in = {
        let schedule_tx = schedule_tx.clone();
        drive(schedule_events, "Schedule", move |schedule: Schedule| {
            send(&schedule_tx, ObjectRef::from_obj(&schedule));
        })
    };
    let jobruns_in = {
        let (schedule_tx, jobrun_tx, ctx) = (schedule_tx.clone(), jobrun_tx.clone(), ctx.clone());
        drive(jobrun_events, "JobRun", move |run: JobRun| {
            send(&jobrun_tx, ObjectRef::from_obj(&run));
            let (Some(namespace), Some(schedule)) = (run.namespace(), run.spec.schedule_name.clone()) else {
                return;
            };
            send(&schedule_tx, ObjectRef::new(&schedule).within(&namespace));
            for sibling in ctx.runs_named(&namespace, &schedule) {
                if sibling.status.as_ref().is_some_and(|s| s.pod_name.is_none())
                    && !jobrun::phase_of(&sibling).is_finished()
                {
                    send(&jobrun_tx, ObjectRef::from_obj(sibling.as_ref()));
                }
            }
        })
    };
    let pods_in = drive(pod_events, "Pod", move |pod: Pod| {
        for owner in pod.owner_references().iter().filter(|o| o.kind == "JobRun") {
            if let Some(namespace) = pod.namespace() {
                send(&jobrun_tx, ObjectRef::new(&owner.name).within(&namespace));
            }
        }
    });
    drop(schedule_tx);

    let schedule_applier = applier(
        |schedule, ctx| schedule::reconcile(schedule, ctx).boxed(),
        error_policy,
        ctx.clone(),
        schedule_store.clone(),
        schedule_rx.map(Ok::<_, Infallible>),
        applier_config.clone(),
    )
    .for_each(|result| async move { log_applier_result(result) });
    let jobrun_applier = applier(
        |run, ctx| jobrun::reconcile(run, ctx).boxed(),
        error_policy,
        ctx.clone(),
        jobrun_store.clone(),
        jobrun_rx.map(Ok::<_, Infallible>),
        applier_config,
    )
    .for_each(|result| async move { log_applier_result(result) });

    let appliers = async {
        // A Schedule reconciled before the JobRun cache is filled would see no runs at all.
        let ready = future::join3(
            schedule_store.wait_until_ready(),
            jobrun_store.wait_until_ready(),
            pod_store.wait_until_ready(),
        )
        .await;
        if ready.0.is_err() || ready.1.is_err() || ready.2.is_err() {
            return;
        }
        info!("caches are filled; reconciling");
        future::join(schedule_applier, jobrun_applier).await;
    };
    let everything = future::join4(schedules_in, jobruns_in, pods_in, appliers);
    futures::pin_mut!(everything);
    let shutdown = shutdown.fuse();
    futures::pin_mut!(shutdown);
    future::select(everything, shutdown).await;
    info!("controllers stopped");
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, reason: &str) -> Error {
        let status = kube::core::Status::failure("test", reason).with_code(code);
        Error::api(
            "patch status of",
            "JobRun".to_string(),
            "default",
            "r",
            kube::Error::Api(status.boxed()),
        )
    }

    #[test]
    fn conflicts_retry_fast_and_never_wait_more_than_five_seconds() {
        let conflict = api_error(409, "Conflict");
        let delays: Vec<u128> = (1..=8).map(|n| backoff(&conflict, n).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn other_errors_back_off_from_one_second_to_five_minutes() {
        let unavailable = api_error(503, "ServiceUnavailable");
        let delays: Vec<u64> = [1, 2, 3, 9, 20]
            .iter()
            .map(|&n| backoff(&unavailable, n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 256, 256]);
    }
}
