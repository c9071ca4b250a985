//! The `JobRun` custom resource: one execution, one Pod at a time.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Duration, TaskRef};

pub use crate::names::{BACKFILL_LABEL, CANCEL_ANNOTATION, JOBRUN_LABEL, TASK_LABEL};

/// One execution of a job: created by a Schedule for a fire time, or by a user for a
/// one-off run. The operator runs it as a Pod and records the outcome in status.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "horolog.dev",
    version = "v1alpha1",
    kind = "JobRun",
    namespaced,
    status = "JobRunStatus",
    shortname = "jr",
    category = "horolog",
    selectable = ".spec.scheduleName",
    doc = "One execution of a job: created by a Schedule for a fire time, or by a user for a one-off run, and run as a Pod (or a batch/v1 Job).",
    printcolumn = r#"{"name": "Schedule", "type": "string", "jsonPath": ".spec.scheduleName"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Fire Time", "type": "string", "description": "The scheduled fire time", "jsonPath": ".spec.fireTime"}"#,
    printcolumn = r#"{"name": "Started", "type": "date", "jsonPath": ".status.startTime"}"#,
    printcolumn = r#"{"name": "Duration", "type": "string", "jsonPath": ".status.duration"}"#,
    printcolumn = r#"{"name": "Exit", "type": "integer", "jsonPath": ".status.exitCode"}"#,
    printcolumn = r#"{"name": "Pod", "type": "string", "priority": 1, "description": "The current (or last) pod", "jsonPath": ".status.podName"}"#,
    printcolumn = r#"{"name": "Attempts", "type": "integer", "priority": 1, "jsonPath": ".status.attempts"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "priority": 1, "jsonPath": ".status.reason"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": TEMPLATE_XOR_TASK_RULE, "message": TEMPLATE_XOR_TASK_MESSAGE},
    {"rule": JOBRUN_ENV_ARGS_NEED_TASK_RULE, "message": JOBRUN_ENV_ARGS_NEED_TASK_MESSAGE},
]))]
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

    /// Run this Task's job template (looked up when the run starts, so an edit of the Task
    /// reaches runs that have not started). Exactly one of template and taskRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_ref: Option<TaskRef>,

    /// With taskRef: environment variables added to every container of the Task's pod
    /// template, replacing same-named ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::api::env_schema")]
    pub env: Vec<EnvVar>,

    /// With taskRef: replaces the args of the Task's first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// What to run and how.
    #[serde(flatten)]
    pub run: JobRunTemplate,
}

/// Exactly one of template and taskRef.
pub const TEMPLATE_XOR_TASK_RULE: &str = "has(self.template) != has(self.taskRef)";
/// The message users see when [`TEMPLATE_XOR_TASK_RULE`] fails.
pub const TEMPLATE_XOR_TASK_MESSAGE: &str = "exactly one of template and taskRef must be set";

/// env and args only with taskRef.
pub const JOBRUN_ENV_ARGS_NEED_TASK_RULE: &str = "has(self.taskRef) || (!has(self.env) && !has(self.args))";
/// The message users see when [`JOBRUN_ENV_ARGS_NEED_TASK_RULE`] fails.
pub const JOBRUN_ENV_ARGS_NEED_TASK_MESSAGE: &str =
    "env and args apply only with taskRef; with template, set them in the pod template";

/// What runs each attempt of a JobRun.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Executor {
    /// A bare Pod owned by the JobRun (the default).
    #[default]
    Pod,
    /// A batch/v1 Job owned by the JobRun, with the pod template, backoffLimit 0 and
    /// activeDeadlineSeconds copied in, so Job features (podFailurePolicy, queueing by Kueue
    /// through the Job's labels and suspend) apply.
    Job,
}

/// The part of a JobRun spec a Schedule's `jobTemplate.spec` gives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRunTemplate {
    /// The Pod to run (a core/v1 PodTemplateSpec). `restartPolicy` is forced to `Never`:
    /// retries are JobRun attempts (backoffLimit). The first container's termination
    /// message becomes the run's `result`. Required, except on a JobRun with taskRef.
    // Behind a pointer: 1,776 bytes inline, which every cached JobRun would pay, also a
    // finished one whose template the cache drops. Shared: the caches keep one copy of each
    // distinct template, so a Schedule and its staged or running runs hold one
    // (controller::trim).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "shared_template")]
    #[schemars(schema_with = "pod_template_schema")]
    pub template: Option<Arc<PodTemplateSpec>>,

    /// What runs each attempt: `Pod` (default) or `Job` (a batch/v1 Job; the operator must
    /// run with `--job-executor`). Absent: the Task's, else the operator's default
    /// (`--default-executor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<Executor>,

    /// Retries after a failed pod. Default 0 (APScheduler never retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub backoff_limit: Option<i32>,

    /// Seconds a pod may run before it is stopped and the attempt fails. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_SECONDS))]
    pub active_deadline_seconds: Option<i64>,

    /// Finished JobRuns are deleted this long after completion (APScheduler's result
    /// expiration time). Absent: kept until the Schedule's history limits remove them.
    /// Example: `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "resultTTL")]
    pub result_ttl: Option<Duration>,
}

/// (De)serializes a shared pod template as the template itself (serde's `rc` feature would
/// do the same, at the price of rebuilding every crate that uses serde).
mod shared_template {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        template: &Option<Arc<PodTemplateSpec>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        template.as_deref().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Arc<PodTemplateSpec>>, D::Error> {
        Ok(Option::<PodTemplateSpec>::deserialize(deserializer)?.map(Arc::new))
    }
}

