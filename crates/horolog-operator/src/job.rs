//! JobRun -> batch/v1 Job (the `Job` executor), and Job status -> the facts a JobRun's
//! status is made of.
//!
//! With `executor: Job` a run's attempt is a batch/v1 Job owned by the JobRun: the pod
//! template, `backoffLimit` and `activeDeadlineSeconds` go into the Job, so retries and
//! deadlines are the Job controller's, and Job features apply (podFailurePolicy, admission
//! by queueing systems such as Kueue through the labels and annotations of the JobRun's
//! template, which the Job carries).

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::api::{JobRun, SCHEDULE_LABEL};
use crate::names::{pod_name, run_labels};
use crate::pod::{PodError, TRACKING_FINALIZER, chrono_time, prepare_for_run, stored};

/// The Job of attempt `attempt` (1-based) of `jobrun`, running `template`: owned by the
/// JobRun, labelled (and its pods labelled) with the JobRun, attempt, Schedule and Task, with
/// the JobRun's own labels and annotations (a Kueue queue name, say), `restartPolicy: Never`,
/// the run's `backoffLimit` (default 0) and `activeDeadlineSeconds`, and the run's context
/// in every container's environment.
pub fn job_for(jobrun: &JobRun, template: &PodTemplateSpec, attempt: i32) -> Result<Job, PodError> {
    let (name, namespace, owner) = stored(jobrun)?;
    let horolog_labels = run_labels(jobrun, attempt);
    let mut labels = jobrun.labels().clone();
    labels.remove(SCHEDULE_LABEL);
    labels.extend(horolog_labels.iter().cloned());
    let mut pod_template = template.clone();
    let pod_meta = pod_template.metadata.get_or_insert_default();
    pod_meta.labels.get_or_insert_default().extend(horolog_labels);
    prepare_for_run(pod_template.spec.get_or_insert_default(), jobrun, attempt);
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(pod_name(&name, attempt)),
            namespace: Some(namespace),
            labels: Some(labels),
            annotations: jobrun.metadata.annotations.clone(),
            owner_references: Some(vec![owner]),
            // The Job cannot vanish (ttlSecondsAfterFinished, a user's delete) before the
            // run's status holds its outcome.
            finalizers: Some(vec![TRACKING_FINALIZER.to_string()]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            template: pod_template,
            backoff_limit: Some(jobrun.spec.run.backoff_limit.unwrap_or(0)),
            active_deadline_seconds: jobrun.spec.run.active_deadline_seconds,
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// Where a Job is, as far as a JobRun cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobReport {
    /// `spec.suspend` (held by a queueing system, say) and nothing running.
    pub suspended: bool,
    /// Pods running now.
    pub active: i32,
    /// Pods that failed so far (each a retry of the Job's).
    pub failed: i32,
    /// The Job finished: `Complete` (true) or `Failed` (false), with the condition's reason
    /// and message.
    pub outcome: Option<(bool, String, String)>,
    /// When the Job started.
    pub start_time: Option<DateTime<Utc>>,
    /// When it finished.
    pub completion_time: Option<DateTime<Utc>>,
}

/// Reads a Job's status.
pub fn job_report(job: &Job) -> JobReport {
    let status = job.status.clone().unwrap_or_default();
    let outcome = status.conditions.unwrap_or_default().into_iter().find_map(|c| {
        let finished = c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed");
        finished.then(|| {
            (
                c.type_ == "Complete",
                c.reason.unwrap_or_else(|| c.type_.clone()),
                c.message.unwrap_or_default(),
            )
        })
    });
    let active = status.active.unwrap_or(0);
    JobReport {
        suspended: job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false) && active == 0,
        active,
        failed: status.failed.unwrap_or(0),
        outcome,
        start_time: status.start_time.as_ref().and_then(chrono_time),
        completion_time: status.completion_time.as_ref().and_then(chrono_time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{JobRunSpec, JobRunTemplate};
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn jobrun() -> JobRun {
        let mut run = JobRun::new(
            "nightly-1767254400",
            JobRunSpec {
                schedule_name: Some("nightly".into()),
                run: JobRunTemplate {
                    backoff_limit: Some(2),
                    active_deadline_seconds: Some(600),
                    ..JobRunTemplate::default()
                },
                ..JobRunSpec::default()
            },
        );
        run.metadata.namespace = Some("reports".into());
        run.metadata.uid = Some("uid-1".into());
        run.metadata.labels = Some(
            [
                ("kueue.x-k8s.io/queue-name".to_string(), "batch".to_string()),
                (SCHEDULE_LABEL.to_string(), "nightly".to_string()),
            ]
            .into(),
        );
        run
    }

    fn template() -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    image: Some("busybox".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    #[test]
    fn the_job_carries_the_runs_template_limits_and_queue_label() {
        let job = job_for(&jobrun(), &template(), 1).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("nightly-1767254400-1"));
        let labels = job.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["kueue.x-k8s.io/queue-name"], "batch");
        assert_eq!(labels["horolog.dev/jobrun"], "nightly-1767254400");
        let owner = &job.metadata.owner_references.clone().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("JobRun", "uid-1"));
        assert_eq!(
            job.metadata.finalizers.clone().unwrap_or_default(),
            vec![TRACKING_FINALIZER.to_string()],
            "it cannot go before its outcome is recorded"
        );
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(2));
        assert_eq!(spec.active_deadline_seconds, Some(600));
        let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(
            pod_labels["horolog.dev/jobrun"], "nightly-1767254400",
            "its pods are indexed too"
        );
        assert_eq!(pod_labels["horolog.dev/attempt"], "1");
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let env: Vec<String> = pod.containers[0]
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert!(env.contains(&"HOROLOG_JOBRUN".to_string()), "{env:?}");
    }

    #[test]
    fn a_job_reports_its_outcome_from_its_conditions() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "spec": {"template": {}, "suspend": false},
            "status": {"active": 0, "failed": 3, "startTime": "2026-01-01T00:00:01Z",
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]},
        }))
        .unwrap();
        let report = job_report(&job);
        assert_eq!(
            report.outcome,
            Some((
                false,
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into()
            ))
        );
        assert_eq!(report.failed, 3);
        let suspended: Job =
            serde_json::from_value(serde_json::json!({"spec": {"template": {}, "suspend": true}})).unwrap();
        assert!(job_report(&suspended).suspended);
    }
}
