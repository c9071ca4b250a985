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

mod jobs;
mod pods;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::api::{JobRun, TASK_LABEL};

pub use jobs::{JobIndex, JobView};
pub use pods::{PodIndex, PodView};

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
pub(super) fn uid_of(run: &JobRun) -> String {
    run.uid().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::JOBRUN_LABEL;
    use crate::api::{JobRunSpec, JobRunTemplate};
    use crate::pod::{ATTEMPT_LABEL, PodReport};
    use k8s_openapi::api::core::v1::Pod;
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
