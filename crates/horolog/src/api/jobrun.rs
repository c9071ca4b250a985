//! The `JobRun` custom resource: one execution, one Pod at a time.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Duration};

/// Label on every Pod a JobRun creates, with the JobRun's name.
pub const JOBRUN_LABEL: &str = "horolog.dev/jobrun";

/// One execution of a job: created by a Schedule for a fire time, or by a user for a
/// one-off run. The operator runs it as a Pod and records the outcome in status.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "horolog.dev",
    version = "v1alpha1",
    kind = "JobRun",
    namespaced,
    status = "JobRunStatus",
    shortname = "jr",
    category = "horolog",
    selectable = ".spec.scheduleName",
    doc = "One execution of a job: created by a Schedule for a fire time, or by a user for a one-off run, and run as a Pod.",
    printcolumn = r#"{"name": "Schedule", "type": "string", "jsonPath": ".spec.scheduleName"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Fire Time", "type": "string", "description": "The scheduled fire time", "jsonPath": ".spec.fireTime"}"#,
    printcolumn = r#"{"name": "Started", "type": "date", "jsonPath": ".status.startTime"}"#,
    printcolumn = r#"{"name": "Duration", "type": "string", "jsonPath": ".status.duration"}"#,
    printcolumn = r#"{"name": "Exit", "type": "integer", "jsonPath": ".status.exitCode"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct JobRunSpec {
    /// The Schedule that created this run; absent for one-off runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_name: Option<String>,

    /// The scheduled fire time. Default: the JobRun's creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_time: Option<DateTime<Utc>>,

    /// The random delay added to fireTime (Schedule maxJitter); the pod starts no earlier
    /// than fireTime + jitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Duration>,

    /// If the pod cannot start by this instant the run is Missed
    /// (fireTime + jitter + misfireGraceTime). Absent: no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_deadline: Option<DateTime<Utc>>,

    /// What to run and how.
    #[serde(flatten)]
    pub run: JobRunTemplate,
}

/// The part of a JobRun spec a Schedule's `jobTemplate.spec` gives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRunTemplate {
    /// The Pod to run (a core/v1 PodTemplateSpec). `restartPolicy` is forced to `Never`:
    /// retries are JobRun attempts (backoffLimit). The first container's termination
    /// message becomes the run's `result`.
    #[schemars(schema_with = "pod_template_schema")]
    pub template: PodTemplateSpec,

    /// Retries after a failed pod. Default 0 (APScheduler never retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub backoff_limit: Option<i32>,

    /// Seconds a pod may run before it is stopped and the attempt fails. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,

    /// Finished JobRuns are deleted this long after completion (APScheduler's result
    /// expiration time). Absent: kept until the Schedule's history limits remove them.
    /// Example: `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "resultTTL")]
    pub result_ttl: Option<Duration>,
}

/// The lifecycle of a JobRun.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum JobRunPhase {
    /// Accepted; its pod is not running yet.
    #[default]
    Pending,
    /// Held back by the Schedule's maxRunningJobs (concurrencyPolicy Wait).
    Waiting,
    /// Its pod is running.
    Running,
    /// Its pod exited 0.
    Succeeded,
    /// Its pod failed and no retries are left.
    Failed,
    /// Its start deadline passed before it could start (APScheduler missed_start_deadline).
    Missed,
    /// Dropped by concurrencyPolicy Skip.
    Skipped,
    /// Replaced (concurrencyPolicy Replace) or cancelled by a user.
    Cancelled,
}

impl JobRunPhase {
    /// True once the run can change no more.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobRunPhase::Succeeded
                | JobRunPhase::Failed
                | JobRunPhase::Missed
                | JobRunPhase::Skipped
                | JobRunPhase::Cancelled
        )
    }

    /// The phase as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            JobRunPhase::Pending => "Pending",
            JobRunPhase::Waiting => "Waiting",
            JobRunPhase::Running => "Running",
            JobRunPhase::Succeeded => "Succeeded",
            JobRunPhase::Failed => "Failed",
            JobRunPhase::Missed => "Missed",
            JobRunPhase::Skipped => "Skipped",
            JobRunPhase::Cancelled => "Cancelled",
        }
    }
}

/// What the operator knows about a JobRun.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRunStatus {
    /// Pending, Waiting, Running, Succeeded, Failed, Missed, Skipped or Cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<JobRunPhase>,
    /// Why the run is in its phase, as one CamelCase word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why the run is in its phase, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The current (or last) pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Pods created so far (1 + retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// When the first pod started running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    /// How long the run took (completionTime - startTime), e.g. `12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Exit code of the first container of the last pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The first container's termination message: the run's return value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Conditions of the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A lean schema for the embedded core/v1 PodTemplateSpec. The full schema is ~500 KB per
/// CRD, which breaks client-side `kubectl apply` (annotation size limit); the API server
/// validates the pod itself when the operator creates it. We enforce what a JobRun cannot do
/// without (a container with a name and an image) and keep every other field.
fn pod_template_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A core/v1 PodTemplateSpec (see `kubectl explain pod.spec`). restartPolicy is forced to Never.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "required": ["spec"],
        "properties": {
            "metadata": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
            },
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": true,
                            "required": ["name", "image"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "image": {"type": "string", "minLength": 1},
                            },
                        },
                    },
                },
            },
        },
    })
}
