//! The policies of a Schedule that the planner and admission apply.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What several fire times that are due at once turn into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CoalescePolicy {
    /// One run, for the oldest due fire time.
    Earliest,
    /// One run, for the newest due fire time (APScheduler's default).
    #[default]
    Latest,
    /// One run for each due fire time.
    All,
}

/// What a new run does when `maxRunningJobs` runs are already running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Wait for a free slot until the run's start deadline (phase Waiting).
    #[default]
    Wait,
    /// Drop the new run (phase Skipped).
    Skip,
    /// Cancel the oldest running run and start the new one.
    Replace,
}
