//! The names of things: the label and annotation keys horolog reads and writes, the names of
//! the objects it creates (a fire time's JobRun, a run-now JobRun, an attempt's Pod or Job),
//! the hash that tells an edited trigger, and the builders of the JobRuns a Schedule or a
//! Backfill creates ([`jobrun_for`]) and of a run's Pod labels ([`run_labels`]).
//!
//! The keys and names depend on nothing but the pure core; the builders (`build`) on the
//! API types. The controller, the local mode and the kubectl plugin all name things from here.

mod build;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use horolog_core::spec::TriggerSpec;

pub use build::{jobrun_for, run_labels};

/// Label on every Pod (and batch/v1 Job) a JobRun creates, with the JobRun's name.
pub const JOBRUN_LABEL: &str = "horolog.dev/jobrun";
/// Label on every JobRun of a Task, with the Task's name: the Task's maxRunningJobs counts
/// the runs that carry it.
pub const TASK_LABEL: &str = "horolog.dev/task";
/// Label on every JobRun a Backfill creates, with the Backfill's name.
pub const BACKFILL_LABEL: &str = "horolog.dev/backfill";
/// Label on every JobRun a Schedule creates, with the Schedule's name.
pub const SCHEDULE_LABEL: &str = "horolog.dev/schedule";
/// Label on every Pod (and Job) of a JobRun with its attempt number (1-based).
pub const ATTEMPT_LABEL: &str = "horolog.dev/attempt";
/// Annotation on a JobRun that asks to cancel it (any value).
pub const CANCEL_ANNOTATION: &str = "horolog.dev/cancel";
/// Annotation whose every new value asks for one immediate run.
pub const RUN_NOW_ANNOTATION: &str = "horolog.dev/run-now";
/// Annotation whose every new value lifts a pause after too many failures.
pub const RESUME_ANNOTATION: &str = "horolog.dev/resume";
/// Finalizer on every Pod the operator creates, as batch/v1 Job's
/// `batch.kubernetes.io/job-tracking`: the Pod (and its final status) stays until the run's
/// status records its outcome, so a Pod that ends and is deleted while no operator watches is
/// still seen, and its attempt never runs twice. The operator removes it with one patch once
/// the outcome is written, or when the run is gone.
pub const TRACKING_FINALIZER: &str = "horolog.dev/run-tracking";

/// The longest name that is also a valid label value (and pod hostname).
pub const MAX_NAME_LEN: usize = 63;

/// `name` if it fits in `max` characters, otherwise a prefix of it plus a hash of the whole
/// name, so different long names stay different and the result is still a DNS label.
pub fn short_name(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let keep = max.saturating_sub(hash.len() + 1);
    // Cut on a char boundary (names are ASCII in practice) and never end the prefix with a
    // separator, which would make two separators in a row or an invalid label.
    let mut prefix: String = name.chars().take(keep).collect();
    while prefix.ends_with(['-', '.']) {
        prefix.pop();
    }
    format!("{prefix}-{hash}")
}

/// The name of attempt `attempt` (1-based) of a JobRun's Pod (and batch/v1 Job).
pub fn pod_name(jobrun: &str, attempt: i32) -> String {
    let suffix = format!("-{attempt}");
    // Shorten the JobRun part, not the whole: the attempt number must stay readable.
    format!("{}{suffix}", short_name(jobrun, MAX_NAME_LEN - suffix.len()))
}

/// The name of the JobRun for `fire_time`: `<schedule>-<unix seconds>`, shortened with a
/// hash when too long. The same fire time can never produce two JobRuns. A fire time off the
/// whole second gets its milliseconds appended, so two fire times within one second never
/// share a name.
pub fn run_name(schedule: &str, fire_time: DateTime<Utc>) -> String {
    let millis = fire_time.timestamp_subsec_millis();
    let name = if millis == 0 {
        format!("{schedule}-{}", fire_time.timestamp())
    } else {
        format!("{schedule}-{}-{millis:03}", fire_time.timestamp())
    };
    short_name(&name, MAX_NAME_LEN)
}

/// The name of the JobRun a `horolog.dev/run-now` value asks for (one per value).
pub fn run_now_name(schedule: &str, value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    short_name(&format!("{schedule}-now-{hash}"), MAX_NAME_LEN)
}

/// A short hash of a trigger, kept in status beside the cursor: when it changes, the trigger
/// was edited and firing carries on from the moment of the edit. An absent timezone hashes
/// as `UTC`, its default, so the API server filling in the default is not an edit.
pub fn trigger_hash(trigger: &TriggerSpec) -> String {
    let mut normalized = trigger.clone();
    normalized.timezone.get_or_insert_with(|| "UTC".to_string());
    let json = serde_json::to_vec(&normalized).unwrap_or_default();
    Sha256::digest(&json)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_run_is_named_after_its_fire_time_in_unix_seconds() {
        assert_eq!(
            run_name("nightly-report", at("2026-01-01T08:00:00Z")),
            "nightly-report-1767254400"
        );
    }

    #[test]
    fn fire_times_within_one_second_get_distinct_names() {
        let whole = run_name("s", at("2026-01-01T08:00:01Z"));
        let half = run_name("s", at("2026-01-01T08:00:01.500Z"));
        assert_eq!(half, "s-1767254401-500");
        assert_ne!(whole, half);
    }

    #[test]
    fn long_schedule_names_are_shortened_to_a_valid_name() {
        let name = run_name(&"x".repeat(300), at("2026-01-01T08:00:00Z"));
        assert!(name.len() <= 253, "{}", name.len());
        assert_ne!(name, run_name(&"x".repeat(299), at("2026-01-01T08:00:00Z")));
    }

    #[test]
    fn the_trigger_hash_ignores_the_defaulted_timezone_but_not_an_edit() {
        let spec: TriggerSpec = serde_json::from_value(serde_json::json!({"cron": "0 9 * * *"})).unwrap();
        let mut utc = spec.clone();
        utc.timezone = Some("UTC".into());
        assert_eq!(trigger_hash(&spec), trigger_hash(&utc));
        let mut edited = spec.clone();
        edited.cron = Some("0 10 * * *".into());
        assert_ne!(trigger_hash(&spec), trigger_hash(&edited));
    }
}
