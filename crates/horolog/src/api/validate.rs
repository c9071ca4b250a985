//! The checks the CRD schema makes at `kubectl apply` time, repeated in Rust for the paths
//! that do not pass through an API server (`horolog preview`, local mode) and as a second
//! line of defence. Trigger expressions are checked by `horolog_core::trigger::Trigger::compile`.

use super::{
    BackfillSpec, ConcurrencyPolicy, JobRunSpec, JobRunTemplate, JobTemplate, ScheduleSpec, TaskSpec,
};

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
        for (field, value, min) in [
            (
                "spec.successfulRunsHistoryLimit",
                self.successful_runs_history_limit.map(i64::from),
                0,
            ),
            (
                "spec.failedRunsHistoryLimit",
                self.failed_runs_history_limit.map(i64::from),
                0,
            ),
            (
                "spec.pauseAfterFailures",
                self.pause_after_failures.map(i64::from),
                1,
            ),
            ("spec.maxRuns", self.max_runs, 1),
            ("spec.ttlSecondsAfterFinished", self.ttl_seconds_after_finished, 0),
            ("spec.maxWaitingRuns", self.max_waiting_runs.map(i64::from), 0),
        ] {
            if let Some(value) = value.filter(|&v| v < min) {
                let message = if min == 0 {
                    "must be 0 or more"
                } else {
                    "must be at least 1"
                };
                problems.push(FieldError::new(field, value, message));
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
                "env and args apply only with taskRef; with template, set them in the pod template",
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
            problems.push(FieldError::new(
                "spec.to",
                self.to.to_rfc3339(),
                super::BACKFILL_RANGE_MESSAGE,
            ));
        }
        if let Some(max) = self.max_fire_times.filter(|&m| m < 1) {
            problems.push(FieldError::new("spec.maxFireTimes", max, "must be at least 1"));
        }
        problems
    }
}

/// The problems of a Schedule's or Task's `spec.jobTemplate`: its pod template is required.
fn job_template_problems(template: &JobTemplate) -> Vec<FieldError> {
    match &template.spec.template {
        Some(_) => template.spec.problems("spec.jobTemplate.spec"),
        None => vec![FieldError::new(
            "spec.jobTemplate.spec.template",
            "<absent>",
            "is required",
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
