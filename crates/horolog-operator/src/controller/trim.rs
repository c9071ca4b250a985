//! What the watch caches keep. Objects are trimmed on their way into the reflector stores to
//! the fields the reconcilers read: at 10,000 Schedules the caches are most of the operator's
//! memory, and k8s-openapi's types are far larger in memory than on the wire.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::{JobRun, Schedule};

/// The annotation `kubectl apply` (client side) writes: a full copy of the object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops bookkeeping no reconciler reads: managedFields and kubectl's last-applied copy.
fn trim_metadata(object: &mut impl kube::Resource) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// A Schedule keeps its spec and status (the reconciler reads both) and its annotations
/// (run-now), without the last-applied copy; of managedFields it keeps one entry holding only
/// the latest `time` of a write that was not to status: when its spec last changed, at the
/// latest (see [`spec_changed_at`]).
/// Its pod template is shared with every cached object that holds the same one
/// ([`share_template`]).
pub fn trim_schedule(schedule: &mut Schedule) {
    if let Some(template) = schedule
        .spec
        .job_template
        .as_mut()
        .and_then(|t| t.spec.template.as_mut())
    {
        share_template(template);
    }
    let changed = spec_changed_at(schedule);
    trim_metadata(schedule);
    schedule.metadata.managed_fields = changed.map(|time| {
        vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                time: Some(time),
                ..Default::default()
            },
        ]
    });
}

/// The latest `managedFields[].time` of a write to the object itself (not its status): no
/// earlier than the last change of its spec.
pub fn spec_changed_at(
    object: &impl kube::Resource,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    object
        .meta()
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.subresource.as_deref().is_none_or(str::is_empty))
        .filter_map(|entry| entry.time.clone())
        .max_by_key(|time| time.0)
}

/// A JobRun keeps everything while it can still start a Pod: a staged run (created ahead of
/// its fire time) and a pending, waiting or running one keep their pod template (the fire
/// time's Pod, and each retry's, is made from it without another read), `env`, `args`,
/// labels and annotations (the Job executor copies both); only managedFields and kubectl's
/// last-applied copy go, and the template is shared with the Schedule's when they are the
/// same ([`share_template`]), so a staged run adds its metadata, spec and status to the cache
/// but no second template.
///
/// Once finished it keeps only what the reconcilers read of a finished run: its names, labels
/// and owner (the run, Task and Backfill indexes, the Schedule's settling), its fire time,
/// `resultTTL`, and of its status the phase, reason, message (the Schedule's Events name why a
/// run failed or was missed), attempts, Pod name and times. Its pod template, `env` and `args`
/// (nothing starts it again), its `result`, `duration` and conditions (written, never read
/// back), and annotations other than horolog's are dropped: about 2 KB stay
/// (`tests/cache_memory.rs`), the one run a Schedule keeps at history limit 1.
pub fn trim_jobrun(run: &mut JobRun) {
    trim_metadata(run);
    let Some(status) = run
        .status
        .as_mut()
        .filter(|s| s.phase.is_some_and(|p| p.is_finished()))
    else {
        if let Some(template) = run.spec.run.template.as_mut() {
            share_template(template);
        }
        return;
    };
    status.result = None;
    status.duration = None;
    status.conditions = Vec::new();
    run.spec.run.template = None;
    run.spec.env = Vec::new();
    run.spec.args = None;
    if let Some(annotations) = run.metadata.annotations.as_mut() {
        annotations.retain(|key, _| key.starts_with(HOROLOG_PREFIX));
        if annotations.is_empty() {
            run.metadata.annotations = None;
        }
    }
}

/// The prefix of horolog's own annotations (`horolog.dev/run-now`, `horolog.dev/cancel`).
const HOROLOG_PREFIX: &str = "horolog.dev/";

/// Makes `template` the cached copy of an equal template when one is cached, so the caches
/// hold each distinct pod template once: a Schedule's and those of its staged and unfinished
/// runs (copied from it) are one, and so are the templates of Schedules that run the same Pod.
/// A pod template is the largest part of a cached Schedule or JobRun (1,776 bytes inline and
/// its containers' on top). An `Arc` is never written through (`Arc::make_mut` copies a shared
/// one), so sharing is safe; an object whose template is edited gets the new one from the
/// watch, shared in turn.
pub fn share_template(template: &mut Arc<PodTemplateSpec>) {
    let Some(hash) = content_hash(template) else {
        return;
    };
    SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .share(hash, template);
}

/// The templates [`share_template`] hands out, by the hash of their content. It holds them
/// weakly: a template no cached object holds any more is dropped, and its entry is swept.
static SHARED: LazyLock<Mutex<SharedTemplates>> = LazyLock::new(Mutex::default);

