//! Indexes the watches feed, so a reconcile reads only what concerns it:
//!
//! - [`RunIndex`]: JobRun names by Schedule and by Task (the objects stay in the JobRun
//!   store), so a Schedule's or a Task's runs cost O(its runs), not O(all JobRuns);
//! - [`PodIndex`]: what each JobRun's Pods report, by attempt, kept small (a [`PodView`] per
//!   Pod, not the Pod), including finished Pods until they are deleted.
//!
//! Both are fed one watch event at a time, *before* the reflector store applies the same
//! event (see `controller::run`), and rebuilt beside the old state on a relist, swapped in
//! when the relist is complete, as the reflector does with its store.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio::sync::watch;

use k8s_openapi::api::batch::v1::Job;

use crate::api::{JOBRUN_LABEL, JobRun, TASK_LABEL};
use crate::job::{JobReport, job_report};
use crate::pod::{ATTEMPT_LABEL, PodReport, pod_report};

/// JobRun names by namespace, then by owner name (a Schedule's or a Task's).
#[derive(Debug, Default)]
struct Names(HashMap<String, HashMap<String, HashSet<String>>>);

impl Names {
    fn get(&self, namespace: &str, owner: &str) -> Option<&HashSet<String>> {
        self.0.get(namespace).and_then(|owners| owners.get(owner))
    }

    fn insert(&mut self, namespace: &str, owners: &[&str], name: &str) {
        let by_owner = self.0.entry(namespace.to_string()).or_default();
        for owner in owners {
            by_owner
                .entry((*owner).to_string())
                .or_default()
                .insert(name.to_string());
        }
    }

    fn remove(&mut self, namespace: &str, owners: &[&str], name: &str) {
        let Some(by_owner) = self.0.get_mut(namespace) else {
            return;
        };
        for owner in owners {
            if let Some(names) = by_owner.get_mut(*owner) {
                names.remove(name);
                // Drop empty sets so deleted Schedules do not leave their keys behind.
                if names.is_empty() {
                    by_owner.remove(*owner);
                }
            }
        }
        if by_owner.is_empty() {
            self.0.remove(namespace);
        }
    }
}

/// Runs by Schedule and by Task, in one namespace-keyed map each.
#[derive(Debug, Default)]
struct RunMaps {
    by_schedule: Names,
    by_task: Names,
}

impl RunMaps {
    fn insert(&mut self, run: &JobRun) {
        let namespace = run.namespace().unwrap_or_default();
        let name = run.name_any();
        self.by_schedule.insert(&namespace, &schedules_of(run), &name);
        self.by_task.insert(&namespace, &tasks_of(run), &name);
    }

    fn remove(&mut self, run: &JobRun) {
        let namespace = run.namespace().unwrap_or_default();
        let name = run.name_any();
        self.by_schedule.remove(&namespace, &schedules_of(run), &name);
        self.by_task.remove(&namespace, &tasks_of(run), &name);
    }
}

/// The index of JobRuns by Schedule and by Task, fed by the JobRun watch, and a memory of
/// the runs it saw deleted lately.
#[derive(Debug, Default)]
pub struct RunIndex {
    live: RwLock<(RunMaps, Option<RunMaps>)>,
    deleted: Mutex<Tombstones>,
    /// Uids of runs this operator deleted whose deletion the watch has not shown yet: the cache
    /// still holds them, and a reconcile in between must not delete them again (a 404 write).
    deleting: Mutex<HashSet<String>>,
}

/// The most deletions [`RunIndex::was_deleted`] remembers (the oldest are forgotten first).
const TOMBSTONES: usize = 10_000;

/// Recently deleted runs, oldest first.
#[derive(Debug, Default)]
struct Tombstones {
    order: VecDeque<(String, String)>,
    set: HashSet<(String, String)>,
    /// The same runs by uid (a run created again under a deleted one's name is not deleted).
    uids: VecDeque<String>,
    uid_set: HashSet<String>,
}

