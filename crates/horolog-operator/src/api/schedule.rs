//! The `Schedule` custom resource: when to fire (trigger) and what to run (jobTemplate).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::api::core::v1::EnvVar;

use super::{
    CatchUpPolicy, CoalescePolicy, ConcurrencyPolicy, Condition, Duration, JobRunTemplate, TriggerSpec,
};

pub use crate::names::{RESUME_ANNOTATION, RUN_NOW_ANNOTATION, SCHEDULE_LABEL};
/// Default of `successfulRunsHistoryLimit`.
pub const DEFAULT_SUCCESSFUL_HISTORY: i32 = 3;
/// Default of `failedRunsHistoryLimit`.
pub const DEFAULT_FAILED_HISTORY: i32 = 1;
/// The schema's `maximum` of every maxRunningJobs (Schedule and Task).
pub const MAX_RUNNING_JOBS: i32 = 1_000_000;
/// The schema's `maximum` of pauseAfterFailures and the history limits.
pub const MAX_COUNT: i32 = 1_000_000;
/// The schema's `maximum` of maxRuns.
pub const MAX_RUNS: i64 = 1_000_000_000_000;
/// The schema's `maximum` of a count of seconds (ttlSecondsAfterFinished,
/// activeDeadlineSeconds): 100 years of 366 days, as the longest duration, so adding it to
/// any time stays in range.
pub const MAX_SECONDS: i64 = 36_600 * 86_400;

/// A Schedule fires a JobRun at every fire time of its trigger, with APScheduler 4's
/// policies: coalescing, misfire grace time, jitter and max running jobs.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    printcolumn = r#"{"name": "Last Fire", "type": "date", "description": "The latest fire time turned into a JobRun or recorded as missed", "jsonPath": ".status.lastFireTime"}"#,
    printcolumn = r#"{"name": "Active", "type": "integer", "description": "JobRuns not yet finished and counted", "jsonPath": ".status.activeCount"}"#,
    printcolumn = r#"{"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "priority": 1, "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name": "Last Run", "type": "string", "priority": 1, "description": "Whether the last finished run succeeded", "jsonPath": ".status.conditions[?(@.type==\"LastRunSucceeded\")].reason"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": JOB_TEMPLATE_XOR_TASK_RULE, "message": JOB_TEMPLATE_XOR_TASK_MESSAGE},
    {"rule": ENV_ARGS_NEED_TASK_RULE, "message": ENV_ARGS_NEED_TASK_MESSAGE},
    {"rule": ALLOW_HAS_NO_LIMIT_RULE, "message": ALLOW_HAS_NO_LIMIT_MESSAGE},
]))]
pub struct ScheduleSpec {
    /// When the Schedule fires. Exactly one trigger kind, plus timezone, startTime and endTime.
    /// An edit applies from the moment the operator sees it: fire times of the new trigger
    /// that lie before the edit are neither run nor counted.
    pub trigger: TriggerSpec,

    /// While true nothing fires. Setting it back to false treats the fire times that passed
    /// meanwhile like any missed fire times (catchUp, coalesce, then misfireGraceTime).
    /// Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(extend("default" = false))]
    pub paused: bool,

    /// What to do with several fire times that are due at once (after downtime or a pause):
    /// `Earliest` runs the oldest, `Latest` the newest, `All` runs each (at most 100 per
    /// catch-up; older ones are recorded as missed). Default `Latest`.
    #[serde(default)]
    pub coalesce: CoalescePolicy,

    /// Whether fire times that passed during an interruption (a pause, the operator being
    /// down, the API server being down) still run: `Enabled` (default) puts them through
    /// coalesce and misfireGraceTime; `Disabled` carries on from the end of the interruption
    /// and records them as missed (APScheduler's unpause with resume_from=now).
    #[serde(default, skip_serializing_if = "is_default")]
    pub catch_up: CatchUpPolicy,

