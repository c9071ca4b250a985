//! JobRun -> Pod, and Pod status -> the facts a JobRun's status is made of.

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{Container, ContainerState, EnvVar, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::{Resource, ResourceExt};

use crate::api::{JobRun, TaskSpec};
use crate::names::run_labels;

pub use crate::names::{ATTEMPT_LABEL, MAX_NAME_LEN, TRACKING_FINALIZER, pod_name, short_name};

/// A JobRun that cannot be turned into a Pod.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The JobRun has not been stored by the API server yet (no name, namespace or uid), so
    /// its Pod could not be owned by it.
    #[error("JobRun {name:?} has no {missing} yet")]
    NotStored {
        /// The JobRun's name, if any.
        name: String,
        /// The missing metadata field.
        missing: &'static str,
    },
    /// The JobRun has neither a pod template nor a Task that provides one.
    #[error("JobRun {name:?} has no pod template: set spec.template, or spec.taskRef to a Task that has one")]
    NoTemplate {
        /// The JobRun's name.
        name: String,
    },
}

/// What a JobRun runs: its own pod template, or its Task's with the run's `env` added to
/// every container (replacing same-named variables) and its `args` replacing the first
/// container's (APScheduler's kwargs and args). `None` when there is neither.
pub fn template_of(run: &JobRun, task: Option<&TaskSpec>) -> Option<PodTemplateSpec> {
    if let Some(template) = &run.spec.run.template {
        return Some(PodTemplateSpec::clone(template));
    }
    let mut template = PodTemplateSpec::clone(task?.job_template.spec.template.as_deref()?);
    if let Some(spec) = template.spec.as_mut() {
        for container in &mut spec.containers {
            set_env(container, &run.spec.env);
        }
        if let (Some(args), Some(first)) = (&run.spec.args, spec.containers.first_mut()) {
            first.args = Some(args.clone());
        }
    }
    Some(template)
}

/// Adds `vars` to `container`'s environment, replacing variables of the same name.
fn set_env(container: &mut Container, vars: &[EnvVar]) {
    if vars.is_empty() {
        return;
    }
    let env = container.env.get_or_insert_default();
    env.retain(|existing| !vars.iter().any(|v| v.name == existing.name));
    env.extend(vars.iter().cloned());
}

/// The run's context as environment variables, as APScheduler hands a job its context:
/// `HOROLOG_SCHEDULE` (absent for one-off runs), `HOROLOG_JOBRUN`, `HOROLOG_FIRE_TIME`
/// (RFC 3339, UTC) and `HOROLOG_ATTEMPT` (1-based).
pub fn context_env(run: &JobRun, attempt: i32) -> Vec<EnvVar> {
    let var = |name: &str, value: String| EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    };
    let mut vars = Vec::with_capacity(4);
    if let Some(schedule) = &run.spec.schedule_name {
        vars.push(var("HOROLOG_SCHEDULE", schedule.clone()));
    }
    vars.push(var("HOROLOG_JOBRUN", run.name_any()));
    vars.push(var(
        "HOROLOG_FIRE_TIME",
        run.fire_time().to_rfc3339_opts(SecondsFormat::AutoSi, true),
    ));
    vars.push(var("HOROLOG_ATTEMPT", attempt.to_string()));
    vars
}

/// The Pod for attempt `attempt` (1-based) of `jobrun`, running `template` (see
/// [`template_of`]): owned by the JobRun (so deleting the JobRun deletes the Pod), labelled
/// with the JobRun, attempt, Schedule and Task, `restartPolicy: Never` (retries are attempts),
/// the run's `activeDeadlineSeconds`, the run's context in every container's environment
/// ([`context_env`]), and the [`TRACKING_FINALIZER`].
pub fn pod_for(jobrun: &JobRun, template: &PodTemplateSpec, attempt: i32) -> Result<Pod, PodError> {
    let (name, namespace, owner) = stored(jobrun)?;
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    labels.extend(run_labels(jobrun, attempt));

    let mut spec: PodSpec = template.spec.clone().unwrap_or_default();
    prepare_for_run(&mut spec, jobrun, attempt);
    if let Some(seconds) = jobrun.spec.run.active_deadline_seconds {
        spec.active_deadline_seconds = Some(seconds);
    }

    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(&name, attempt)),
            namespace: Some(namespace),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: Some(vec![owner]),
            finalizers: Some(vec![TRACKING_FINALIZER.to_string()]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// Makes `spec` what every pod of a run is, whichever executor creates it: `restartPolicy:
/// Never` (retries are attempts) and the run's context ([`context_env`]) in every container's
/// environment, replacing same-named variables.
pub(crate) fn prepare_for_run(spec: &mut PodSpec, jobrun: &JobRun, attempt: i32) {
    spec.restart_policy = Some("Never".to_string());
    let context = context_env(jobrun, attempt);
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        set_env(container, &context);
    }
}

