//! The checks the CRD schema's CEL rules and bounds make at `kubectl apply` time, repeated in
//! Rust for the paths that do not pass through an API server (`horolog preview`, local mode,
//! `kubectl horolog lint`) and as a second line of defence. Each CEL rule's message is a
//! constant shared by the schema and the check here (tests/crds.rs proves every rule has its
//! check). Unknown fields and wrong types are [`super::schema_check`]'s; trigger expressions
//! are checked by `horolog_core::trigger::Trigger::compile`.
//!
//! [`Validate::problems`] is the one entry point per kind every offline path calls.

use chrono::{DateTime, Utc};
use horolog_core::trigger::Trigger;

use super::{
    Backfill, BackfillSpec, Calendar, ConcurrencyPolicy, JobRun, JobRunSpec, JobRunTemplate, JobTemplate,
    Schedule, ScheduleSpec, Task, TaskSpec,
};

/// Every problem the API server (schema bounds and CEL rules) or the operator (trigger
/// expressions, time zones) would find in a horolog object, offline. Unknown fields and types
/// are checked before decoding, by [`super::schema_check::check_object`].
pub trait Validate {
    /// Every problem; empty: the object is valid. `now` stands in for the creation time of
    /// an object not yet created (it anchors an interval trigger).
    fn problems(&self, now: DateTime<Utc>) -> Vec<FieldError>;
}

impl Validate for Schedule {
    fn problems(&self, now: DateTime<Utc>) -> Vec<FieldError> {
        let mut problems = self.spec.problems();
        if let Err(e) = Trigger::compile(&self.spec.trigger, self.created_at().unwrap_or(now)) {
            problems.push(FieldError {
                field: format!("spec.{}", e.field),
                value: e.value,
                message: e.message,
            });
        }
        problems
    }
}

impl Validate for JobRun {
    fn problems(&self, _: DateTime<Utc>) -> Vec<FieldError> {
        self.spec.problems()
    }
}

impl Validate for Task {
    fn problems(&self, _: DateTime<Utc>) -> Vec<FieldError> {
        self.spec.problems()
    }
}

impl Validate for Backfill {
    fn problems(&self, _: DateTime<Utc>) -> Vec<FieldError> {
        self.spec.problems()
    }
}

impl Validate for Calendar {
    /// The Calendar's own fields (days, ranges, recurring fields, time zone); its
    /// `calendarRefs` are checked where the other Calendars are known (the reconciler, lint).
    fn problems(&self, _: DateTime<Utc>) -> Vec<FieldError> {
        let spec = self.spec.exclusions();
        match horolog_core::exclusion::Exclusions::compile("", "spec", &spec, chrono_tz::Tz::UTC) {
            Ok(_) => Vec::new(),
            Err(e) => vec![FieldError {
                field: e.field,
                value: e.value,
                message: e.message,
            }],
        }
    }
}

/// A spec field with a value the schema would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {value}: {message}")]
pub struct FieldError {
    /// Path of the field as users write it, e.g. `spec.maxRunningJobs`.
    pub field: String,
    /// The offending value, as written.
    pub value: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    fn new(field: &str, value: impl ToString, message: &str) -> Self {
        FieldError {
            field: field.to_string(),
            value: value.to_string(),
            message: message.to_string(),
        }
    }
}

