//! The Task reconciler: a Task's status says how many of its runs hold a slot, how many
//! Schedules reference it, and whether its template is usable. Admission of its runs is in
//! `admission.rs`, with every other pool.

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::instrument;

use super::{Context, Error};
use crate::api::{Condition, Task, TaskStatus, find_condition, set_condition};

/// The condition type of a Task.
pub use crate::api::READY;

/// Reconciles one Task: counts its running runs and its Schedules, checks its template.
#[instrument(skip(task, ctx), fields(kind = "Task", namespace = %task.namespace().unwrap_or_default(), object = %task.name_any()))]
pub async fn reconcile(task: Arc<Task>, ctx: Arc<Context>) -> Result<Action, Error> {
    if task.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if ctx.status.behind_own_write(task.as_ref()) {
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
    }
    let namespace = task.namespace().unwrap_or_default();
    let name = task.name_any();
    let running = ctx
        .runs_of_task(&namespace, &name)
        .iter()
        .filter(|run| super::admission::holds_slot(&ctx, run))
        .count();
    let schedules = ctx
        .stores
        .schedules
        .state()
        .iter()
        .filter(|s| {
            s.namespace().as_deref() == Some(namespace.as_str()) && s.task_name() == Some(name.as_str())
        })
        .count();
    let old = task.status.clone().unwrap_or_default();
    let problems = task.spec.problems();
    let (ok, reason, message) = match problems.first() {
        None => (true, "Valid", format!("{schedules} Schedule(s) use this Task")),
        Some(problem) => (false, "InvalidTemplate", problem.to_string()),
    };
    let mut status = TaskStatus {
        observed_generation: task.metadata.generation,
        running_jobs: running as i32,
        schedules: schedules as i32,
        ..old.clone()
    };
    // kstatus: Stalled is True exactly while Ready is False (a person must fix the template).
    let stalled_reason = if ok { "Progressing" } else { reason };
    for (type_, on, reason, message) in [
        (READY, ok, reason, message.clone()),
        ("Stalled", !ok, stalled_reason, message),
    ] {
        let previous = find_condition(&old.conditions, type_);
        let condition = Condition::transition(
            previous,
            type_,
            on,
            reason,
            message,
            task.metadata.generation,
            ctx.now(),
        );
        set_condition(&mut status.conditions, condition);
    }
    ctx.status
        .patch(&ctx.client, task.as_ref(), &old, &status)
        .await?;
    Ok(Action::await_change())
}
