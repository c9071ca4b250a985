//! The `Schedule` custom resource: when to fire (trigger) and what to run (jobTemplate).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CoalescePolicy, ConcurrencyPolicy, Condition, Duration, JobRunTemplate, TriggerSpec};

/// Annotation whose every new value asks for one immediate run.
pub const RUN_NOW_ANNOTATION: &str = "horolog.dev/run-now";
/// Label on every JobRun a Schedule creates, with the Schedule's name.
pub const SCHEDULE_LABEL: &str = "horolog.dev/schedule";
/// Default of `successfulRunsHistoryLimit`.
pub const DEFAULT_SUCCESSFUL_HISTORY: i32 = 3;
/// Default of `failedRunsHistoryLimit`.
pub const DEFAULT_FAILED_HISTORY: i32 = 1;

/// A Schedule fires a JobRun at every fire time of its trigger, with APScheduler 4's
/// policies: coalescing, misfire grace time, jitter and max running jobs.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "horolog.dev",
    version = "v1alpha1",
    kind = "Schedule",
    namespaced,
    status = "ScheduleStatus",
    shortname = "hs",
    category = "horolog",
    doc = "A Schedule fires a JobRun at every fire time of its trigger (cron, interval, date, calendar interval, or combinations) with APScheduler 4's policies.",
    printcolumn = r#"{"name": "Trigger", "type": "string", "description": "The trigger, in short", "jsonPath": ".status.trigger"}"#,
    printcolumn = r#"{"name": "Timezone", "type": "string", "description": "IANA time zone of the trigger (default UTC)", "jsonPath": ".spec.trigger.timezone"}"#,
    printcolumn = r#"{"name": "Next Fire", "type": "string", "description": "The next fire time", "jsonPath": ".status.nextFireTime"}"#,
    printcolumn = r#"{"name": "Last Fire", "type": "date", "description": "The latest fire time turned into a JobRun", "jsonPath": ".status.lastFireTime"}"#,
    printcolumn = r#"{"name": "Active", "type": "integer", "description": "JobRuns running now", "jsonPath": ".status.activeCount"}"#,
    printcolumn = r#"{"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// When the Schedule fires. Exactly one trigger kind, plus timezone, startTime and endTime.
    pub trigger: TriggerSpec,

    /// While true nothing fires. Setting it back to false treats the fire times that passed
    /// meanwhile like any missed fire times (coalesce, then misfireGraceTime). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,

    /// What to do with several fire times that are due at once (after downtime or a pause):
    /// `Earliest` runs the oldest, `Latest` the newest, `All` runs each. Default `Latest`.
    #[serde(default)]
    pub coalesce: CoalescePolicy,

    /// A run that cannot start within this long after its fire time is recorded as Missed.
    /// Absent: no deadline. Example: `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire_grace_time: Option<Duration>,

    /// A random delay between 0 and this is added to each fire time (capped so a run never
    /// moves past the next fire time). Absent: no jitter. Example: `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_jitter: Option<Duration>,

    /// At most this many of this Schedule's JobRuns run at once; what happens to the rest is
    /// `concurrencyPolicy`. Absent: unlimited. Minimum 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_running_jobs: Option<i32>,

    /// At `maxRunningJobs`: `Wait` holds the new run (phase Waiting) until a slot frees or its
    /// start deadline passes; `Skip` drops it (phase Skipped); `Replace` cancels the oldest
    /// running run and starts the new one. Default `Wait`.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,

    /// How many Succeeded JobRuns to keep; older ones are deleted. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_runs_history_limit: Option<i32>,

    /// How many finished but unsuccessful (Failed, Missed, Skipped, Cancelled) JobRuns to keep.
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_runs_history_limit: Option<i32>,

    /// The JobRun each fire time creates.
    pub job_template: JobTemplate,
}

/// The template of the JobRuns a Schedule creates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplate {
    /// Labels and annotations copied to every JobRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// The JobRun spec without its scheduling fields (scheduleName, fireTime, startDeadline).
    pub spec: JobRunTemplate,
}

/// Labels and annotations for generated objects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateMeta {
    /// Labels to add. Example: `{team: reports}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What the operator knows about a Schedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True when the trigger is valid and the Schedule is being served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The trigger in short, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The next fire time; absent when the trigger is exhausted or the Schedule is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_fire_time: Option<DateTime<Utc>>,
    /// The next 5 fire times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upcoming_fire_times: Vec<DateTime<Utc>>,
    /// The latest fire time that has been turned into a JobRun (or recorded as missed or
    /// coalesced): the cursor the next fire time is computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fire_time: Option<DateTime<Utc>>,
    /// Fire time of the latest JobRun that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<DateTime<Utc>>,
    /// The JobRuns of this Schedule that are Pending, Waiting or Running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<ActiveRun>,
    /// How many JobRuns of this Schedule are running now.
    #[serde(default)]
    pub active_count: i32,
    /// Fire times recorded as Missed since creation.
    #[serde(default)]
    pub missed_fire_times: i64,
    /// Fire times merged away by coalesce since creation.
    #[serde(default)]
    pub coalesced_fire_times: i64,
    /// Runs dropped by concurrencyPolicy Skip since creation.
    #[serde(default)]
    pub skipped_runs: i64,
    /// The last `horolog.dev/run-now` annotation value that was turned into a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now: Option<String>,
}

/// A reference to a JobRun that has not finished.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ActiveRun {
    /// The JobRun's name.
    pub name: String,
}

impl ScheduleSpec {
    /// `successfulRunsHistoryLimit` with its default applied.
    pub fn successful_history(&self) -> usize {
        self.successful_runs_history_limit
            .unwrap_or(DEFAULT_SUCCESSFUL_HISTORY)
            .max(0) as usize
    }

    /// `failedRunsHistoryLimit` with its default applied.
    pub fn failed_history(&self) -> usize {
        self.failed_runs_history_limit
            .unwrap_or(DEFAULT_FAILED_HISTORY)
            .max(0) as usize
    }
}