impl ScheduleSpec {
    /// Every problem the CRD schema and its CEL rules would report, plus the pod template
    /// checks; the trigger's expressions are checked by `Trigger::compile`. Empty: valid.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut problems = concurrency_problems(
            self.max_running_jobs,
            self.concurrency_policy,
            "must be at least 1 (absent = unlimited)",
        );
        for (field, value, min, max) in [
            (
                "spec.successfulRunsHistoryLimit",
                self.successful_runs_history_limit.map(i64::from),
                0,
                i64::from(super::MAX_COUNT),
            ),
            (
                "spec.failedRunsHistoryLimit",
                self.failed_runs_history_limit.map(i64::from),
                0,
                i64::from(super::MAX_COUNT),
            ),
            (
                "spec.pauseAfterFailures",
                self.pause_after_failures.map(i64::from),
                1,
                i64::from(super::MAX_COUNT),
            ),
            ("spec.maxRuns", self.max_runs, 1, super::MAX_RUNS),
            (
                "spec.ttlSecondsAfterFinished",
                self.ttl_seconds_after_finished,
                0,
                super::MAX_SECONDS,
            ),
            (
                "spec.maxWaitingRuns",
                self.max_waiting_runs.map(i64::from),
                0,
                i64::from(super::MAX_COUNT),
            ),
        ] {
            if let Some(value) = value.filter(|&v| v < min) {
                let message = if min == 0 {
                    "must be 0 or more"
                } else {
                    "must be at least 1"
                };
                problems.push(FieldError::new(field, value, message));
            }
            if let Some(value) = value.filter(|&v| v > max) {
                problems.push(FieldError::new(field, value, &format!("must be at most {max}")));
            }
        }
        match (&self.job_template, &self.task_ref) {
            (Some(template), None) => problems.extend(job_template_problems(template)),
            (None, Some(task)) if task.name.is_empty() => {
                problems.push(FieldError::new("spec.taskRef.name", "\"\"", "is required"));
            }
            (None, Some(_)) => {}
            (Some(_), Some(_)) | (None, None) => problems.push(FieldError::new(
                "spec",
                "jobTemplate/taskRef",
                super::JOB_TEMPLATE_XOR_TASK_MESSAGE,
            )),
        }
        if self.task_ref.is_none() && (!self.env.is_empty() || self.args.is_some()) {
            let field = if self.env.is_empty() {
                "spec.args"
            } else {
                "spec.env"
            };
            problems.push(FieldError::new(field, "<set>", super::ENV_ARGS_NEED_TASK_MESSAGE));
        }
        for (i, var) in self.env.iter().enumerate() {
            if var.name.is_empty() {
                problems.push(FieldError::new(
                    &format!("spec.env[{i}].name"),
                    "\"\"",
                    "is required",
                ));
            }
        }
        problems
    }

    /// The first of [`ScheduleSpec::problems`], if any.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }
}

impl JobRunSpec {
    /// Every problem the CRD schema and its CEL rules would report for a JobRun's spec, plus
    /// the pod template checks. Empty: valid.
    pub fn problems(&self) -> Vec<FieldError> {
        // The run limits (backoffLimit, activeDeadlineSeconds) apply with taskRef too.
        let mut problems = self.run.problems("spec");
        if self.run.template.is_some() == self.task_ref.is_some() {
            problems.insert(
                0,
                FieldError::new("spec", "template/taskRef", super::TEMPLATE_XOR_TASK_MESSAGE),
            );
        }
        if self.task_ref.is_none() && (!self.env.is_empty() || self.args.is_some()) {
            problems.push(FieldError::new(
                "spec.env",
                "<set>",
                super::JOBRUN_ENV_ARGS_NEED_TASK_MESSAGE,
            ));
        }
        problems
    }

    /// The first of [`JobRunSpec::problems`], if any.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }
}

impl JobRunTemplate {
    /// Every problem with the pod template and run limits; `at` is the path of this template.
    pub fn problems(&self, at: &str) -> Vec<FieldError> {
        let mut problems = Vec::new();
        let containers = self
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        if self.template.is_some() && containers.is_empty() {
            problems.push(FieldError::new(
                &format!("{at}.template.spec.containers"),
                "[]",
                "needs at least one container",
            ));
        }
        for (i, container) in containers.iter().enumerate() {
            if container.name.is_empty() {
                problems.push(FieldError::new(
                    &format!("{at}.template.spec.containers[{i}].name"),
                    "\"\"",
                    "is required",
                ));
            }
            if container.image.as_deref().unwrap_or_default().is_empty() {
                problems.push(FieldError::new(
                    &format!("{at}.template.spec.containers[{i}].image"),
                    "\"\"",
                    "is required",
                ));
            }
        }
        if let Some(limit) = self.backoff_limit.filter(|l| !(0..=100).contains(l)) {
            problems.push(FieldError::new(
                &format!("{at}.backoffLimit"),
                limit,
                "must be between 0 and 100",
            ));
        }
        if let Some(secs) = self.active_deadline_seconds.filter(|&s| s < 1) {
            problems.push(FieldError::new(
                &format!("{at}.activeDeadlineSeconds"),
                secs,
                "must be at least 1",
            ));
        }
        if let Some(secs) = self.active_deadline_seconds.filter(|&s| s > super::MAX_SECONDS) {
            problems.push(FieldError::new(
                &format!("{at}.activeDeadlineSeconds"),
                secs,
                &format!("must be at most {}", super::MAX_SECONDS),
            ));
        }
        problems
    }

