//! What every reconcile gets: the client, the stores, the clock, the event recorder, the
//! configuration and the slots this process has just handed out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::warn;

use super::events::EventPublisher;
use super::{ControllerConfig, Error};
use crate::api::{JobRun, Schedule};
use crate::clock::Clock;

/// Hooks for metrics (src/metrics.rs implements them); every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A reconcile of `controller` (`schedule` or `jobrun`) finished.
    fn reconciled(&self, _controller: &'static str, _elapsed: std::time::Duration, _ok: bool) {}
    /// A Schedule fired `runs` JobRuns.
    fn fired(&self, _namespace: &str, _schedule: &str, _runs: usize) {}
    /// A JobRun reached a final phase.
    fn finished(&self, _namespace: &str, _phase: &'static str) {}
    /// A JobRun's Pod was created `delay` after the run's fire time plus jitter.
    fn pod_created(&self, _delay: chrono::TimeDelta) {}
    /// A Schedule pass recorded `missed` fire times as missed and merged `coalesced` away.
    fn planned(&self, _missed: usize, _coalesced: usize) {}
    /// The controllers' JobRun cache exists (called once at start), e.g. for gauges read at
    /// scrape time.
    fn caches(&self, _jobruns: kube::runtime::reflector::Store<JobRun>) {}
}

/// The most objects [`Context::behind_own_write`] remembers, and the most finished Pods
/// [`Context::finished_pod_seen`] keeps; past it the memory is cleared, which loses only a
/// shortcut (a reconcile may then repeat work and meet a 409, or GET a Pod), never a write.
const WRITTEN_LIMIT: usize = 100_000;

/// The state shared by both reconcilers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes Events on Schedules and JobRuns.
    events: EventPublisher,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// How the controllers were started.
    pub config: ControllerConfig,
    /// Every Schedule, as the watch cache sees it.
    pub schedules: Store<Schedule>,
    /// Every JobRun, as the watch cache sees it.
    pub jobruns: Store<JobRun>,
    /// Every Pod with a `horolog.dev/jobrun` label, as the watch cache sees it.
    pub pods: Store<Pod>,
    /// The names of each Schedule's JobRuns, so a reconcile reads its own runs, not the store.
    runs: RwLock<RunIndex>,
    /// Slots of `maxRunningJobs` given out by this process that the JobRun store may not show
    /// yet (the watch event of the write can arrive after the next reconcile of a sibling).
    claims: Mutex<HashMap<(String, String), HashSet<String>>>,
    /// Consecutive failures per object, for error_policy's backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// For each object whose status this process wrote last: the resourceVersion that write
    /// replaced. See [`Context::behind_own_write`].
    written: Mutex<HashMap<String, String>>,
    /// Finished Pods, which the Pod cache drops (see `trim::forget_finished_pod`), kept until
    /// their JobRun's reconcile takes them; see [`Context::finished_pod_seen`].
    finished_pods: Mutex<HashMap<(String, String), Arc<Pod>>>,
}

impl Context {
    /// A context over the given client, clock, config and watch caches; Events are published
    /// as `reporter`.
    pub fn new(
        client: Client,
        reporter: Reporter,
        clock: Arc<dyn Clock>,
        config: ControllerConfig,
        stores: (Store<Schedule>, Store<JobRun>, Store<Pod>),
    ) -> Self {
        let (schedules, jobruns, pods) = stores;
        let events = EventPublisher::new(client.clone(), reporter);
        Context {
            client,
            events,
            clock,
            config,
            schedules,
            jobruns,
            pods,
            runs: RwLock::default(),
            claims: Mutex::default(),
            failures: Mutex::default(),
            written: Mutex::default(),
            finished_pods: Mutex::default(),
        }
    }

    /// Keeps a Pod that just finished until its JobRun's reconcile takes it
    /// ([`Context::take_finished_pod`]), so the final status comes from the watch event that
    /// reported it rather than from one more GET. Only a handful wait at any time: one per run
    /// finishing right now.
    pub fn finished_pod_seen(&self, pod: Pod) {
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        let mut pods = self
            .finished_pods
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if pods.len() >= WRITTEN_LIMIT {
            // Runs that finished and were never reconciled again (deleted meanwhile): drop them
            // all; a reconcile that needs one GETs it.
            pods.clear();
        }
        pods.insert(key, Arc::new(pod));
    }

