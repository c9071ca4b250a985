//! What every reconcile gets: the client, the clock, the configuration, the watch caches and
//! their indexes, the slots, the status writer, the Events and the retries.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{info, warn};

use super::admission::Slots;
use super::error::is_not_found;
use super::events::{EventPublisher, Note};
use super::index::{JobIndex, PodIndex, RunIndex};
use super::recovery::Retries;
use super::status::StatusWriter;
use super::{ControllerConfig, Error};
use crate::api::{Backfill, Calendar, JobRun, Schedule, Task};
use crate::clock::Clock;

/// Hooks for metrics (src/metrics.rs implements them); every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A reconcile of `controller` finished; `error` names the kind of failure, if any.
    fn reconciled(
        &self,
        _controller: &'static str,
        _elapsed: std::time::Duration,
        _error: Option<&'static str>,
    ) {
    }
    /// `depth` objects of `controller`'s kind wait for a reconcile that was asked for.
    fn queue_depth(&self, _controller: &'static str, _depth: usize) {}
    /// An object of `controller`'s kind that was not waiting now waits for a reconcile.
    fn queue_added(&self, _controller: &'static str) {}
    /// A reconcile of `controller` starts after its object waited `waited`.
    fn queue_waited(&self, _controller: &'static str, _waited: std::time::Duration) {}
    /// A Schedule fired `runs` JobRuns.
    fn fired(&self, _namespace: &str, _schedule: &str, _runs: usize) {}
    /// A JobRun reached a final phase after running `duration` (if it ran).
    fn finished(
        &self,
        _namespace: &str,
        _schedule: Option<&str>,
        _phase: &'static str,
        _duration: Option<chrono::TimeDelta>,
    ) {
    }
    /// A JobRun's first Pod was created `delay` after the run's fire time plus jitter.
    fn pod_created(&self, _delay: chrono::TimeDelta) {}
    /// A Schedule pass recorded `missed` fire times as missed and merged `coalesced` away.
    fn planned(&self, _missed: usize, _coalesced: usize) {}
    /// A Schedule pass counted `n` fire times as excluded by its Calendars or trigger.exclude.
    fn excluded(&self, _namespace: &str, _schedule: &str, _n: usize) {}
    /// A Schedule's state for per-Schedule series: its next fire time, the period between
    /// its next two fire times, and the fire time of its latest success.
    fn schedule_state(&self, _state: &ScheduleState) {}
    /// A Schedule is gone: forget its series.
    fn schedule_gone(&self, _namespace: &str, _schedule: &str) {}
    /// `count` objects of `kind` cannot be read (they do not decode into the operator's
    /// types) and are ignored until fixed.
    fn invalid_objects(&self, _kind: &'static str, _count: usize) {}
    /// The watch of `kind` failed (it retries by itself, with a backoff).
    fn watch_failed(&self, _kind: &'static str) {}
    /// The controllers' JobRun cache exists (called once at start), e.g. for gauges read at
    /// scrape time.
    fn caches(&self, _jobruns: Store<JobRun>) {}
}

/// What the per-Schedule series show of one Schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleState {
    /// The Schedule's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its next fire time, if any.
    pub next_fire_time: Option<DateTime<Utc>>,
    /// The time between its next two fire times, in seconds, if it has two.
    pub interval_seconds: Option<f64>,
    /// The fire time of its latest successful run.
    pub last_success: Option<DateTime<Utc>>,
    /// Whether its Ready condition is True, and that condition's reason.
    pub ready: (bool, String),
    /// The reason of its Paused condition (`Paused`, `TooManyFailures`, `NotPaused`) and
    /// whether it is paused.
    pub paused: (bool, String),
    /// Its runs not yet finished and counted (`status.activeCount`).
    pub active_runs: i64,
    /// Failed runs in a row (`status.consecutiveFailures`).
    pub consecutive_failures: i64,
}

/// The watch caches.
#[derive(Clone)]
pub struct Stores {
    /// Every Schedule.
    pub schedules: Store<Schedule>,
    /// Every JobRun.
    pub jobruns: Store<JobRun>,
    /// Every Task.
    pub tasks: Store<Task>,
    /// Every Backfill.
    pub backfills: Store<Backfill>,
    /// Every Calendar.
    pub calendars: Store<Calendar>,
}

/// The state shared by every reconciler.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// How the controllers were started.
    pub config: ControllerConfig,
    /// The watch caches.
    pub stores: Stores,
    /// JobRuns by Schedule and by Task.
    pub runs: RunIndex,
    /// Every JobRun's Pods.
    pub pods: PodIndex,
    /// Every JobRun's batch/v1 Job (the `Job` executor).
    pub jobs: JobIndex,
    /// Slots admitted but not yet visible in the Pod index.
    pub slots: Slots,
    /// Writes status.
    pub status: StatusWriter,
    /// Failure counts and the recovery watch.
    pub retries: Retries,
    events: EventPublisher,
    /// Schedules this process has reconciled at least once (catchUp Disabled treats the
    /// first pass after a start as the end of an interruption).
    seen: Mutex<HashSet<(String, String)>>,
}

impl Context {
    /// A context over the given client, clock, config and watch caches; Events are published
    /// as `reporter`.
    pub fn new(
        client: Client,
        reporter: Reporter,
        clock: Arc<dyn Clock>,
        config: ControllerConfig,
        stores: Stores,
    ) -> Self {
        let events = EventPublisher::new(client.clone(), reporter);
        Context {
            client,
            clock,
            config,
            stores,
            runs: RunIndex::default(),
            pods: PodIndex::default(),
            jobs: JobIndex::default(),
            slots: Slots::default(),
            status: StatusWriter::default(),
            retries: Retries::default(),
            events,
            seen: Mutex::default(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The Schedule named `name` in `namespace`.
    pub fn schedule(&self, namespace: &str, name: &str) -> Option<Arc<Schedule>> {
        self.stores.schedules.get(&ObjectRef::new(name).within(namespace))
    }

    /// The Schedule that owns `run` (by owner uid, so a Schedule deleted and re-created under
    /// the same name does not adopt the old one's runs); for a hand-made run without owner,
    /// the Schedule its `spec.scheduleName` names.
    pub fn schedule_of(&self, run: &JobRun) -> Option<Arc<Schedule>> {
        let namespace = run.namespace().unwrap_or_default();
        let name = run.spec.schedule_name.as_deref()?;
        let schedule = self.schedule(&namespace, name)?;
        let owners: Vec<_> = run
            .owner_references()
            .iter()
            .filter(|o| o.kind == "Schedule")
            .collect();
        let owned = match owners.is_empty() {
            // A run without owner (hand-made, or orphaned by `--cascade=orphan`) that existed
            // before the Schedule was created is an older Schedule's of the same name.
            true => !created_after(schedule.as_ref(), run),
            false => owners.iter().any(|o| Some(&o.uid) == schedule.uid().as_ref()),
        };
        owned.then_some(schedule)
    }

    /// The Task named `name` in `namespace`.
    pub fn task(&self, namespace: &str, name: &str) -> Option<Arc<Task>> {
        self.stores.tasks.get(&ObjectRef::new(name).within(namespace))
    }

    /// The Calendar named `name` in `namespace`.
    pub fn calendar(&self, namespace: &str, name: &str) -> Option<Arc<Calendar>> {
        self.stores.calendars.get(&ObjectRef::new(name).within(namespace))
    }

    /// The Backfill named `name` in `namespace`.
    pub fn backfill(&self, namespace: &str, name: &str) -> Option<Arc<Backfill>> {
        self.stores.backfills.get(&ObjectRef::new(name).within(namespace))
    }

    /// The Backfill that a run's `horolog.dev/backfill` label names. The label holds the
    /// Backfill's name, shortened with a hash when longer than a label value may be (63
    /// characters, see `short_name`), so a long name is found by shortening each name the same
    /// way. (Here, below admission and the JobRun reconciler, so neither imports `backfill`.)
    pub fn backfill_labelled(&self, namespace: &str, label: &str) -> Option<Arc<Backfill>> {
        if let Some(backfill) = self.backfill(namespace, label) {
            return Some(backfill);
        }
        if label.len() < crate::pod::MAX_NAME_LEN {
            return None;
        }
        self.stores.backfills.state().into_iter().find(|b| {
            b.namespace().as_deref() == Some(namespace)
                && crate::pod::short_name(&b.name_any(), crate::pod::MAX_NAME_LEN) == label
        })
    }

    /// The JobRun named `name` in `namespace`.
    pub fn jobrun(&self, namespace: &str, name: &str) -> Option<Arc<JobRun>> {
        self.stores.jobruns.get(&ObjectRef::new(name).within(namespace))
    }

    /// The JobRuns owned by `schedule` (matched by owner uid), less those this operator has
    /// deleted and the cache still shows. Costs O(its runs).
    pub fn runs_of(&self, schedule: &Schedule) -> Vec<Arc<JobRun>> {
        let Some(uid) = schedule.uid() else {
            return Vec::new();
        };
        let namespace = schedule.namespace().unwrap_or_default();
        let mut runs: Vec<Arc<JobRun>> = self
            .runs
            .of_schedule(&namespace, &schedule.name_any())
            .iter()
            .filter_map(|name| self.jobrun(&namespace, name))
            .filter(|run| run.owner_references().iter().any(|o| o.uid == uid))
            .collect();
        self.runs.retain_not_deleted(&mut runs);
        runs
    }

    /// The JobRuns of every Schedule that runs Task `task`, and its one-off runs.
    pub fn runs_of_task(&self, namespace: &str, task: &str) -> Vec<Arc<JobRun>> {
        self.runs
            .of_task(namespace, task)
            .iter()
            .filter_map(|name| self.jobrun(namespace, name))
            .filter(|run| run.task_name() == Some(task))
            .collect()
    }

    /// The JobRuns named by `spec.scheduleName` `schedule` (owned or not).
    pub fn runs_named(&self, namespace: &str, schedule: &str) -> Vec<Arc<JobRun>> {
        self.runs
            .of_schedule(namespace, schedule)
            .iter()
            .filter_map(|name| self.jobrun(namespace, name))
            .filter(|run| run.spec.schedule_name.as_deref() == Some(schedule))
            .collect()
    }

    /// True the first time it is asked about `schedule` in this process.
    pub fn first_pass(&self, schedule: &Schedule) -> bool {
        let key = (schedule.namespace().unwrap_or_default(), schedule.name_any());
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key)
    }

    /// Forgets a deleted Schedule.
    pub fn forget(&self, namespace: &str, schedule: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&(namespace.to_string(), schedule.to_string()));
        if let Some(observer) = &self.config.observer {
            observer.schedule_gone(namespace, schedule);
        }
    }

    /// Publishes `note` on `object` if the event policy (`--events`) wants it. Events are
    /// best effort: a failure is logged, never fails the reconcile (status holds the facts).
    pub async fn publish<K>(&self, object: &K, note: Note)
    where
        K: Resource<DynamicType = ()>,
    {
        if !self.config.events.publishes(&note) {
            return;
        }
        let type_ = if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let reference = object.object_ref(&());
        if let Err(err) = self
            .events
            .publish(reference, type_, note.reason, &note.message, self.now())
            .await
        {
            warn!(reason = note.reason, error = %err, "could not publish event");
        }
    }

    /// Deletes `namespace/name` with `params`, only if it is still the object with `uid` (a
    /// uid precondition: an object created again under the name since is another one, and is
    /// left alone). One that is already gone, or replaced, is fine.
    pub async fn delete<K>(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        params: &DeleteParams,
    ) -> Result<(), Error>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..params.clone()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                info!(kind = K::kind(&()).as_ref(), %name, %uid, "not deleted: the name now belongs to another object");
                Ok(())
            }
            Err(err) => Err(Error::api(
                "delete",
                K::kind(&()).to_string(),
                namespace,
                name,
                err,
            )),
        }
    }

    /// Deletes JobRun `namespace/name` as the cache shows it (its Pods follow by owner; a run
    /// the cache no longer shows is gone already) and hides it from [`Context::runs_of`] until
    /// the watch shows it gone, so a reconcile in between does not delete it again.
    pub async fn delete_run(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let Some(uid) = self.jobrun(namespace, name).and_then(|run| run.uid()) else {
            return Ok(());
        };
        self.delete::<JobRun>(namespace, name, &uid, &DeleteParams::background())
            .await?;
        self.runs.deleted_by_us(uid);
        Ok(())
    }

    /// The metrics hooks, if any.
    pub fn observer(&self) -> Option<&dyn Observer> {
        self.config.observer.as_deref()
    }
}

/// True when `object` was created after `run` (by their creation timestamps, to the second):
/// `run` cannot be its.
pub(crate) fn created_after(object: &impl Resource, run: &JobRun) -> bool {
    let created = |meta: &kube::api::ObjectMeta| meta.creation_timestamp.as_ref().map(|t| t.0);
    match (created(object.meta()), created(run.meta())) {
        (Some(object), Some(run)) => object > run,
        _ => false,
    }
}
