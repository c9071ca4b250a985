//! The checks the CRD schema makes at `kubectl apply` time, repeated in Rust for the paths
//! that do not pass through an API server (`horolog preview`, local mode) and as a second
//! line of defence. Trigger expressions are checked by `horolog_core::trigger::Trigger::compile`.

use super::{JobRunTemplate, ScheduleSpec};

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
    /// Checks everything but the trigger's expressions; see the module docs.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(max) = self.max_running_jobs.filter(|&m| m < 1) {
            return Err(FieldError::new(
                "spec.maxRunningJobs",
                max,
                "must be at least 1 (absent = unlimited)",
            ));
        }
        for (field, limit) in [
            (
                "spec.successfulRunsHistoryLimit",
                self.successful_runs_history_limit,
            ),
            ("spec.failedRunsHistoryLimit", self.failed_runs_history_limit),
        ] {
            if let Some(limit) = limit.filter(|&l| l < 0) {
                return Err(FieldError::new(field, limit, "must be 0 or more"));
            }
        }
        self.job_template.spec.validate("spec.jobTemplate.spec")
    }
}

impl JobRunTemplate {
    /// Checks the pod template and run limits; `at` is the path of this template.
    pub fn validate(&self, at: &str) -> Result<(), FieldError> {
        let containers = self
            .template
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        if containers.is_empty() {
            return Err(FieldError::new(
                &format!("{at}.template.spec.containers"),
                "[]",
                "needs at least one container",
            ));
        }
        for (i, container) in containers.iter().enumerate() {
            if container.name.is_empty() {
                return Err(FieldError::new(
                    &format!("{at}.template.spec.containers[{i}].name"),
                    "\"\"",
                    "is required",
                ));
            }
            if container.image.as_deref().unwrap_or_default().is_empty() {
                return Err(FieldError::new(
                    &format!("{at}.template.spec.containers[{i}].image"),
                    "\"\"",
                    "is required",
                ));
            }
        }
        if let Some(limit) = self.backoff_limit.filter(|l| !(0..=100).contains(l)) {
            return Err(FieldError::new(
                &format!("{at}.backoffLimit"),
                limit,
                "must be between 0 and 100",
            ));
        }
        if let Some(secs) = self.active_deadline_seconds.filter(|&s| s < 1) {
            return Err(FieldError::new(
                &format!("{at}.activeDeadlineSeconds"),
                secs,
                "must be at least 1",
            ));
        }
        Ok(())
    }
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
