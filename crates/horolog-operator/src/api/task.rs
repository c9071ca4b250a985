//! The `Task` custom resource: what runs, configured once and shared by Schedules
//! (APScheduler 4's `configure_task`).

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ConcurrencyPolicy, Condition, Duration, JobTemplate};

/// A Task is a job template with a concurrency limit shared by every Schedule and JobRun that
/// references it (`taskRef`), APScheduler 4's task.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "horolog.dev",
    version = "v1alpha1",
    kind = "Task",
    namespaced,
    status = "TaskStatus",
    shortname = "ht",
    category = "horolog",
    doc = "A Task is a reusable job template whose maxRunningJobs limits the runs of every Schedule and JobRun that references it.",
    printcolumn = r#"{"name": "Executor", "type": "string", "jsonPath": ".spec.jobTemplate.spec.executor"}"#,
    printcolumn = r#"{"name": "Max Running", "type": "integer", "jsonPath": ".spec.maxRunningJobs"}"#,
    printcolumn = r#"{"name": "Running", "type": "integer", "jsonPath": ".status.runningJobs"}"#,
    printcolumn = r#"{"name": "Schedules", "type": "integer", "jsonPath": ".status.schedules"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// The JobRun template every run of this Task uses (the same shape as a Schedule's
    /// jobTemplate; `spec.template` is required). Schedules add `env` and `args` to it.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": TASK_TEMPLATE_REQUIRED_RULE, "message": TASK_TEMPLATE_REQUIRED_MESSAGE},
    ]))]
    pub job_template: JobTemplate,

    /// At most this many runs of this Task (of all its Schedules and one-off JobRuns
    /// together) run at once, oldest fire time first. Absent: no shared limit. Minimum 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_RUNNING_JOBS))]
    pub max_running_jobs: Option<i32>,

    /// What a run does when the Task's limit is reached: `Wait` (default), `Skip`,
    /// `BufferOne`, `Replace` or `Terminate`, as on a Schedule; also the default for the
    /// Schedules that leave their own concurrencyPolicy unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,

    /// At most this many runs of this Task wait for one of its shared slots; a run beyond it
    /// is Skipped with reason QueueFull. Also the default for the Schedules that leave their
    /// own maxWaitingRuns unset. Absent: 100. Minimum 0. Example: `10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = super::MAX_COUNT))]
    pub max_waiting_runs: Option<i32>,

    /// Default misfireGraceTime for the Schedules that leave theirs unset. Example: `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire_grace_time: Option<Duration>,

    /// Calendars whose excluded times no Schedule of this Task fires in, in addition to each
    /// Schedule's own calendarRefs (the union). Default: none. Example: `[{name: nyse-2027}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub calendar_refs: Vec<super::CalendarRef>,
}

/// A Task's job template names its pod template.
pub const TASK_TEMPLATE_REQUIRED_RULE: &str = "has(self.spec.template)";
/// The message users see when [`TASK_TEMPLATE_REQUIRED_RULE`] fails.
pub const TASK_TEMPLATE_REQUIRED_MESSAGE: &str = "jobTemplate.spec.template is required";

/// What the operator knows about a Task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True when the Task's template is usable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Runs of this Task holding a slot now (started, not finished).
    #[serde(default)]
    pub running_jobs: i32,
    /// How many Schedules reference this Task.
    #[serde(default)]
    pub schedules: i32,
    /// When a run of this Task last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_start_time: Option<DateTime<Utc>>,
}