impl RunIndex {
    /// Files one JobRun watch event. Must be called *before* the reflector applies the same
    /// event to `store`: the store then still holds the previous version of a modified run,
    /// whose Schedule or Task may have been different.
    pub fn apply(&self, event: &watcher::Event<JobRun>, store: &Store<JobRun>) {
        let mut guard = self.live.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (live, relisted) = &mut *guard;
        match event {
            watcher::Event::Apply(run) => {
                if let Some(previous) = store.get(&ObjectRef::from_obj(run)) {
                    live.remove(&previous);
                }
                live.insert(run);
            }
            watcher::Event::Delete(run) => {
                if let Some(previous) = store.get(&ObjectRef::from_obj(run)) {
                    live.remove(&previous);
                }
                live.remove(run);
                self.remember_deleted(run);
                if let Some(uid) = run.uid() {
                    self.lock_deleting().remove(&uid);
                }
            }
            watcher::Event::Init => *relisted = Some(RunMaps::default()),
            watcher::Event::InitApply(run) => relisted.get_or_insert_default().insert(run),
            watcher::Event::InitDone => {
                *live = relisted.take().unwrap_or_default();
                // The relisted store holds no run deleted before the list; a deletion still in
                // flight is at worst asked for once more.
                self.lock_deleting().clear();
            }
        }
    }