#[derive(Default)]
struct SharedTemplates {
    by_hash: HashMap<u64, Vec<Weak<PodTemplateSpec>>>,
    /// Templates added since the last sweep of dropped ones.
    added: usize,
    /// Entries the last sweep left.
    kept: usize,
}

/// Sweep the dropped templates' entries after this many additions, or as many as the last
/// sweep kept if more: at most about as many dropped entries as held ones wait for a sweep (a
/// dropped template's entry keeps its 1.8 KB allocation until it is swept), and a sweep's cost
/// is spread over as many additions as it visits entries.
const SWEEP_EVERY: usize = 1024;

impl SharedTemplates {
    fn share(&mut self, hash: u64, template: &mut Arc<PodTemplateSpec>) {
        let same = self.by_hash.entry(hash).or_default();
        same.retain(|held| held.strong_count() > 0);
        if let Some(held) = same
            .iter()
            .filter_map(Weak::upgrade)
            .find(|held| **held == **template)
        {
            *template = held;
            return;
        }
        same.push(Arc::downgrade(template));
        self.added += 1;
        if self.added >= SWEEP_EVERY.max(self.kept) {
            self.by_hash.retain(|_, same| {
                same.retain(|held| held.strong_count() > 0);
                !same.is_empty()
            });
            self.added = 0;
            self.kept = self.by_hash.len();
        }
    }
}