    /// The first of [`JobRunTemplate::problems`], if any.
    pub fn validate(&self, at: &str) -> Result<(), FieldError> {
        self.problems(at).into_iter().next().map_or(Ok(()), Err)
    }
}

impl TaskSpec {
    /// Every problem the CRD schema would report for a Task's spec. Empty: valid.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut problems = job_template_problems(&self.job_template);
        problems.extend(concurrency_problems(
            self.max_running_jobs,
            self.concurrency_policy,
            "must be at least 1 (absent = no shared limit)",
        ));
        if let Some(max) = self.max_waiting_runs.filter(|&m| m < 0) {
            problems.push(FieldError::new("spec.maxWaitingRuns", max, "must be 0 or more"));
        }
        problems
    }
}

impl BackfillSpec {
    /// Every problem the CRD schema would report for a Backfill's spec. Empty: valid.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        if self.schedule_name.is_empty() {
            problems.push(FieldError::new("spec.scheduleName", "\"\"", "is required"));
        }
        if self.to <= self.from {
            // BACKFILL_RANGE_RULE
            problems.push(FieldError::new(
                "spec.to",
                self.to.to_rfc3339(),
                super::BACKFILL_RANGE_MESSAGE,
            ));
        }
        if let Some(max) = self.max_fire_times.filter(|&m| m < 1) {
            problems.push(FieldError::new("spec.maxFireTimes", max, "must be at least 1"));
        }
        if let Some(max) = self.max_fire_times.filter(|&m| m > i64::from(super::MAX_COUNT)) {
            problems.push(FieldError::new(
                "spec.maxFireTimes",
                max,
                &format!("must be at most {}", super::MAX_COUNT),
            ));
        }
        problems
    }
}

impl BackfillSpec {
    /// The problem of changing a Backfill's spec from `old` to `self` (the CRD's transition
    /// rule [`super::BACKFILL_IMMUTABLE_RULE`]).
    pub fn change_problems(&self, old: &BackfillSpec) -> Vec<FieldError> {
        if self == old {
            Vec::new()
        } else {
            vec![FieldError::new(
                "spec",
                "<changed>",
                super::BACKFILL_IMMUTABLE_MESSAGE,
            )]
        }
    }
}

/// The problems of a Schedule's or Task's `spec.jobTemplate`: its pod template is required.
fn job_template_problems(template: &JobTemplate) -> Vec<FieldError> {
    match &template.spec.template {
        Some(_) => template.spec.problems("spec.jobTemplate.spec"),
        None => vec![FieldError::new(
            "spec.jobTemplate.spec.template",
            "<absent>",
            super::TASK_TEMPLATE_REQUIRED_MESSAGE,
        )],
    }
}

