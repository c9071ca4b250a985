//! The `Backfill` custom resource: run the fire times of a past range as if they had
//! happened (Temporal's backfill).

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ConcurrencyPolicy, Condition};

/// How many fire times a dry run lists in `status.preview`.
pub const BACKFILL_PREVIEW: usize = 100;

/// A Backfill runs the fire times of a Schedule's trigger in `[from, to)` as if they had
/// happened. Each fire time gets the JobRun name the Schedule would have given it, so a fire
/// time that already ran is never run twice.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "horolog.dev",
    version = "v1alpha1",
    kind = "Backfill",
    namespaced,
    status = "BackfillStatus",
    shortname = "hb",
    category = "horolog",
    doc = "A Backfill runs the fire times of a Schedule's trigger within a past range, as if they had happened.",
    printcolumn = r#"{"name": "Schedule", "type": "string", "jsonPath": ".spec.scheduleName"}"#,
    printcolumn = r#"{"name": "From", "type": "string", "jsonPath": ".spec.from"}"#,
    printcolumn = r#"{"name": "To", "type": "string", "jsonPath": ".spec.to"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Fire Times", "type": "integer", "jsonPath": ".status.fireTimes"}"#,
    printcolumn = r#"{"name": "Created", "type": "integer", "jsonPath": ".status.created"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": BACKFILL_RANGE_RULE, "message": BACKFILL_RANGE_MESSAGE},
    {"rule": BACKFILL_IMMUTABLE_RULE, "message": BACKFILL_IMMUTABLE_MESSAGE},
]))]
pub struct BackfillSpec {
    /// The Schedule whose trigger and job template to use (same namespace).
    #[schemars(length(min = 1, max = 253))]
    pub schedule_name: String,

    /// The first instant of the range (inclusive). Example: `2026-01-01T00:00:00Z`.
    pub from: DateTime<Utc>,

    /// The end of the range (exclusive). Example: `2026-02-01T00:00:00Z`.
    pub to: DateTime<Utc>,

    /// What a backfilled run does at the Schedule's maxRunningJobs (see Schedule
    /// concurrencyPolicy). Absent: the Schedule's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,

    /// The most fire times this Backfill may cover. A range that holds more is refused as a
    /// whole (phase Failed, naming both counts) and creates nothing: split it into smaller
    /// Backfills or raise this. A dry run counts the range either way (status.fireTimes).
    /// Absent: 10000. Minimum 1, maximum 1000000. Example: `50000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_COUNT))]
    pub max_fire_times: Option<i64>,

    /// True: count the fire times and list the first 100 in status.preview; create nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,

    /// True: run the trigger's own fire times, ignoring the Schedule's Calendars,
    /// `trigger.exclude` and `onExcluded`. Default false: the fire times after exclusion,
    /// as the Schedule would have run them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_exclusions: bool,
}

/// `to` after `from`.
pub const BACKFILL_RANGE_RULE: &str = "timestamp(self.to) > timestamp(self.from)";
/// The message users see when [`BACKFILL_RANGE_RULE`] fails.
pub const BACKFILL_RANGE_MESSAGE: &str = "to must be after from";

/// A Backfill's spec never changes (a transition rule: it compares with the stored object).
pub const BACKFILL_IMMUTABLE_RULE: &str = "self == oldSelf";
/// The message users see when [`BACKFILL_IMMUTABLE_RULE`] fails.
pub const BACKFILL_IMMUTABLE_MESSAGE: &str = "a Backfill's spec cannot change; create another Backfill";

/// Where a Backfill is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackfillPhase {
    /// Not started yet.
    #[default]
    Pending,
    /// Creating runs as the concurrency policy admits them.
    Running,
    /// Every fire time in the range has a JobRun (or, for a dry run, was counted).
    Complete,
    /// It cannot go on (the Schedule or its trigger is gone or invalid); see the message.
    Failed,
}

/// What the operator knows about a Backfill.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackfillStatus {
    /// Pending, Running, Complete or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackfillPhase>,
    /// Why it is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How many fire times the range holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_times: Option<i64>,
    /// JobRuns created so far (one that already existed counts as done, never twice).
    #[serde(default)]
    pub created: i64,
    /// The last fire time handled: a restart carries on after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<DateTime<Utc>>,
    /// Dry run: the first 100 fire times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preview: Vec<DateTime<Utc>>,
    /// `Complete`, as on batch/v1 Job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
