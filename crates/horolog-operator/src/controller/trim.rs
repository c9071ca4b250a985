//! What the watch caches keep. Objects are trimmed on their way into the reflector stores to
//! the fields the reconcilers read: at 10,000 Schedules the caches are most of the operator's
//! memory, and k8s-openapi's types are far larger in memory than on the wire.

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
pub fn trim_schedule(schedule: &mut Schedule) {
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

/// A JobRun keeps everything while it can still start a Pod. Once finished it keeps only what
/// the reconcilers read of a finished run: its names, labels and owner (the run, Task and
/// Backfill indexes, the Schedule's settling), its fire time, `resultTTL`, and of its status
/// the phase, reason, message (the Schedule's Events name why a run failed or was missed),
/// attempts, Pod name and times. Its pod template, `env` and `args` (nothing starts it
/// again), its `result`, `duration` and conditions (written, never read back), and
/// annotations other than horolog's are dropped: at history limit 1 a finished run is a
/// third of what the operator caches per Schedule.
pub fn trim_jobrun(run: &mut JobRun) {
    trim_metadata(run);
    let Some(status) = run
        .status
        .as_mut()
        .filter(|s| s.phase.is_some_and(|p| p.is_finished()))
    else {
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