/// A hash of the template's JSON form; `None` if it does not serialize (then it is not shared).
fn content_hash(template: &PodTemplateSpec) -> Option<u64> {
    struct Hashing(DefaultHasher);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(DefaultHasher::new());
    serde_json::to_writer(&mut hashing, template).ok()?;
    Some(hashing.0.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    /// True when `object` carries fields the trimmers drop.
    fn has_bookkeeping(object: &impl kube::Resource) -> bool {
        object.meta().managed_fields.is_some() || object.annotations().contains_key(LAST_APPLIED)
    }

    #[test]
    fn a_finished_jobrun_loses_its_template_and_a_pending_one_keeps_it() {
        let run: JobRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun",
            "metadata": {"name": "r", "managedFields": [{"manager": "horolog"}]},
            "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
            "status": {"phase": "Pending"},
        }))
        .unwrap();
        let mut pending = run.clone();
        trim_jobrun(&mut pending);
        assert_eq!(pending.spec, run.spec);
        assert!(!has_bookkeeping(&pending));
        let mut done = run.clone();
        done.status.as_mut().unwrap().phase = Some(crate::api::JobRunPhase::Succeeded);
        trim_jobrun(&mut done);
        assert_eq!(done.spec.run.template, None);
    }

    #[test]
    fn a_finished_jobrun_keeps_only_what_the_reconcilers_read() {
        let run: JobRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun",
            "metadata": {"name": "r", "labels": {"horolog.dev/schedule": "s"},
                         "annotations": {"horolog.dev/run-now": "1", "team": "x"},
                         "ownerReferences": [{"apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule",
                                              "name": "s", "uid": "u", "controller": true}]},
            "spec": {"scheduleName": "s", "fireTime": "2026-01-01T00:00:00Z", "resultTTL": "1h",
                     "taskRef": {"name": "t"}, "env": [{"name": "A", "value": "1"}], "args": ["x"]},
            "status": {"phase": "Failed", "reason": "Error", "message": "exit code 1", "attempts": 1,
                       "podName": "r-1", "startTime": "2026-01-01T00:00:01Z",
                       "completionTime": "2026-01-01T00:00:02Z", "duration": "1s", "exitCode": 1,
                       "result": "a long termination message",
                       "conditions": [{"type": "Failed", "status": "True", "reason": "Error",
                                       "message": "m", "lastTransitionTime": "2026-01-01T00:00:02Z"}]},
        }))
        .unwrap();
        let mut trimmed = run.clone();
        trim_jobrun(&mut trimmed);
        let (status, kept) = (trimmed.status.clone().unwrap(), run.status.clone().unwrap());
        assert_eq!(
            (
                status.phase,
                status.reason,
                status.message,
                status.attempts,
                status.pod_name
            ),
            (
                kept.phase,
                kept.reason,
                kept.message,
                kept.attempts,
                kept.pod_name
            )
        );
        assert_eq!(
            (status.start_time, status.completion_time, status.exit_code),
            (kept.start_time, kept.completion_time, kept.exit_code)
        );
        assert_eq!(
            (status.result, status.duration, status.conditions.len()),
            (None, None, 0)
        );
        assert_eq!(trimmed.spec.run.result_ttl, run.spec.run.result_ttl);
        assert_eq!(trimmed.spec.task_ref, run.spec.task_ref);
        assert_eq!((trimmed.spec.env.len(), trimmed.spec.args.clone()), (0, None));
        assert_eq!(trimmed.labels(), run.labels());
        assert_eq!(trimmed.owner_references(), run.owner_references());
        assert_eq!(
            trimmed.annotations().keys().collect::<Vec<_>>(),
            ["horolog.dev/run-now"]
        );
        let mut running = run.clone();
        running.status.as_mut().unwrap().phase = Some(crate::api::JobRunPhase::Running);
        let mut trimmed_running = running.clone();
        trim_jobrun(&mut trimmed_running);
        assert_eq!(
            trimmed_running.spec, running.spec,
            "an unfinished run keeps its spec"
        );
        assert_eq!(trimmed_running.status, running.status);
    }

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"team": "x"}},
            "spec": {"containers": [{"name": "main", "image": image, "command": ["true"]}]},
        }))
        .unwrap()
    }

    fn schedule_with(template: PodTemplateSpec) -> Schedule {
        let mut schedule: Schedule = serde_json::from_value(serde_json::json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": "s"},
            "spec": {"trigger": {"cron": "* * * * *"}, "jobTemplate": {"spec": {}}},
        }))
        .unwrap();
        schedule.spec.job_template.as_mut().unwrap().spec.template = Some(Arc::new(template));
        schedule
    }

    fn run_with(template: PodTemplateSpec, phase: &str) -> JobRun {
        let mut run: JobRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun",
            "metadata": {"name": "r"}, "spec": {"scheduleName": "s"}, "status": {"phase": phase},
        }))
        .unwrap();
        run.spec.run.template = Some(Arc::new(template));
        run
    }

    fn template_of(schedule: &Schedule) -> &Arc<PodTemplateSpec> {
        schedule
            .spec
            .job_template
            .as_ref()
            .unwrap()
            .spec
            .template
            .as_ref()
            .unwrap()
    }

    #[test]
    fn a_schedule_and_its_unfinished_runs_hold_one_template() {
        // An image no other test uses: the shared templates are process-wide.
        let image = "registry.example/one-template:1";
        let mut schedule = schedule_with(template(image));
        let mut pending = run_with(template(image), "Pending");
        let mut running = run_with(template(image), "Running");
        let mut other = run_with(template("registry.example/one-template:2"), "Pending");
        for run in [&mut pending, &mut running, &mut other] {
            trim_jobrun(run);
        }
        trim_schedule(&mut schedule);
        let shared = template_of(&schedule);
        assert!(Arc::ptr_eq(shared, pending.spec.run.template.as_ref().unwrap()));
        assert!(Arc::ptr_eq(shared, running.spec.run.template.as_ref().unwrap()));
        assert!(!Arc::ptr_eq(shared, other.spec.run.template.as_ref().unwrap()));
        assert_eq!(**shared, template(image), "sharing does not change the template");
        assert_eq!(
            other.spec.run.template.as_deref(),
            Some(&template("registry.example/one-template:2"))
        );
    }

    #[test]
    fn a_template_no_object_holds_is_dropped_and_its_entry_swept() {
        let mut shared = SharedTemplates::default();
        let mut held = Vec::new();
        for n in 0..3 * SWEEP_EVERY {
            let mut template = Arc::new(template(&format!("image:{n}")));
            let hash = content_hash(&template).unwrap();
            shared.share(hash, &mut template);
            // Keep one in ten; the rest are dropped at once, as a deleted object's would be.
            if n % 10 == 0 {
                held.push(template);
            }
        }
        assert!(
            shared.by_hash.len() <= held.len() + SWEEP_EVERY,
            "{} entries for {} held templates",
            shared.by_hash.len(),
            held.len()
        );
        let mut again = Arc::new(template("image:0"));
        shared.share(content_hash(&again).unwrap(), &mut again);
        assert!(Arc::ptr_eq(&again, &held[0]), "a held template is still shared");
    }

    #[test]
    fn a_schedule_keeps_its_run_now_annotation() {
        let mut schedule: Schedule = serde_json::from_value(serde_json::json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": "s", "annotations": {
                "horolog.dev/run-now": "1",
                "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"trigger": {"interval": "1m"},
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "m", "image": "b"}]}}}}},
        }))
        .unwrap();
        trim_schedule(&mut schedule);
        assert_eq!(
            schedule
                .annotations()
                .get("horolog.dev/run-now")
                .map(String::as_str),
            Some("1")
        );
        assert!(!has_bookkeeping(&schedule));
    }
}