/// The name, namespace and owner reference of a stored JobRun.
pub(crate) fn stored(
    jobrun: &JobRun,
) -> Result<
    (
        String,
        String,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ),
    PodError,
> {
    let name = jobrun.metadata.name.clone().unwrap_or_default();
    let not_stored = |missing| PodError::NotStored {
        name: name.clone(),
        missing,
    };
    if name.is_empty() {
        return Err(not_stored("name"));
    }
    let namespace = jobrun.namespace().ok_or_else(|| not_stored("namespace"))?;
    let owner = jobrun
        .controller_owner_ref(&())
        .ok_or_else(|| not_stored("uid"))?;
    Ok((name, namespace, owner))
}

/// Where a Pod is in its life, as far as a JobRun cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodProgress {
    /// Accepted, not running yet (scheduling, pulling images).
    #[default]
    Pending,
    /// Its container runs.
    Running,
    /// It exited 0.
    Succeeded,
    /// It failed (non-zero exit, deadline exceeded, evicted, ...).
    Failed,
}

impl PodProgress {
    /// True once the Pod has succeeded or failed.
    pub fn is_finished(self) -> bool {
        matches!(self, PodProgress::Succeeded | PodProgress::Failed)
    }
}

/// What a Pod's status says about its JobRun.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodReport {
    /// Where the Pod is.
    pub progress: PodProgress,
    /// When its first container started.
    pub start_time: Option<DateTime<Utc>>,
    /// When its first container finished.
    pub completion_time: Option<DateTime<Utc>>,
    /// The first container's exit code.
    pub exit_code: Option<i32>,
    /// Why, as one CamelCase word (`DeadlineExceeded`, `Error`, `ErrImagePull`, ...).
    pub reason: Option<String>,
    /// Why, for people.
    pub message: Option<String>,
    /// The first container's termination message: the run's return value.
    pub result: Option<String>,
}

/// Reads a Pod's status. A Pod without status is Pending.
pub fn pod_report(pod: &Pod) -> PodReport {
    let status = pod.status.clone().unwrap_or_default();
    // The run's container is the first one of the spec; statuses may come in any order.
    let first_container = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.containers.first())
        .map(|c| c.name.as_str());
    let container = status.container_statuses.as_ref().and_then(|statuses| {
        statuses
            .iter()
            .find(|c| Some(c.name.as_str()) == first_container)
            .or_else(|| statuses.first())
    });
    let state: ContainerState = container.and_then(|c| c.state.clone()).unwrap_or_default();
    let terminated = state.terminated.as_ref();

    let progress = match status.phase.as_deref() {
        Some("Running") => PodProgress::Running,
        Some("Succeeded") => PodProgress::Succeeded,
        Some("Failed") => PodProgress::Failed,
        _ => PodProgress::Pending,
    };
    let start_time = state
        .running
        .as_ref()
        .and_then(|r| r.started_at.as_ref())
        .or_else(|| terminated.and_then(|t| t.started_at.as_ref()))
        .and_then(chrono_time)
        .or_else(|| match progress {
            PodProgress::Pending => None,
            _ => status.start_time.as_ref().and_then(chrono_time),
        });
    let waiting = state.waiting.as_ref();
    let reason = status
        .reason
        .clone()
        .or_else(|| terminated.and_then(|t| t.reason.clone()))
        .or_else(|| waiting.and_then(|w| w.reason.clone()));
    let message = status
        .message
        .clone()
        .or_else(|| waiting.and_then(|w| w.message.clone()));

    PodReport {
        progress,
        start_time,
        completion_time: terminated
            .and_then(|t| t.finished_at.as_ref())
            .and_then(chrono_time),
        exit_code: terminated.map(|t| t.exit_code),
        reason,
        message,
        result: terminated
            .and_then(|t| t.message.clone())
            .filter(|m| !m.is_empty()),
    }
}

