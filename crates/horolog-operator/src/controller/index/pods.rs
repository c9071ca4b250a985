//! The Pod index: what each run's Pods report, by attempt.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, RwLock};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::{TOMBSTONES, controller_uid, uid_of};
use crate::api::{JOBRUN_LABEL, JobRun};
use crate::pod::{ATTEMPT_LABEL, PodReport, pod_report};

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

/// Each owner's Pods (by the owner's uid), ordered by attempt. A `Vec`, not a `BTreeMap`:
/// nearly every run has one attempt, and a B-tree's first node reserves room for eleven
/// (about 1.7 KB per run here).
type PodsByOwner = HashMap<String, Vec<PodView>>;

/// Files `view` among its run's attempts, replacing the same attempt's older view unless
/// `keep_older` (a Pod created here must not overwrite what the watch already showed).
/// Room is made for exactly one more view: a `Vec`'s first growth reserves four, three of them
/// never used by a run with one attempt (the heap profile at 10,000 Schedules found the index
/// at twice the size of its views).
fn file(attempts: &mut Vec<PodView>, view: PodView, keep_older: bool) {
    match attempts.binary_search_by_key(&view.attempt, |v| v.attempt) {
        Ok(_) if keep_older => {}
        Ok(i) => attempts[i] = view,
        Err(i) => {
            attempts.reserve_exact(1);
            attempts.insert(i, view);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(n: i32) -> PodView {
        PodView {
            name: format!("r-{n}"),
            uid: String::new(),
            attempt: n,
            report: PodReport::default(),
            deleting: false,
            deleted_at: None,
            tracking: None,
        }
    }

    #[test]
    fn a_run_with_one_attempt_holds_room_for_one_view() {
        let mut attempts = Vec::new();
        file(&mut attempts, attempt(1), false);
        assert_eq!((attempts.len(), attempts.capacity()), (1, 1));
        file(&mut attempts, attempt(3), false);
        file(&mut attempts, attempt(2), false);
        let order: Vec<i32> = attempts.iter().map(|v| v.attempt).collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(attempts.capacity(), 3);
    }
}