    /// A run that cannot start within this long after its fire time is recorded as Missed.
    /// Absent: the Task's, else the operator's default (`--default-misfire-grace-time`), else
    /// no deadline. Example: `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire_grace_time: Option<Duration>,

    /// A random delay between 0 and this is added to each fire time (capped so a run never
    /// moves past the next fire time). Absent: no jitter. Example: `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_jitter: Option<Duration>,

    /// How long before a fire time its JobRun is created (staged, phase `Scheduled`), so that
    /// at the fire time the operator only creates its Pod (or Job): one API write per run at
    /// the fire instant. The creation is spread over the first half of this window, by the
    /// Schedule's uid. Backfill and run-now runs are not staged. `0s` turns staging off.
    /// Absent: the operator's `--stage-ahead` (default 30s). Example: `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_ahead: Option<Duration>,

    /// At most this many of this Schedule's JobRuns run at once; what happens to the rest is
    /// `concurrencyPolicy`. Absent: the operator's default (`--default-max-running-jobs`),
    /// else unlimited. Minimum 1. A Task's maxRunningJobs limits all its Schedules together
    /// on top of this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_RUNNING_JOBS))]
    pub max_running_jobs: Option<i32>,

    /// At `maxRunningJobs`: `Wait` holds the new run (phase Waiting) until a slot frees or its
    /// start deadline passes; `Skip` drops it (phase Skipped); `BufferOne` keeps at most one
    /// waiting (a newer one replaces it, the replaced one ends Skipped); `Replace` cancels
    /// the oldest running run (graceful pod deletion) and starts the new one; `Terminate`
    /// does the same with grace period 0; `Allow` sets no limit (leave maxRunningJobs out).
    /// Absent: the Task's, else `Wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,

    /// At most this many of this Schedule's runs wait for a slot (phase Waiting, under
    /// concurrencyPolicy Wait); a run that falls due beyond it is Skipped with reason
    /// QueueFull and counted in status.skippedRuns, so a hung run cannot make the queue (and
    /// status.active) grow without bound. Absent: the Task's, else 100. Minimum 0. Example: `10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = MAX_COUNT))]
    pub max_waiting_runs: Option<i32>,

    /// After this many consecutive Failed runs the Schedule stops firing (Ready=False, reason
    /// TooManyFailures, a Warning Event). Lifted by a run that succeeds (e.g. run-now), by a
    /// new value of the annotation `horolog.dev/resume`, or by any spec change; the operator
    /// never edits spec. Absent: never. Minimum 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_COUNT))]
    pub pause_after_failures: Option<i32>,

    /// Fire at most this many times in total (`status.firedCount`), then finish
    /// (Ready=False, reason Finished). Run-now runs do not count. Absent: no limit. Minimum 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_RUNS))]
    pub max_runs: Option<i64>,

    /// Delete the Schedule (and, by owner, its JobRuns) this many seconds after it finished:
    /// its trigger has no more fire times (endTime passed, a date fired, maxRuns reached) and
    /// every run finished. Absent: kept. Example: `3600`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = MAX_SECONDS))]
    pub ttl_seconds_after_finished: Option<i64>,

    /// How many Succeeded JobRuns to keep; older ones are deleted. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = MAX_COUNT))]
    pub successful_runs_history_limit: Option<i32>,