    /// Forgets a kept finished Pod that was deleted.
    pub fn finished_pod_gone(&self, pod: &Pod) {
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        let mut pods = self
            .finished_pods
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        pods.remove(&key);
    }

    /// Takes the finished Pod `namespace/name` kept by [`Context::finished_pod_seen`], if any.
    pub fn take_finished_pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        let mut pods = self
            .finished_pods
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        pods.remove(&(namespace.to_string(), name.to_string()))
    }

    /// True when the cached `object` is the very version our own last status write replaced:
    /// the cache has not caught up yet. Reconciling it could only repeat that work (a JobRun
    /// created again, a Pod created again) and end in a 409 Conflict and a retry; and there is
    /// no need, since the write's watch event is on its way and reconciles the new version.
    /// Any other version (newer, or rewritten by someone else) is reconciled as usual.
    pub fn behind_own_write<K: Resource<DynamicType = ()>>(&self, object: &K) -> bool {
        let key = super::object_key(object);
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match written.get(&key) {
            Some(replaced) if object.meta().resource_version.as_deref() == Some(replaced.as_str()) => true,
            Some(_) => {
                written.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Remembers that our write turned `before` into `after` (see [`Context::behind_own_write`]).
    /// A write that changed nothing keeps the resourceVersion and sends no watch event, so it
    /// is not remembered.
    fn wrote<K: Resource<DynamicType = ()>>(&self, before: &K, after: &K) {
        let (Some(replaced), Some(now)) = (&before.meta().resource_version, &after.meta().resource_version)
        else {
            return;
        };
        if replaced == now {
            return;
        }
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if written.len() >= WRITTEN_LIMIT {
            written.clear();
        }
        written.insert(super::object_key(before), replaced.clone());
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The JobRuns owned by `schedule` (matched by owner uid, so a Schedule deleted and
    /// re-created under the same name does not adopt the old one's runs). Costs O(its runs),
    /// not O(all JobRuns): candidates come from the run index, which files a run under its
    /// `spec.scheduleName` and its Schedule owner references (runs the operator creates have
    /// both).
    pub fn runs_of(&self, schedule: &Schedule) -> Vec<Arc<JobRun>> {
        let Some(uid) = schedule.uid() else {
            return Vec::new();
        };
        let namespace = schedule.namespace().unwrap_or_default();
        self.indexed_runs(&namespace, &schedule.name_any(), |run| {
            run.owner_references().iter().any(|o| o.uid == uid)
        })
    }

    /// The JobRuns of the Schedule named `schedule` in `namespace` (by `spec.scheduleName`).
    pub fn runs_named(&self, namespace: &str, schedule: &str) -> Vec<Arc<JobRun>> {
        self.indexed_runs(namespace, schedule, |run| {
            run.spec.schedule_name.as_deref() == Some(schedule)
        })
    }

    /// The runs filed under `namespace/schedule` that the JobRun store holds and that satisfy
    /// `belongs`. The check is repeated on the stored object because the index can be a step
    /// ahead of the store (it sees each watch event first).
    fn indexed_runs(
        &self,
        namespace: &str,
        schedule: &str,
        belongs: impl Fn(&JobRun) -> bool,
    ) -> Vec<Arc<JobRun>> {
        let index = self.runs.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(names) = index
            .live
            .get(namespace)
            .and_then(|schedules| schedules.get(schedule))
        else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|name| self.jobruns.get(&ObjectRef::new(name).within(namespace)))
            .filter(|run| belongs(run))
            .collect()
    }

    /// Files one JobRun watch event in the run index. Must be called *before* the reflector
    /// applies the same event to the JobRun store: the store then still holds the previous
    /// version of a modified run, whose Schedule may have been different.
    pub fn index_jobrun_event(&self, event: &watcher::Event<JobRun>) {
        let mut index = self.runs.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        match event {
            watcher::Event::Apply(run) => {
                if let Some(previous) = self.jobruns.get(&ObjectRef::from_obj(run))
                    && schedules_of(&previous) != schedules_of(run)
                {
                    index.live.remove_run(&previous);
                }
                index.live.insert_run(run);
            }
            watcher::Event::Delete(run) => {
                if let Some(previous) = self.jobruns.get(&ObjectRef::from_obj(run)) {
                    index.live.remove_run(&previous);
                }
                index.live.remove_run(run);
            }
            // A relist builds a new index beside the old one and swaps it in when complete,
            // as the reflector does with its store: runs deleted while the watch was down
            // disappear, and lookups never see a half-filled index.
            watcher::Event::Init => index.relisted = Some(RunsBySchedule::default()),
            watcher::Event::InitApply(run) => index.relisted.get_or_insert_default().insert_run(run),
            watcher::Event::InitDone => index.live = index.relisted.take().unwrap_or_default(),
        }
    }

    /// The Schedule named `name` in `namespace`, from the watch cache.
    pub fn schedule(&self, namespace: &str, name: &str) -> Option<Arc<Schedule>> {
        self.schedules.get(&ObjectRef::new(name).within(namespace))
    }

    /// The Pod named `name` in `namespace`, from the watch cache.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&ObjectRef::new(name).within(namespace))
    }

    /// Runs `f` on the set of runs of `schedule` that this process let start, while holding
    /// the lock, so that checking for a free slot and taking it is one step.
    pub fn with_claims<T>(
        &self,
        namespace: &str,
        schedule: &str,
        f: impl FnOnce(&mut HashSet<String>) -> T,
    ) -> T {
        let mut claims = self
            .claims
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (namespace.to_string(), schedule.to_string());
        let result = f(claims.entry(key.clone()).or_default());
        if claims.get(&key).is_some_and(HashSet::is_empty) {
            claims.remove(&key);
        }
        result
    }

    /// Publishes an Event on `object`. Events are best effort: a failure is logged, never
    /// fails the reconcile (the status holds the same facts).
    pub async fn event<K>(&self, object: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let reference = object.object_ref(&());
        if let Err(err) = self
            .events
            .publish(reference, type_, reason, &note, self.now())
            .await
        {
            warn!(reason, error = %err, "could not publish event");
        }
    }

    /// Writes `new` as the status of `object` with a merge patch of the status subresource,
    /// only when it differs from `old`. The patch carries the resourceVersion that was read,
    /// so a write based on a stale cache fails with 409 and is retried, never lost.
    pub async fn patch_status<K, S>(&self, object: &K, old: &S, new: &S) -> Result<bool, Error>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        S: Serialize,
    {
        let Some(diff) = status_diff(old, new) else {
            return Ok(false);
        };
        let name = object.name_any();
        let namespace = object.namespace().unwrap_or_default();
        let body = json!({
            "metadata": {"resourceVersion": object.resource_version()},
            "status": diff,
        });
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        let written = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(|source| {
                Error::api(
                    "patch status of",
                    K::kind(&()).to_string(),
                    &namespace,
                    &name,
                    source,
                )
            })?;
        self.wrote(object, &written);
        Ok(true)
    }

    /// Counts a failure of the object `key`; returns how many in a row.
    pub fn failed(&self, key: &str) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(key.to_string()).or_default();
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of the object `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
    }
}

/// Run names by namespace, then Schedule name.
#[derive(Debug, Default)]
struct RunsBySchedule(HashMap<String, HashMap<String, HashSet<String>>>);

impl RunsBySchedule {
    fn get(&self, namespace: &str) -> Option<&HashMap<String, HashSet<String>>> {
        self.0.get(namespace)
    }

    fn insert_run(&mut self, run: &JobRun) {
        let namespace = run.namespace().unwrap_or_default();
        let schedules = self.0.entry(namespace).or_default();
        for schedule in schedules_of(run) {
            schedules
                .entry(schedule.to_string())
                .or_default()
                .insert(run.name_any());
        }
    }

    fn remove_run(&mut self, run: &JobRun) {
        let namespace = run.namespace().unwrap_or_default();
        let Some(schedules) = self.0.get_mut(&namespace) else {
            return;
        };
        let name = run.name_any();
        for schedule in schedules_of(run) {
            if let Some(names) = schedules.get_mut(schedule) {
                names.remove(&name);
                // Drop empty sets so deleted Schedules do not leave their keys behind.
                if names.is_empty() {
                    schedules.remove(schedule);
                }
            }
        }
        if schedules.is_empty() {
            self.0.remove(&namespace);
        }
    }
}

/// The index of JobRuns by Schedule, as fed by the JobRun watch (see
/// [`Context::index_jobrun_event`]). It holds names only; the objects stay in the store.
#[derive(Debug, Default)]
struct RunIndex {
    /// What lookups read.
    live: RunsBySchedule,
    /// Being rebuilt by a relist, between `Init` and `InitDone`.
    relisted: Option<RunsBySchedule>,
}

/// The Schedules a run is filed under: its `spec.scheduleName` and the names of its Schedule
/// owners (the same one for runs the operator creates; a hand-made run may differ), sorted
/// and without duplicates.
fn schedules_of(run: &JobRun) -> Vec<&str> {
    let mut names: Vec<&str> = run
        .owner_references()
        .iter()
        .filter(|owner| owner.kind == "Schedule")
        .map(|owner| owner.name.as_str())
        .chain(run.spec.schedule_name.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The merge patch that turns status `old` into `new`: changed top-level fields, and `null`
/// for fields `new` leaves out (a merge patch would keep them otherwise). `None` if equal.
pub fn status_diff<S: Serialize>(old: &S, new: &S) -> Option<Value> {
    let as_map = |s: &S| match serde_json::to_value(s) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let mut diff = Map::new();
    for (key, value) in &new {
        if old.get(key) != Some(value) {
            diff.insert(key.clone(), value.clone());
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            diff.insert(key.clone(), Value::Null);
        }
    }
    (!diff.is_empty()).then_some(Value::Object(diff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{JobRunSpec, JobRunTemplate};
    use crate::clock::ManualClock;
    use horolog_memserver::ApiServer;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector::{self, store::Writer};
    use kube::runtime::watcher::Event as Watch;

    fn run(name: &str, schedule: &str) -> JobRun {
        JobRun {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: JobRunSpec {
                schedule_name: Some(schedule.into()),
                fire_time: None,
                jitter: None,
                start_deadline: None,
                run: JobRunTemplate::default(),
            },
            status: None,
        }
    }

    /// A context whose JobRun store is fed by the returned writer.
    fn context() -> (Context, Writer<JobRun>) {
        let clock = Arc::new(ManualClock::new(DateTime::<Utc>::MIN_UTC));
        let client = ApiServer::with_crds(clock.clone(), &crate::crd::crds()).client();
        let (jobruns, writer) = reflector::store();
        let config = ControllerConfig::new(crate::controller::trigger_compiler());
        let stores = (reflector::store().0, jobruns, reflector::store().0);
        (
            Context::new(client, Reporter::from("test"), clock, config, stores),
            writer,
        )
    }

    /// Delivers `event` as `controller::run` does: index first, then store.
    fn deliver(ctx: &Context, writer: &mut Writer<JobRun>, event: Watch<JobRun>) {
        ctx.index_jobrun_event(&event);
        writer.apply_watcher_event(&event);
    }

    fn names(runs: Vec<Arc<JobRun>>) -> Vec<String> {
        let mut names: Vec<String> = runs.iter().map(|r| r.name_any()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn the_run_index_follows_applies_deletes_and_a_changed_schedule_name() {
        let (ctx, mut writer) = context();
        deliver(&ctx, &mut writer, Watch::Init);
        deliver(&ctx, &mut writer, Watch::InitApply(run("a-1", "a")));
        deliver(&ctx, &mut writer, Watch::InitDone);
        deliver(&ctx, &mut writer, Watch::Apply(run("a-2", "a")));
        deliver(&ctx, &mut writer, Watch::Apply(run("b-1", "b")));
        assert_eq!(names(ctx.runs_named("default", "a")), ["a-1", "a-2"]);
        assert_eq!(names(ctx.runs_named("default", "b")), ["b-1"]);
        assert!(ctx.runs_named("other", "a").is_empty());

        deliver(&ctx, &mut writer, Watch::Delete(run("a-1", "a")));
        deliver(&ctx, &mut writer, Watch::Apply(run("b-1", "c")));
        assert_eq!(names(ctx.runs_named("default", "a")), ["a-2"]);
        assert!(ctx.runs_named("default", "b").is_empty());
        assert_eq!(names(ctx.runs_named("default", "c")), ["b-1"]);
    }

    #[tokio::test]
    async fn a_relist_forgets_runs_deleted_while_the_watch_was_down() {
        let (ctx, mut writer) = context();
        deliver(&ctx, &mut writer, Watch::Init);
        deliver(&ctx, &mut writer, Watch::InitApply(run("a-1", "a")));
        deliver(&ctx, &mut writer, Watch::InitApply(run("a-2", "a")));
        deliver(&ctx, &mut writer, Watch::InitDone);
        deliver(&ctx, &mut writer, Watch::Init);
        deliver(&ctx, &mut writer, Watch::InitApply(run("a-2", "a")));
        // Until the relist is complete, lookups see the old state, as the store does.
        assert_eq!(names(ctx.runs_named("default", "a")), ["a-1", "a-2"]);
        deliver(&ctx, &mut writer, Watch::InitDone);
        assert_eq!(names(ctx.runs_named("default", "a")), ["a-2"]);
    }

    fn at_version(mut run: JobRun, version: &str) -> JobRun {
        run.metadata.resource_version = Some(version.into());
        run
    }

    #[tokio::test]
    async fn a_cached_object_is_behind_only_while_it_is_the_version_our_write_replaced() {
        let (ctx, _writer) = context();
        let v1 = at_version(run("a-1", "a"), "1");
        assert!(!ctx.behind_own_write(&v1), "nothing written yet");

        ctx.wrote(&v1, &at_version(run("a-1", "a"), "2"));
        assert!(
            ctx.behind_own_write(&v1),
            "the cache still shows what we replaced"
        );
        assert!(ctx.behind_own_write(&v1), "and stays behind until it moves");
        assert!(
            !ctx.behind_own_write(&at_version(run("b-1", "b"), "1")),
            "other objects are not"
        );

        assert!(
            !ctx.behind_own_write(&at_version(run("a-1", "a"), "2")),
            "caught up"
        );
        assert!(!ctx.behind_own_write(&v1), "forgotten once caught up");
    }

    #[tokio::test]
    async fn a_write_that_changed_nothing_is_not_waited_for() {
        let (ctx, _writer) = context();
        let v1 = at_version(run("a-1", "a"), "1");
        // The server kept the version: no watch event will come, so nothing may wait for one.
        ctx.wrote(&v1, &v1.clone());
        assert!(!ctx.behind_own_write(&v1));
    }

    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[tokio::test]
    async fn a_finished_pod_is_taken_once_or_forgotten_when_deleted() {
        let (ctx, _writer) = context();
        ctx.finished_pod_seen(pod("a-1"));
        ctx.finished_pod_seen(pod("b-1"));
        assert!(ctx.take_finished_pod("other", "a-1").is_none());
        assert!(ctx.take_finished_pod("default", "a-1").is_some());
        assert!(ctx.take_finished_pod("default", "a-1").is_none(), "taken once");
        ctx.finished_pod_gone(&pod("b-1"));
        assert!(
            ctx.take_finished_pod("default", "b-1").is_none(),
            "deleted before it was taken"
        );
    }

    #[test]
    fn the_status_diff_sets_changed_fields_and_nulls_removed_ones() {
        let old = json!({"phase": "Running", "podName": "a-1", "attempts": 1});
        let new = json!({"phase": "Succeeded", "attempts": 1});
        assert_eq!(
            status_diff(&old, &new),
            Some(json!({"phase": "Succeeded", "podName": null}))
        );
        assert_eq!(status_diff(&new, &new), None);
    }
}