/// A metav1 `Time` as chrono (kube 5's `Time` wraps `jiff::Timestamp`).
pub fn chrono_time(time: &Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.0.as_second(), time.0.subsec_nanosecond().max(0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{JOBRUN_LABEL, JobRunSpec, JobRunTemplate, SCHEDULE_LABEL};
    use k8s_openapi::api::core::v1::{
        Container, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
        PodStatus, PodTemplateSpec,
    };

    fn jobrun(name: &str) -> JobRun {
        let mut run = JobRun::new(
            name,
            JobRunSpec {
                schedule_name: Some("nightly".into()),
                run: JobRunTemplate {
                    template: Some(std::sync::Arc::new(PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some([("team".to_string(), "reports".to_string())].into()),
                            ..ObjectMeta::default()
                        }),
                        spec: Some(PodSpec {
                            containers: vec![Container {
                                name: "main".into(),
                                image: Some("busybox".into()),
                                ..Container::default()
                            }],
                            restart_policy: Some("Always".into()),
                            ..PodSpec::default()
                        }),
                    })),
                    active_deadline_seconds: Some(600),
                    ..JobRunTemplate::default()
                },
                ..JobRunSpec::default()
            },
        );
        run.metadata.namespace = Some("reports".into());
        run.metadata.uid = Some("uid-1".into());
        run
    }

    fn pod_of(run: &JobRun, attempt: i32) -> Result<Pod, PodError> {
        let template = template_of(run, None).unwrap_or_default();
        pod_for(run, &template, attempt)
    }

    fn time(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or_default())
    }

    fn pod_with(phase: &str, state: ContainerState) -> Pod {
        let mut pod = pod_of(&jobrun("nightly-1"), 1).unwrap_or_default();
        pod.status = Some(PodStatus {
            phase: Some(phase.into()),
            start_time: Some(time(100)),
            container_statuses: Some(vec![ContainerStatus {
                name: "main".into(),
                state: Some(state),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        });
        pod
    }

    #[test]
    fn the_pod_is_owned_by_and_labelled_with_its_jobrun() {
        let pod = pod_of(&jobrun("nightly-1767254400"), 2).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("nightly-1767254400-2"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("reports"));
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("JobRun", "nightly-1767254400", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels[JOBRUN_LABEL], "nightly-1767254400");
        assert_eq!(labels[SCHEDULE_LABEL], "nightly");
        assert_eq!(labels[ATTEMPT_LABEL], "2");
        assert_eq!(labels["team"], "reports", "template labels are kept");
        let spec = pod.spec.unwrap();
        assert_eq!(
            spec.restart_policy.as_deref(),
            Some("Never"),
            "retries are attempts, not restarts"
        );
        assert_eq!(spec.active_deadline_seconds, Some(600));
    }

    #[test]
    fn a_jobrun_without_uid_cannot_own_a_pod() {
        let mut run = jobrun("x");
        run.metadata.uid = None;
        assert!(matches!(
            pod_of(&run, 1),
            Err(PodError::NotStored { missing: "uid", .. })
        ));
    }

    #[test]
    fn long_names_are_shortened_to_distinct_dns_labels() {
        let long_a = format!("{}-1767254400", "a".repeat(70));
        let long_b = format!("{}-1767254460", "a".repeat(70));
        let (a, b) = (pod_name(&long_a, 1), pod_name(&long_b, 1));
        assert!(a.len() <= MAX_NAME_LEN && b.len() <= MAX_NAME_LEN, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.ends_with("-1"));
        assert_eq!(short_name("short", 63), "short");
        let dashed = short_name(&format!("{}-{}", "b".repeat(51), "c".repeat(20)), 63);
        assert!(!dashed.contains("--"), "{dashed}");
        assert_eq!(short_name(&long_a, 63), short_name(&long_a, 63), "stable");
    }

    #[test]
    fn a_pod_without_status_is_pending() {
        let report = pod_report(&pod_of(&jobrun("x"), 1).unwrap());
        assert_eq!(report.progress, PodProgress::Pending);
        assert_eq!(report.start_time, None);
    }

    #[test]
    fn a_pending_pod_reports_why_it_waits() {
        let report = pod_report(&pod_with(
            "Pending",
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ErrImagePull".into()),
                    message: Some("no such image".into()),
                }),
                ..ContainerState::default()
            },
        ));
        assert_eq!(report.progress, PodProgress::Pending);
        assert_eq!(report.reason.as_deref(), Some("ErrImagePull"));
        assert_eq!(report.message.as_deref(), Some("no such image"));
    }

    #[test]
    fn a_running_pod_reports_its_container_start_time() {
        let report = pod_report(&pod_with(
            "Running",
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(time(105)),
                }),
                ..ContainerState::default()
            },
        ));
        assert_eq!(report.progress, PodProgress::Running);
        assert_eq!(report.start_time, DateTime::from_timestamp(105, 0));
    }

    #[test]
    fn a_finished_pod_reports_exit_code_and_termination_message_as_result() {
        let terminated = |code, message: &str| ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                message: Some(message.into()),
                started_at: Some(time(105)),
                finished_at: Some(time(117)),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        };
        let ok = pod_report(&pod_with("Succeeded", terminated(0, "ok\n")));
        assert_eq!(ok.progress, PodProgress::Succeeded);
        assert_eq!(ok.exit_code, Some(0));
        assert_eq!(ok.result.as_deref(), Some("ok\n"));
        assert_eq!(ok.start_time, DateTime::from_timestamp(105, 0));
        assert_eq!(ok.completion_time, DateTime::from_timestamp(117, 0));

        let failed = pod_report(&pod_with("Failed", terminated(3, "")));
        assert_eq!(failed.progress, PodProgress::Failed);
        assert_eq!(failed.exit_code, Some(3));
        assert_eq!(failed.reason.as_deref(), Some("Error"));
        assert_eq!(failed.result, None, "an empty termination message is no result");
    }

    #[test]
    fn a_pod_past_its_active_deadline_reports_deadline_exceeded() {
        let mut pod = pod_with("Failed", ContainerState::default());
        if let Some(status) = pod.status.as_mut() {
            status.reason = Some("DeadlineExceeded".into());
            status.message = Some("Pod was active on the node longer than the specified deadline".into());
        }
        let report = pod_report(&pod);
        assert_eq!(report.progress, PodProgress::Failed);
        assert_eq!(report.reason.as_deref(), Some("DeadlineExceeded"));
        assert_eq!(report.exit_code, None);
    }

    #[test]
    fn every_container_gets_the_run_context_as_environment() {
        let mut run = jobrun("nightly-1767254400");
        run.spec.fire_time = DateTime::from_timestamp(1_767_254_400, 0);
        let pod = pod_of(&run, 3).unwrap();
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap_or_default();
        let vars: Vec<(String, String)> = env
            .into_iter()
            .map(|v| (v.name, v.value.unwrap_or_default()))
            .collect();
        assert_eq!(
            vars,
            [
                ("HOROLOG_SCHEDULE".to_string(), "nightly".to_string()),
                ("HOROLOG_JOBRUN".to_string(), "nightly-1767254400".to_string()),
                (
                    "HOROLOG_FIRE_TIME".to_string(),
                    "2026-01-01T08:00:00Z".to_string()
                ),
                ("HOROLOG_ATTEMPT".to_string(), "3".to_string()),
            ]
        );
    }

    #[test]
    fn a_task_run_takes_the_tasks_template_with_its_own_env_and_args() {
        let task: TaskSpec = serde_json::from_value(serde_json::json!({
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "report", "args": ["--all"], "env": [{"name": "SOURCE", "value": "s3://old"}, {"name": "KEEP", "value": "1"}]},
                {"name": "sidecar", "image": "proxy"},
            ]}}}},
        }))
        .unwrap();
        let mut run = jobrun("r");
        run.spec.run.template = None;
        run.spec.task_ref = Some(crate::api::TaskRef {
            name: "send-report".into(),
        });
        run.spec.env = vec![EnvVar {
            name: "SOURCE".into(),
            value: Some("s3://incoming".into()),
            value_from: None,
        }];
        run.spec.args = Some(vec!["--batch-size".into(), "1000".into()]);
        let template = template_of(&run, Some(&task)).unwrap();
        let containers = template.spec.unwrap().containers;
        let env_of = |c: &Container| -> Vec<(String, String)> {
            c.env
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|v| (v.name, v.value.unwrap_or_default()))
                .collect()
        };
        assert_eq!(
            env_of(&containers[0]),
            [
                ("KEEP".to_string(), "1".to_string()),
                ("SOURCE".to_string(), "s3://incoming".to_string())
            ]
        );
        assert_eq!(
            env_of(&containers[1]),
            [("SOURCE".to_string(), "s3://incoming".to_string())]
        );
        assert_eq!(
            containers[0].args,
            Some(vec!["--batch-size".into(), "1000".into()])
        );
        assert_eq!(
            containers[1].args, None,
            "args replace the first container's only"
        );
        assert!(template_of(&run, None).is_none(), "no template without the Task");
    }
}