/// The problems of a Schedule's or Task's `spec.maxRunningJobs` and `spec.concurrencyPolicy`:
/// a limit below 1 (`too_low` says what absent means there), and a limit with `Allow`.
fn concurrency_problems(
    max_running_jobs: Option<i32>,
    concurrency_policy: Option<ConcurrencyPolicy>,
    too_low: &str,
) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if let Some(max) = max_running_jobs.filter(|&m| m < 1) {
        problems.push(FieldError::new("spec.maxRunningJobs", max, too_low));
    }
    if let Some(max) = max_running_jobs.filter(|&m| m > super::MAX_RUNNING_JOBS) {
        problems.push(FieldError::new(
            "spec.maxRunningJobs",
            max,
            &format!("must be at most {}", super::MAX_RUNNING_JOBS),
        ));
    }
    if max_running_jobs.is_some() && concurrency_policy == Some(ConcurrencyPolicy::Allow) {
        problems.push(FieldError::new(
            "spec.concurrencyPolicy",
            "Allow",
            super::ALLOW_HAS_NO_LIMIT_MESSAGE,
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ScheduleSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BASE: &str = "trigger: {interval: 1m}\njobTemplate: {spec: {template: {spec: {containers: [{name: main, image: busybox}]}}}}\n";

    #[test]
    fn a_minimal_spec_is_valid() {
        assert_eq!(spec(BASE).validate(), Ok(()));
    }

    #[test]
    fn max_running_jobs_below_one_names_field_and_value() {
        let err = spec(&format!("{BASE}maxRunningJobs: 0\n"))
            .validate()
            .unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.value.as_str()),
            ("spec.maxRunningJobs", "0")
        );
    }

    #[test]
    fn negative_max_waiting_runs_is_refused() {
        let err = spec(&format!("{BASE}maxWaitingRuns: -1\n"))
            .validate()
            .unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.value.as_str()),
            ("spec.maxWaitingRuns", "-1")
        );
        assert!(spec(&format!("{BASE}maxWaitingRuns: 0\n")).validate().is_ok());
    }

    #[test]
    fn negative_history_limit_is_refused() {
        let err = spec(&format!("{BASE}failedRunsHistoryLimit: -1\n"))
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "spec.failedRunsHistoryLimit");
    }

    #[test]
    fn a_pod_without_containers_is_refused() {
        let err =
            spec("trigger: {interval: 1m}\njobTemplate: {spec: {template: {spec: {containers: []}}}}\n")
                .validate()
                .unwrap_err();
        assert_eq!(err.field, "spec.jobTemplate.spec.template.spec.containers");
    }

    #[test]
    fn every_problem_is_reported_not_only_the_first() {
        let problems = spec(&format!(
            "{BASE}maxRunningJobs: 0\npauseAfterFailures: 0\nmaxRuns: 0\nenv: [{{name: A, value: b}}]\n"
        ))
        .problems();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.maxRunningJobs",
                "spec.pauseAfterFailures",
                "spec.maxRuns",
                "spec.env"
            ]
        );
    }

    #[test]
    fn job_template_and_task_ref_are_exclusive() {
        let both = spec(&format!("{BASE}taskRef: {{name: t}}\n"))
            .validate()
            .unwrap_err();
        assert_eq!(both.message, crate::api::JOB_TEMPLATE_XOR_TASK_MESSAGE);
        let neither = spec("trigger: {interval: 1m}\n").validate().unwrap_err();
        assert_eq!(neither.message, crate::api::JOB_TEMPLATE_XOR_TASK_MESSAGE);
        assert_eq!(
            spec("trigger: {interval: 1m}\ntaskRef: {name: t}\nargs: [a]\n").validate(),
            Ok(())
        );
    }

    #[test]
    fn a_jobrun_with_task_ref_still_has_its_limits_checked() {
        let run: JobRunSpec =
            serde_yaml::from_str("taskRef: {name: t}\nbackoffLimit: 101\nactiveDeadlineSeconds: 0\n")
                .expect("a JobRun spec");
        let fields: Vec<String> = run.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["spec.backoffLimit", "spec.activeDeadlineSeconds"]);
        let both: JobRunSpec = serde_yaml::from_str(
            "taskRef: {name: t}\ntemplate: {spec: {containers: [{name: a, image: b}]}}\n",
        )
        .expect("a JobRun spec");
        assert_eq!(
            both.validate().map_err(|e| e.message),
            Err(crate::api::TEMPLATE_XOR_TASK_MESSAGE.to_string())
        );
    }

    #[test]
    fn allow_with_a_limit_is_refused() {
        let err = spec(&format!("{BASE}maxRunningJobs: 2\nconcurrencyPolicy: Allow\n"))
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "spec.concurrencyPolicy");
    }

    #[test]
    fn a_container_without_image_is_refused() {
        let err = spec(
            "trigger: {interval: 1m}\njobTemplate: {spec: {template: {spec: {containers: [{name: a}]}}}}\n",
        )
        .validate()
        .unwrap_err();
        assert_eq!(
            err.field,
            "spec.jobTemplate.spec.template.spec.containers[0].image"
        );
    }
}
