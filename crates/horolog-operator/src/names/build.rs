//! The builders of what a Schedule (or a Backfill) creates: the JobRun of one fire time, and
//! the labels of a run's Pods and Jobs.

use chrono::{DateTime, TimeDelta, Utc};
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::{
    ATTEMPT_LABEL, JOBRUN_LABEL, MAX_NAME_LEN, RUN_NOW_ANNOTATION, SCHEDULE_LABEL, TASK_LABEL, run_now_name,
    short_name,
};
use crate::api::{JobRun, JobRunSpec, JobRunTemplate, Schedule, Task, TaskRef};

/// The JobRun a Schedule creates for one fire time (or a run-now value). `task` is the
/// Schedule's Task when it names one that exists: its run keeps the Task's limits and
/// executor, and its pod template is read when the run starts.
pub fn jobrun_for(
    schedule: &Schedule,
    task: Option<&Task>,
    name: String,
    fire_time: DateTime<Utc>,
    jitter: TimeDelta,
    start_deadline: Option<DateTime<Utc>>,
) -> JobRun {
    let (template_meta, run) = match (&schedule.spec.job_template, task) {
        (Some(template), _) => (
            template.metadata.clone().unwrap_or_default(),
            template.spec.clone(),
        ),
        (None, Some(task)) => (
            task.spec.job_template.metadata.clone().unwrap_or_default(),
            JobRunTemplate {
                template: None,
                ..task.spec.job_template.spec.clone()
            },
        ),
        (None, None) => Default::default(),
    };
    let mut labels = template_meta.labels;
    labels.insert(
        SCHEDULE_LABEL.to_string(),
        short_name(&schedule.name_any(), MAX_NAME_LEN),
    );
    if let Some(task) = schedule.task_name() {
        labels.insert(TASK_LABEL.to_string(), short_name(task, MAX_NAME_LEN));
    }
    let mut annotations = template_meta.annotations;
    if let Some(value) = schedule.annotation(RUN_NOW_ANNOTATION)
        && name == run_now_name(&schedule.name_any(), value)
    {
        annotations.insert(RUN_NOW_ANNOTATION.to_string(), value.to_string());
    }
    let jitter = jitter
        .to_std()
        .ok()
        .filter(|j| !j.is_zero())
        .map(crate::api::Duration::from);
    JobRun {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: schedule.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: schedule.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        spec: JobRunSpec {
            schedule_name: Some(schedule.name_any()),
            fire_time: Some(fire_time),
            jitter,
            start_deadline,
            task_ref: schedule.task_name().map(|name| TaskRef {
                name: name.to_string(),
            }),
            env: schedule.spec.env.clone(),
            args: schedule.spec.args.clone(),
            run,
        },
        status: None,
    }
}

/// The labels every Pod and Job of a run carries: its JobRun, attempt, Schedule and Task.
pub fn run_labels(jobrun: &JobRun, attempt: i32) -> Vec<(String, String)> {
    let mut labels = vec![
        (
            JOBRUN_LABEL.to_string(),
            short_name(&jobrun.name_any(), MAX_NAME_LEN),
        ),
        (ATTEMPT_LABEL.to_string(), attempt.to_string()),
    ];
    if let Some(schedule) = &jobrun.spec.schedule_name {
        labels.push((SCHEDULE_LABEL.to_string(), short_name(schedule, MAX_NAME_LEN)));
    }
    if let Some(task) = jobrun.task_name() {
        labels.push((TASK_LABEL.to_string(), short_name(task, MAX_NAME_LEN)));
    }
    labels
}