/// The lifecycle of a JobRun.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum JobRunPhase {
    /// Created, nothing reported yet (the schema's default of status, at no write): a run
    /// staged ahead of its fire time (Schedule `stageAhead`) waits here for it, and a due run
    /// stays here until its pod runs, ends, or says why it waits.
    #[default]
    Scheduled,
    /// Its pod is not running yet, and says why (an image pull, say), or cannot be created
    /// yet (a missing Task, a refused create).
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
            JobRunPhase::Scheduled => "Scheduled",
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
    /// Scheduled (the default of a new run), Pending, Waiting, Running, Succeeded, Failed,
    /// Missed, Skipped or Cancelled.
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
    /// `Complete` (True once Succeeded) and `Failed` (True once Failed, Missed, Skipped or
    /// Cancelled), as batch/v1 Job writes them: `kubectl wait --for=condition=Complete`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The full schema of core/v1 PodTemplateSpec, from k8s-openapi's own type, so the API
/// server refuses what the kubelet would not run (a string `command`, a misspelt `comand`)
/// exactly as it does for a CronJob, and `kubectl explain` reads down to
/// `containers.command`. On top of the Kubernetes schema, a JobRun needs at least one
/// container, and an image on each (a Pod has no controller to default it).
///
/// Two cuts keep each CRD small enough for Helm's release Secret (see README, "CRD sizes"):
/// `ephemeralContainers` is left out (the API server refuses it when a Pod is created, so a
/// run with it could never start), and below [`FULL_DESCRIPTION_DEPTH`] fields a
/// description keeps only its first sentence.
pub(crate) fn pod_template_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<PodTemplateSpec>().to_value();
    if let Some(properties) = schema
        .pointer_mut("/properties/spec/properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        properties.remove("ephemeralContainers");
    }
    shorten_descriptions(&mut schema, 0);
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "description".into(),
            "A core/v1 PodTemplateSpec (as `kubectl explain pod`). restartPolicy is forced to Never.".into(),
        );
        object.insert("required".into(), serde_json::json!(["spec"]));
    }
    if let Some(containers) = schema
        .pointer_mut("/properties/spec/properties/containers")
        .and_then(serde_json::Value::as_object_mut)
    {
        containers.insert("minItems".into(), 1.into());
        if let Some(item) = containers
            .get_mut("items")
            .and_then(serde_json::Value::as_object_mut)
        {
            item.insert("required".into(), serde_json::json!(["name", "image"]));
            for field in ["name", "image"] {
                if let Some(property) = item
                    .get_mut("properties")
                    .and_then(|p| p.get_mut(field))
                    .and_then(serde_json::Value::as_object_mut)
                {
                    property.insert("minLength".into(), 1.into());
                }
            }
        }
    }
    schemars::Schema::try_from(schema).unwrap_or_default()
}

/// How many fields deep below the pod template descriptions stay whole:
/// `spec.containers.command` (3) does; `spec.containers.securityContext.runAsUser` (4) keeps
/// its first sentence. 4 would put the Helm release Secret at ~58% of 1 MiB instead of ~52%.
pub const FULL_DESCRIPTION_DEPTH: usize = 3;

/// Cuts the description of every field deeper than [`FULL_DESCRIPTION_DEPTH`] to its first
/// sentence; `depth` is the depth of `schema`.
fn shorten_descriptions(schema: &mut serde_json::Value, depth: usize) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if depth > FULL_DESCRIPTION_DEPTH
        && let Some(serde_json::Value::String(description)) = object.get_mut("description")
        && let Some(end) = description.find(". ")
    {
        description.truncate(end + 1);
    }
    for (key, child) in object.iter_mut() {
        match key.as_str() {
            "properties" => {
                for field in child.as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
                    shorten_descriptions(field, depth + 1);
                }
            }
            "items" | "additionalProperties" => shorten_descriptions(child, depth),
            "anyOf" | "allOf" | "oneOf" => {
                for member in child.as_array_mut().into_iter().flatten() {
                    shorten_descriptions(member, depth);
                }
            }
            _ => {}
        }
    }
}

impl JobRun {
    /// The phase of the run; a run without status is Scheduled (not started).
    pub fn phase(&self) -> JobRunPhase {
        self.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
    }

    /// True once the run can change no more.
    pub fn is_finished(&self) -> bool {
        self.phase().is_finished()
    }

    /// The scheduled fire time; a one-off run fires at its creation time.
    pub fn fire_time(&self) -> DateTime<Utc> {
        self.spec
            .fire_time
            .or_else(|| {
                self.metadata.creation_timestamp.as_ref().and_then(|t| {
                    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
                })
            })
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The earliest instant the run may start: its fire time plus its jitter.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.fire_time() + self.spec.jitter.map(|j| j.as_chrono()).unwrap_or_default()
    }

    /// When the run finished, if it has.
    pub fn completion_time(&self) -> Option<DateTime<Utc>> {
        self.status.as_ref().and_then(|s| s.completion_time)
    }

    /// The Task whose template and shared limit this run uses, if any.
    pub fn task_name(&self) -> Option<&str> {
        self.spec.task_ref.as_ref().map(|t| t.name.as_str())
    }

    /// True when a user asked to cancel the run (annotation `horolog.dev/cancel`).
    pub fn cancel_requested(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CANCEL_ANNOTATION))
            .map(String::as_str)
    }

    /// True for a run a Backfill created.
    pub fn is_backfill(&self) -> bool {
        self.metadata
            .labels
            .as_ref()
            .is_some_and(|labels| labels.contains_key(BACKFILL_LABEL))
    }
}
