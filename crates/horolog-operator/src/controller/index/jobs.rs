//! The Job index: the batch/v1 Job of each run of the `Job` executor.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, RwLock};

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::runtime::watcher;

use super::{TOMBSTONES, controller_uid, uid_of};
use crate::api::{JOBRUN_LABEL, JobRun};
use crate::job::{JobReport, job_report};

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
