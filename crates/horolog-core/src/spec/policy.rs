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

/// What a due run does when `maxRunningJobs` runs are already running (Temporal's overlap
/// policies, all six).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// No limit: every run starts (`maxRunningJobs` must be absent). Temporal AllowAll,
    /// CronJob Allow.
    Allow,
    /// Wait for a free slot until the run's start deadline (phase Waiting), oldest first.
    /// Temporal BufferAll.
    #[default]
    Wait,
    /// Drop the new run (phase Skipped). Temporal Skip, CronJob Forbid.
    Skip,
    /// At most one run waits; a newer due run replaces the waiting one, which ends Skipped.
    /// Temporal BufferOne.
    BufferOne,
    /// Cancel the oldest running run (its Pod is deleted with its termination grace period)
    /// and start the new one. Temporal CancelOther, CronJob Replace.
    Replace,
    /// Like Replace, but the running Pod is deleted at once (grace period 0). Temporal
    /// TerminateOther.
    Terminate,
}

impl ConcurrencyPolicy {
    /// The policy as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            ConcurrencyPolicy::Allow => "Allow",
            ConcurrencyPolicy::Wait => "Wait",
            ConcurrencyPolicy::Skip => "Skip",
            ConcurrencyPolicy::BufferOne => "BufferOne",
            ConcurrencyPolicy::Replace => "Replace",
            ConcurrencyPolicy::Terminate => "Terminate",
        }
    }
}

/// Whether fire times that passed during an interruption still run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CatchUpPolicy {
    /// They go through `coalesce` and `misfireGraceTime`, as APScheduler's unpause does.
    #[default]
    Enabled,
    /// Carry on from the moment the interruption ends (a resume, the operator's start, the
    /// API server's return): the fire times that passed meanwhile are recorded as missed.
    /// APScheduler's `unpause_schedule(resume_from=now)`, Temporal's catchupWindow 0.
    Disabled,
}
