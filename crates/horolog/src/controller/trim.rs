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

/// A JobRun keeps everything while it can still start a Pod; once finished, its pod
/// template (the largest part) is dropped: nothing reads it again.
pub fn trim_jobrun(run: &mut JobRun) {
    trim_metadata(run);
    let finished = run
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(|p| p.is_finished());
    if finished {
        run.spec.run.template = None;
    }
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