    /// How many finished but unsuccessful (Failed, Missed, Skipped, Cancelled) JobRuns to keep.
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = MAX_COUNT))]
    pub failed_runs_history_limit: Option<i32>,

    /// The JobRun each fire time creates. Exactly one of jobTemplate and taskRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template: Option<JobTemplate>,

    /// Run a Task (a reusable job template with a shared maxRunningJobs) instead of an inline
    /// jobTemplate. Exactly one of jobTemplate and taskRef. Example: `{name: send-report}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_ref: Option<TaskRef>,

    /// With taskRef: environment variables added to every container of the Task's pod
    /// template, replacing same-named ones (APScheduler's kwargs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::api::env_schema")]
    pub env: Vec<EnvVar>,

    /// With taskRef: replaces the args of the Task's first container (APScheduler's args).
    /// Example: `["--batch-size", "1000"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// Calendars of this namespace whose excluded times this Schedule does not fire in, with
    /// its Task's calendarRefs and `trigger.exclude` (the union). A Calendar that does not
    /// exist stops firing (Ready=False, reason CalendarNotFound) until it does. Default: none.
    /// Example: `[{name: nyse-2027}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub calendar_refs: Vec<crate::api::CalendarRef>,

    /// What an excluded fire time becomes: `Skip` (default) makes no run and counts it in
    /// status.excludedFireTimes; `Following` / `Preceding` move it to the same local time of
    /// the next / previous day that is not excluded (at most 31 days away, else skipped).
    /// Several fire times moved onto one instant run once (the others count as coalesced).
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_excluded: crate::api::OnExcluded,
}

/// A reference to a Task in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRef {
    /// The Task's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Exactly one of jobTemplate and taskRef.
pub const JOB_TEMPLATE_XOR_TASK_RULE: &str = "has(self.jobTemplate) != has(self.taskRef)";
/// The message users see when [`JOB_TEMPLATE_XOR_TASK_RULE`] fails.
pub const JOB_TEMPLATE_XOR_TASK_MESSAGE: &str = "exactly one of jobTemplate and taskRef must be set";
/// env and args only with taskRef.
pub const ENV_ARGS_NEED_TASK_RULE: &str = "has(self.taskRef) || (!has(self.env) && !has(self.args))";
/// The message users see when [`ENV_ARGS_NEED_TASK_RULE`] fails.
pub const ENV_ARGS_NEED_TASK_MESSAGE: &str =
    "env and args apply only with taskRef; with jobTemplate, set them in the pod template";
/// Allow means no limit.
pub const ALLOW_HAS_NO_LIMIT_RULE: &str =
    "!has(self.maxRunningJobs) || !has(self.concurrencyPolicy) || self.concurrencyPolicy != 'Allow'";
/// The message users see when [`ALLOW_HAS_NO_LIMIT_RULE`] fails.
pub const ALLOW_HAS_NO_LIMIT_MESSAGE: &str =
    "concurrencyPolicy Allow means no limit: leave maxRunningJobs out";

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
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

/// A trigger replaced by an edit that no pass has planned up to yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplacedTrigger {
    /// The trigger as it was before the edit.
    #[schemars(schema_with = "free_form_trigger")]
    pub trigger: serde_json::Value,
    /// The moment of the edit: the old trigger governs its fire times up to it.
    pub until: DateTime<Utc>,
}