    fn lock_deleting(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.deleting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes that this operator deleted the run with `uid`, until the watch shows it gone.
    pub fn deleted_by_us(&self, uid: String) {
        self.lock_deleting().insert(uid);
    }

    /// Drops from `runs` those this operator deleted that the cache still shows (one lock; no
    /// work while no deletion is in flight).
    pub fn retain_not_deleted(&self, runs: &mut Vec<Arc<JobRun>>) {
        let deleting = self.lock_deleting();
        if !deleting.is_empty() {
            runs.retain(|run| run.uid().is_none_or(|uid| !deleting.contains(&uid)));
        }
    }

    fn remember_deleted(&self, run: &JobRun) {
        let key = (run.namespace().unwrap_or_default(), run.name_any());
        let mut deleted = self
            .deleted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if deleted.set.insert(key.clone()) {
            deleted.order.push_back(key);
        }
        while deleted.order.len() > TOMBSTONES {
            if let Some(oldest) = deleted.order.pop_front() {
                deleted.set.remove(&oldest);
            }
        }
        if let Some(uid) = run.uid()
            && deleted.uid_set.insert(uid.clone())
        {
            deleted.uids.push_back(uid);
        }
        while deleted.uids.len() > TOMBSTONES {
            if let Some(oldest) = deleted.uids.pop_front() {
                deleted.uid_set.remove(&oldest);
            }
        }
    }

    /// True when the watch reported the run with `uid` deleted lately.
    pub fn was_deleted_uid(&self, uid: &str) -> bool {
        let deleted = self
            .deleted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        deleted.uid_set.contains(uid)
    }

    /// True when the watch reported run `name` deleted lately.
    pub fn was_deleted(&self, namespace: &str, name: &str) -> bool {
        let deleted = self
            .deleted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        deleted.set.contains(&(namespace.to_string(), name.to_string()))
    }

    /// The names of the runs filed under Schedule `schedule` in `namespace` (by
    /// `spec.scheduleName` and by Schedule owner references).
    pub fn of_schedule(&self, namespace: &str, schedule: &str) -> Vec<String> {
        let guard = self.live.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .0
            .by_schedule
            .get(namespace, schedule)
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The names of the runs of Task `task` in `namespace` (label `horolog.dev/task` or
    /// `spec.taskRef`).
    pub fn of_task(&self, namespace: &str, task: &str) -> Vec<String> {
        let guard = self.live.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .0
            .by_task
            .get(namespace, task)
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The Schedules a run is filed under: its `spec.scheduleName` and the names of its Schedule
/// owners (the same one for runs the operator creates; a hand-made run may differ).
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

/// The Tasks a run is filed under: its `spec.taskRef` and its `horolog.dev/task` label.
fn tasks_of(run: &JobRun) -> Vec<&str> {
    let mut names: Vec<&str> = run
        .task_name()
        .into_iter()
        .chain(run.labels().get(TASK_LABEL).map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// What the operator knows of one Pod of a JobRun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    /// The Pod's name.
    pub name: String,
    /// The Pod's uid (deletes carry it as a precondition); empty for a Pod recorded at its
    /// creation until its watch event arrives.
    pub uid: String,
    /// Which attempt of its run it is (1-based).
    pub attempt: i32,
    /// What its status says.
    pub report: PodReport,
    /// It is being deleted (graceful termination).
    pub deleting: bool,
    /// When its deletion is due (`metadata.deletionTimestamp`: the end of its grace period).
    pub deleted_at: Option<DateTime<Utc>>,
    /// The position of the operator's tracking finalizer in `metadata.finalizers`, while the
    /// Pod carries it ([`crate::pod::TRACKING_FINALIZER`]).
    pub tracking: Option<usize>,
}

impl PodView {
    /// The view of `pod` and the uid of its controller (the JobRun of a Pod the operator
    /// created, the Job of a Job executor's Pod), or `None` when it is not a JobRun's Pod or
    /// has no controller: a Pod counts as a run's only by its controller ownerReference, never
    /// by its name or labels.
    pub fn of(pod: &Pod) -> Option<(String, PodView)> {
        pod.labels().get(JOBRUN_LABEL)?;
        let owner = controller_uid(pod)?;
        let name = pod.name_any();
        let attempt = pod
            .labels()
            .get(ATTEMPT_LABEL)
            .and_then(|a| a.parse().ok())
            .or_else(|| name.rsplit_once('-').and_then(|(_, n)| n.parse().ok()))
            .unwrap_or(1);
        let view = PodView {
            name,
            uid: pod.uid().unwrap_or_default(),
            attempt,
            report: pod_report(pod),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            deleted_at: pod
                .metadata
                .deletion_timestamp
                .as_ref()
                .and_then(crate::pod::chrono_time),
            tracking: pod
                .finalizers()
                .iter()
                .position(|f| f == crate::pod::TRACKING_FINALIZER),
        };
        Some((owner, view))
    }
}

/// The uid of `object`'s controller ownerReference, if it has one.
pub fn controller_uid(object: &impl ResourceExt) -> Option<String> {
    object
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

/// The uid of a run, or an empty string for one the API server has not stored (it owns
/// nothing).
fn uid_of(run: &JobRun) -> String {
    run.uid().unwrap_or_default()
}

/// Each owner's Pods (by the owner's uid), ordered by attempt. A `Vec`, not a `BTreeMap`:
/// nearly every run has one attempt, and a B-tree's first node reserves room for eleven
/// (about 1.7 KB per run here).
type PodsByOwner = HashMap<String, Vec<PodView>>;

/// Files `view` among its run's attempts, replacing the same attempt's older view unless
/// `keep_older` (a Pod created here must not overwrite what the watch already showed).
fn file(attempts: &mut Vec<PodView>, view: PodView, keep_older: bool) {
    match attempts.binary_search_by_key(&view.attempt, |v| v.attempt) {
        Ok(_) if keep_older => {}
        Ok(i) => attempts[i] = view,
        Err(i) => attempts.insert(i, view),
    }
}

/// The Pods of every JobRun (and of every Job of a run), by the uid of their controller, then
/// by attempt; fed by the Pod watch. Keyed by uid, not by name: a JobRun deleted and created
/// again under its name is another run, and neither sees the other's Pods. It also
/// remembers, for a while, which attempts' Pods were deleted (by owner uid), so a run whose
/// Pod was deleted before its status named it is not mistaken for one that never started.
#[derive(Debug)]
pub struct PodIndex {
    pods: RwLock<(PodsByOwner, Option<PodsByOwner>)>,
    deleted: Mutex<(VecDeque<String>, HashMap<String, i32>)>,
    ready: (watch::Sender<bool>, watch::Receiver<bool>),
}

impl Default for PodIndex {
    fn default() -> Self {
        PodIndex {
            pods: RwLock::default(),
            deleted: Mutex::default(),
            ready: watch::channel(false),
        }
    }
}

impl PodIndex {
    /// Files one Pod watch event.
    pub fn apply(&self, event: &watcher::Event<Pod>) {
        let mut guard = self.pods.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (live, relisted) = &mut *guard;
        match event {
            watcher::Event::Apply(pod) => {
                if let Some((owner, view)) = PodView::of(pod) {
                    file(live.entry(owner).or_default(), view, false);
                }
            }
            watcher::Event::Delete(pod) => {
                if let Some((owner, view)) = PodView::of(pod) {
                    if let Some(attempts) = live.get_mut(&owner) {
                        attempts.retain(|v| v.attempt != view.attempt);
                        if attempts.is_empty() {
                            live.remove(&owner);
                        }
                    }
                    self.remember_deleted(owner, view.attempt);
                }
            }
            watcher::Event::Init => *relisted = Some(HashMap::new()),
            watcher::Event::InitApply(pod) => {
                if let Some((owner, view)) = PodView::of(pod) {
                    file(
                        relisted.get_or_insert_default().entry(owner).or_default(),
                        view,
                        false,
                    );
                }
            }
            watcher::Event::InitDone => {
                *live = relisted.take().unwrap_or_default();
                self.ready.0.send_replace(true);
            }
        }
    }

    fn remember_deleted(&self, owner: String, attempt: i32) {
        let mut guard = self
            .deleted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (order, attempts) = &mut *guard;
        let latest = attempts.entry(owner.clone()).or_insert(attempt);
        *latest = (*latest).max(attempt);
        order.push_back(owner);
        while order.len() > TOMBSTONES {
            if let Some(oldest) = order.pop_front() {
                attempts.remove(&oldest);
            }
        }
    }

    /// The latest attempt of `run` whose Pod the watch reported deleted lately (only this
    /// run's: not those of an earlier JobRun of the same name).
    pub fn deleted_attempt(&self, run: &JobRun) -> Option<i32> {
        let guard = self
            .deleted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.1.get(&uid_of(run)).copied()
    }

    /// Records a Pod this process has just created (or found owned by `run`), before its watch
    /// event arrives, so the next reconcile of its run (or of a sibling) sees the attempt as
    /// started.
    pub fn created(&self, run: &JobRun, view: PodView) {
        let uid = uid_of(run);
        if uid.is_empty() {
            return;
        }
        let mut guard = self.pods.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        file(guard.0.entry(uid).or_default(), view, true);
    }

    /// Every Pod of `run` (those it controls), by attempt.
    pub fn of_run(&self, run: &JobRun) -> BTreeMap<i32, PodView> {
        self.of_owner(&uid_of(run))
    }

    /// Every Pod controlled by the object with `uid` (a JobRun, or a run's Job), by attempt.
    pub fn of_owner(&self, uid: &str) -> BTreeMap<i32, PodView> {
        let guard = self.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .0
            .get(uid)
            .map(|attempts| attempts.iter().map(|v| (v.attempt, v.clone())).collect())
            .unwrap_or_default()
    }

    /// Notes that attempt `attempt` of `run` no longer carries the tracking finalizer (the
    /// operator removed it), so a reconcile before the watch shows it does not remove it again.
    pub fn released(&self, run: &JobRun, attempt: i32) {
        let mut guard = self.pods.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(view) = guard
            .0
            .get_mut(&uid_of(run))
            .and_then(|attempts| attempts.iter_mut().find(|v| v.attempt == attempt))
        {
            view.tracking = None;
        }
    }

    /// The Pod of the latest attempt of `run`, if any.
    pub fn latest(&self, run: &JobRun) -> Option<PodView> {
        let guard = self.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .0
            .get(&uid_of(run))
            .and_then(|attempts| attempts.last().cloned())
    }

    /// How many Pods the index holds (for tests and benches).
    pub fn len(&self) -> usize {
        let guard = self.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.0.values().map(Vec::len).sum()
    }

    /// True when it holds no Pod.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the first list of Pods has been filed.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.1.clone();
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

type JobsByRun = HashMap<String, JobView>;

/// What the operator knows of a JobRun's batch/v1 Job (the `Job` executor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobView {
    /// The Job's name.
    pub name: String,
    /// The Job's uid (its Pods are filed under it); empty until its watch event arrives.
    pub uid: String,
    /// What its status says.
    pub report: JobReport,
    /// It is being deleted.
    pub deleting: bool,
    /// The position of the operator's tracking finalizer in `metadata.finalizers`, while the
    /// Job carries it ([`crate::pod::TRACKING_FINALIZER`]).
    pub tracking: Option<usize>,
}

impl JobView {
    /// The view of `job` and the uid of its controller, or `None` when it is not a JobRun's.
    pub fn of(job: &Job) -> Option<(String, JobView)> {
        job.labels().get(JOBRUN_LABEL)?;
        let owner = controller_uid(job)?;
        let view = JobView {
            name: job.name_any(),
            uid: job.uid().unwrap_or_default(),
            report: job_report(job),
            deleting: job.metadata.deletion_timestamp.is_some(),
            tracking: job
                .finalizers()
                .iter()
                .position(|f| f == crate::pod::TRACKING_FINALIZER),
        };
        Some((owner, view))
    }
}

/// The Job of every JobRun run by the `Job` executor, by the uid of the JobRun that controls
/// it; fed by the Job watch (only with `--job-executor`). Deleted Jobs are remembered for a
/// while, by the same uid, as Pods are.
#[derive(Debug, Default)]
pub struct JobIndex {
    jobs: RwLock<(JobsByRun, Option<JobsByRun>)>,
    deleted: Mutex<(VecDeque<String>, HashSet<String>)>,
}

impl JobIndex {
    /// Files one Job watch event.
    pub fn apply(&self, event: &watcher::Event<Job>) {
        let view = JobView::of;
        let mut guard = self.jobs.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (live, relisted) = &mut *guard;
        match event {
            watcher::Event::Apply(job) => {
                if let Some((key, view)) = view(job) {
                    live.insert(key, view);
                }
            }
            watcher::Event::Delete(job) => {
                if let Some((key, _)) = view(job) {
                    live.remove(&key);
                    let mut deleted = self
                        .deleted
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if deleted.1.insert(key.clone()) {
                        deleted.0.push_back(key);
                    }
                    while deleted.0.len() > TOMBSTONES {
                        if let Some(oldest) = deleted.0.pop_front() {
                            deleted.1.remove(&oldest);
                        }
                    }
                }
            }
            watcher::Event::Init => *relisted = Some(HashMap::new()),
            watcher::Event::InitApply(job) => {
                if let Some((key, view)) = view(job) {
                    relisted.get_or_insert_default().insert(key, view);
                }
            }
            watcher::Event::InitDone => *live = relisted.take().unwrap_or_default(),
        }
    }

    /// Records a Job this process has just created (or found owned by `run`), before its
    /// watch event arrives.
    pub fn created(&self, run: &JobRun, name: &str) {
        let uid = uid_of(run);
        if uid.is_empty() {
            return;
        }
        let mut guard = self.jobs.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.0.entry(uid).or_insert_with(|| JobView {
            name: name.to_string(),
            uid: String::new(),
            report: JobReport::default(),
            deleting: false,
            tracking: Some(0),
        });
    }

    /// Notes that the Job of `run` no longer carries the tracking finalizer (until its next
    /// watch event says otherwise).
    pub fn released(&self, run: &JobRun) {
        let mut guard = self.jobs.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(view) = guard.0.get_mut(&uid_of(run)) {
            view.tracking = None;
        }
    }

    /// The Job of `run`, if any.
    pub fn of_run(&self, run: &JobRun) -> Option<JobView> {
        let guard = self.jobs.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.0.get(&uid_of(run)).cloned()
    }

    /// True when the watch reported the Job of `run` deleted lately (not that of an earlier
    /// JobRun of the same name).
    pub fn was_deleted(&self, run: &JobRun) -> bool {
        let deleted = self
            .deleted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        deleted.1.contains(&uid_of(run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{JobRunSpec, JobRunTemplate};
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
                task_ref: None,
                env: Vec::new(),
                args: None,
                run: JobRunTemplate::default(),
            },
            status: None,
        }
    }

    fn deliver(index: &RunIndex, writer: &mut Writer<JobRun>, store: &Store<JobRun>, event: Watch<JobRun>) {
        index.apply(&event, store);
        writer.apply_watcher_event(&event);
    }

    fn sorted(mut names: Vec<String>) -> Vec<String> {
        names.sort();
        names
    }

    #[test]
    fn the_run_index_follows_applies_deletes_and_a_changed_schedule_name() {
        let (store, mut writer) = reflector::store();
        let index = RunIndex::default();
        deliver(&index, &mut writer, &store, Watch::Init);
        deliver(&index, &mut writer, &store, Watch::InitApply(run("a-1", "a")));
        deliver(&index, &mut writer, &store, Watch::InitDone);
        deliver(&index, &mut writer, &store, Watch::Apply(run("a-2", "a")));
        deliver(&index, &mut writer, &store, Watch::Apply(run("b-1", "b")));
        assert_eq!(sorted(index.of_schedule("default", "a")), ["a-1", "a-2"]);
        assert_eq!(index.of_schedule("default", "b"), ["b-1"]);
        assert!(index.of_schedule("other", "a").is_empty());

        deliver(&index, &mut writer, &store, Watch::Delete(run("a-1", "a")));
        deliver(&index, &mut writer, &store, Watch::Apply(run("b-1", "c")));
        assert_eq!(index.of_schedule("default", "a"), ["a-2"]);
        assert!(index.of_schedule("default", "b").is_empty());
        assert_eq!(index.of_schedule("default", "c"), ["b-1"]);
    }

    #[test]
    fn a_relist_forgets_runs_deleted_while_the_watch_was_down() {
        let (store, mut writer) = reflector::store();
        let index = RunIndex::default();
        deliver(&index, &mut writer, &store, Watch::Init);
        deliver(&index, &mut writer, &store, Watch::InitApply(run("a-1", "a")));
        deliver(&index, &mut writer, &store, Watch::InitApply(run("a-2", "a")));
        deliver(&index, &mut writer, &store, Watch::InitDone);
        deliver(&index, &mut writer, &store, Watch::Init);
        deliver(&index, &mut writer, &store, Watch::InitApply(run("a-2", "a")));
        // Until the relist is complete, lookups see the old state, as the store does.
        assert_eq!(sorted(index.of_schedule("default", "a")), ["a-1", "a-2"]);
        deliver(&index, &mut writer, &store, Watch::InitDone);
        assert_eq!(index.of_schedule("default", "a"), ["a-2"]);
    }

    #[test]
    fn a_run_deleted_here_is_hidden_until_its_watch_event_or_a_relist() {
        let (store, mut writer) = reflector::store();
        let index = RunIndex::default();
        let with_uid = |name: &str, uid: &str| {
            let mut r = run(name, "a");
            r.metadata.uid = Some(uid.into());
            Arc::new(r)
        };
        let visible = |runs: &[Arc<JobRun>]| {
            let mut runs = runs.to_vec();
            index.retain_not_deleted(&mut runs);
            runs.iter().map(|r| r.name_any()).collect::<Vec<_>>()
        };
        let cached = [with_uid("a-1", "u1"), with_uid("a-2", "u2")];
        deliver(&index, &mut writer, &store, Watch::Apply((*cached[0]).clone()));
        index.deleted_by_us("u1".into());
        assert_eq!(visible(&cached), ["a-2"], "deleted here, still cached: hidden");
        let again = with_uid("a-1", "u3");
        assert_eq!(visible(&[again]), ["a-1"], "a run created again has another uid");
        deliver(&index, &mut writer, &store, Watch::Delete((*cached[0]).clone()));
        index.deleted_by_us("u2".into());
        deliver(&index, &mut writer, &store, Watch::Init);
        deliver(&index, &mut writer, &store, Watch::InitDone);
        assert_eq!(
            visible(&cached),
            ["a-1", "a-2"],
            "the watch event and a relist end it"
        );
    }

    #[test]
    fn a_deleted_run_is_remembered_by_uid_too() {
        let (store, mut writer) = reflector::store();
        let index = RunIndex::default();
        let mut first = run("a-1", "a");
        first.metadata.uid = Some("u1".into());
        deliver(&index, &mut writer, &store, Watch::Apply(first.clone()));
        deliver(&index, &mut writer, &store, Watch::Delete(first));
        assert!(index.was_deleted("default", "a-1"));
        assert!(index.was_deleted_uid("u1"));
        assert!(
            !index.was_deleted_uid("u2"),
            "the run created again under its name"
        );
    }

    #[test]
    fn runs_are_filed_under_their_task_too() {
        let (store, mut writer) = reflector::store();
        let index = RunIndex::default();
        let mut tasked = run("a-1", "a");
        tasked.spec.task_ref = Some(crate::api::TaskRef { name: "t".into() });
        deliver(&index, &mut writer, &store, Watch::Apply(tasked));
        assert_eq!(index.of_task("default", "t"), ["a-1"]);
        assert_eq!(index.of_schedule("default", "a"), ["a-1"]);
    }

    fn pod(name: &str, run: &str, attempt: i32, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": {JOBRUN_LABEL: run, ATTEMPT_LABEL: attempt.to_string()},
                "ownerReferences": [{"apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun",
                    "name": run, "uid": format!("uid-{run}"), "controller": true}],
            },
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    /// Run `name` as stored, with uid `uid-<name>`.
    fn stored(name: &str) -> JobRun {
        let mut r = run(name, "s");
        r.metadata.uid = Some(format!("uid-{name}"));
        r
    }

    #[test]
    fn a_pod_counts_as_a_runs_only_by_its_controller_uid() {
        let pods = PodIndex::default();
        let mut foreign = pod("r-1", "r", 1, "Running");
        foreign.metadata.owner_references = None;
        pods.apply(&Watch::Apply(foreign));
        assert!(
            pods.is_empty(),
            "a labelled Pod without a controller is nobody's attempt"
        );
        pods.apply(&Watch::Apply(pod("r-1", "r", 1, "Running")));
        pods.apply(&Watch::Delete(pod("r-1", "r", 1, "Running")));
        let mut again = stored("r");
        again.metadata.uid = Some("uid-r-again".into());
        assert_eq!(pods.deleted_attempt(&stored("r")), Some(1));
        assert_eq!(
            pods.deleted_attempt(&again),
            None,
            "a JobRun created again under the name does not inherit the old one's deleted Pod"
        );
    }

    #[test]
    fn the_pod_index_keeps_each_attempt_until_its_pod_is_deleted() {
        let pods = PodIndex::default();
        pods.apply(&Watch::Init);
        pods.apply(&Watch::InitApply(pod("r-1", "r", 1, "Failed")));
        pods.apply(&Watch::InitDone);
        pods.apply(&Watch::Apply(pod("r-2", "r", 2, "Running")));
        let attempts: Vec<i32> = pods.of_owner("uid-r").keys().copied().collect();
        assert_eq!(attempts, [1, 2]);
        assert_eq!(pods.latest(&stored("r")).map(|p| p.name), Some("r-2".into()));
        pods.apply(&Watch::Delete(pod("r-2", "r", 2, "Running")));
        assert_eq!(pods.latest(&stored("r")).map(|p| p.attempt), Some(1));
        pods.apply(&Watch::Delete(pod("r-1", "r", 1, "Failed")));
        assert!(pods.is_empty());
    }

    #[test]
    fn a_pod_created_here_counts_before_its_watch_event() {
        let pods = PodIndex::default();
        let view = PodView {
            name: "r-1".into(),
            uid: String::new(),
            attempt: 1,
            report: PodReport::default(),
            deleting: false,
            deleted_at: None,
            tracking: None,
        };
        pods.created(&stored("r"), view.clone());
        assert_eq!(pods.latest(&stored("r")), Some(view));
        pods.apply(&Watch::Apply(pod("r-1", "r", 1, "Running")));
        assert_eq!(
            pods.latest(&stored("r")).map(|p| p.report.progress),
            Some(crate::pod::PodProgress::Running),
            "the watch event replaces what was recorded at creation"
        );
    }
}
