//! What the watch caches keep. Objects are trimmed on their way into the reflector stores to
//! the fields the reconcilers read: at 10,000 Schedules the caches are most of the operator's
//! memory, and k8s-openapi's types are far larger in memory than on the wire.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus, PodTemplateSpec};
use kube::ResourceExt;
use kube::runtime::watcher::Event;

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
/// (run-now), without managedFields and the last-applied copy.
pub fn trim_schedule(schedule: &mut Schedule) {
    trim_metadata(schedule);
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
        run.spec.run.template = PodTemplateSpec::default();
    }
}

/// A Pod keeps what `crate::pod::pod_report` reads: its phase, start time, reason and
/// message, and the status of its first container only, which then stands first. The spec
/// goes entirely (a PodSpec with one Container is 3.5 KB in memory): `pod_report` takes the
/// first status when there is no spec to name the first container.
pub fn trim_pod(pod: &mut Pod) {
    trim_metadata(pod);
    pod.metadata.annotations = None;
    let first = pod
        .spec
        .take()
        .and_then(|spec| spec.containers.into_iter().next())
        .map(|c| c.name);
    if let Some(status) = pod.status.take() {
        let run_container = status.container_statuses.and_then(|statuses| {
            let index = statuses
                .iter()
                .position(|c| Some(&c.name) == first.as_ref())
                .unwrap_or(0);
            statuses.into_iter().nth(index)
        });
        pod.status = Some(PodStatus {
            phase: status.phase,
            start_time: status.start_time,
            reason: status.reason,
            message: status.message,
            container_statuses: run_container.map(|c| {
                vec![ContainerStatus {
                    name: c.name,
                    state: c.state,
                    ..ContainerStatus::default()
                }]
            }),
            ..PodStatus::default()
        });
    }
}

/// True for a Pod that is Succeeded or Failed.
pub fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Finished Pods (Succeeded or Failed) leave the cache: the JobRun reconciler reads a Pod only
/// while its run is unfinished. The update that finishes a cached Pod becomes a deletion from
/// the cache (the reconcile it triggers still runs, and finds the finished Pod in
/// `Context::take_finished_pod`); finished Pods in the initial list are not cached at all (a
/// run that still needs one GETs it, see `jobrun::follow`), so the final status is read once
/// per attempt.
pub fn forget_finished_pod(event: Event<Pod>) -> Option<Event<Pod>> {
    match event {
        Event::Apply(pod) if is_finished(&pod) => Some(Event::Delete(pod)),
        Event::InitApply(pod) if is_finished(&pod) => None,
        other => Some(other),
    }
}

/// True when `object` carries fields the trimmers drop (for tests of callers).
pub fn has_bookkeeping(object: &impl kube::Resource) -> bool {
    object.meta().managed_fields.is_some() || object.annotations().contains_key(LAST_APPLIED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::pod_report;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "nightly-1-1",
                "labels": {"horolog.dev/jobrun": "nightly-1"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
            },
            "spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["sh", "-c", "echo ok"]},
                {"name": "sidecar", "image": "busybox"},
            ]},
            "status": {
                "phase": "Succeeded",
                "startTime": "2026-01-01T08:00:00Z",
                "hostIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "sidecar", "image": "busybox", "imageID": "x", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "message": "side"}}},
                    {"name": "main", "image": "busybox", "imageID": "x", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "message": "ok",
                        "startedAt": "2026-01-01T08:00:00Z", "finishedAt": "2026-01-01T08:00:02Z"}}},
                ],
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_trimmed_pod_reports_exactly_what_the_full_pod_reports() {
        let full = pod();
        let mut trimmed = full.clone();
        trim_pod(&mut trimmed);
        assert_eq!(pod_report(&trimmed), pod_report(&full));
        assert_eq!(pod_report(&trimmed).result.as_deref(), Some("ok"));
        assert!(!has_bookkeeping(&trimmed));
        assert_eq!(
            trimmed.labels()["horolog.dev/jobrun"],
            "nightly-1",
            "labels are kept"
        );
        let status = trimmed.status.unwrap_or_default();
        assert!(status.host_ip.is_none() && status.conditions.is_none());
        assert!(trimmed.spec.is_none(), "the spec is not kept");
        assert_eq!(
            status.container_statuses.map(|c| c.len()),
            Some(1),
            "only the run's container"
        );
    }

    #[test]
    fn finished_pods_leave_the_cache_and_running_ones_stay() {
        let finished = pod();
        assert!(matches!(
            forget_finished_pod(Event::Apply(finished.clone())),
            Some(Event::Delete(_))
        ));
        assert!(forget_finished_pod(Event::InitApply(finished.clone())).is_none());
        let mut running = finished;
        running.status.as_mut().unwrap().phase = Some("Running".into());
        assert!(matches!(
            forget_finished_pod(Event::Apply(running.clone())),
            Some(Event::Apply(_))
        ));
        assert!(matches!(
            forget_finished_pod(Event::InitApply(running)),
            Some(Event::InitApply(_))
        ));
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
        assert_eq!(done.spec.run.template, PodTemplateSpec::default());
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