/// The schema of a stored copy of a trigger: any object (its fields are spec.trigger's).
fn free_form_trigger(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "A copy of spec.trigger.",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// What the operator knows about a Schedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True while the Schedule fires (reasons Scheduled; False with Paused,
    /// TooManyFailures, Finished, InvalidTrigger, InvalidTimezone, TaskNotFound).
    /// `LastRunSucceeded`: True when the last finished run succeeded; its reason is that
    /// run's phase and its message names it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The trigger in short, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The next fire time; absent when the trigger is exhausted or the Schedule does not fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_fire_time: Option<DateTime<Utc>>,
    /// The next 5 fire times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upcoming_fire_times: Vec<DateTime<Utc>>,
    /// The last fire time handled (run, recorded as missed, or merged away by coalesce): the
    /// next fire time is computed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<DateTime<Utc>>,
    /// A hash of the trigger the cursor was computed with (and of the exclusions in force and
    /// the Calendars named); when one changes, firing carries on from the moment of the change
    /// (a Calendar's edit counts from the Calendar's edit time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_hash: Option<String>,
    /// A copy of the trigger `triggerHash` describes, as last planned: after an edit, the old
    /// trigger's fire times between the cursor and the edit are planned by it (run, coalesced
    /// or missed, by the Schedule's policy). Kept free-form, so a stored trigger never makes
    /// the status unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_trigger")]
    pub planned_trigger: Option<serde_json::Value>,
    /// Trigger edits seen while the Schedule did not fire (paused, say), oldest first: each
    /// replaced trigger and the moment of the edit that replaced it. Its fire times after the
    /// cursor up to that moment are planned by it when firing resumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced_triggers: Vec<ReplacedTrigger>,
    /// The latest fire time that has been turned into a JobRun or recorded as missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fire_time: Option<DateTime<Utc>>,
    /// Fire time of the latest JobRun that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<DateTime<Utc>>,
    /// The JobRuns of this Schedule not yet finished and counted: a finished run leaves this
    /// list (and is counted once: lastSuccessfulTime, LastRunSucceeded, consecutiveFailures,
    /// skippedRuns, missedFireTimes) at the Schedule's next status write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<ActiveRun>,
    /// How many runs `active` lists.
    #[serde(default)]
    pub active_count: i32,
    /// Fire times recorded as missed since creation: past misfireGraceTime when planned, runs
    /// that ended Missed, and fire times passed over by catchUp Disabled or a catch-up cap.
    #[serde(default)]
    pub missed_fire_times: i64,
    /// Fire times merged away by coalesce since creation.
    #[serde(default)]
    pub coalesced_fire_times: i64,
    /// Fire times that made no run because a Calendar or `trigger.exclude` excluded them
    /// (never counted as missed), since creation.
    #[serde(default)]
    pub excluded_fire_times: i64,
    /// Runs dropped by concurrencyPolicy Skip or BufferOne since creation.
    #[serde(default)]
    pub skipped_runs: i64,
    /// Runs the trigger created since creation (run-now runs excluded); maxRuns caps it.
    #[serde(default)]
    pub fired_count: i64,
    /// Failed runs in a row; a Succeeded run, a resume or a spec change sets it back to 0.
    #[serde(default)]
    pub consecutive_failures: i64,
    /// When the Schedule finished: no more fire times and every run counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The last `horolog.dev/run-now` annotation value that was turned into a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now: Option<String>,
    /// The last `horolog.dev/resume` annotation value that was served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resume: Option<String>,
}

/// A reference to a JobRun not yet finished and counted.
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

impl Schedule {
    /// When it was created (`metadata.creationTimestamp`): where its trigger starts counting
    /// unless `trigger.startTime` says otherwise.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.metadata
            .creation_timestamp
            .as_ref()
            .and_then(crate::pod::chrono_time)
    }

    /// The condition of `type_` in status, if any.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status
            .as_ref()
            .and_then(|s| super::find_condition(&s.conditions, type_))
    }

    /// The Task this Schedule runs, if it uses one.
    pub fn task_name(&self) -> Option<&str> {
        self.spec.task_ref.as_ref().map(|t| t.name.as_str())
    }

    /// The Calendars it names directly: its own calendarRefs, then its Task's, each once.
    pub fn calendar_roots(&self, task: Option<&super::Task>) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let refs = self
            .spec
            .calendar_refs
            .iter()
            .chain(task.iter().flat_map(|t| t.spec.calendar_refs.iter()));
        for r in refs {
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
        names
    }

    /// Where it stands on its trigger, from its status (`cursor`, else `lastFireTime` for a
    /// status written before the cursor existed; `firedCount`) and `spec.maxRuns`.
    pub fn progress(&self) -> horolog_core::progress::Progress {
        let status = self.status.as_ref();
        horolog_core::progress::Progress {
            cursor: status.and_then(|s| s.cursor.or(s.last_fire_time)),
            fired_count: status.map_or(0, |s| s.fired_count),
            max_runs: self.spec.max_runs,
        }
    }

    /// The value of annotation `name`, if set.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(name))
            .map(String::as_str)
    }
}
