//! Staged runs, the apply side (the decision is `stage`): which runs staged ahead of a fire
//! time that has come the pass must decide, creating a staged run, deleting one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use super::pass::Unstaged;
use super::stage;
use crate::api::{JobRun, RUN_NOW_ANNOTATION, Schedule};
use crate::controller::events::Note;
use crate::controller::{Context, Error, is_already_exists};
use crate::names::run_name;

/// Splits `runs` into the runs staged ahead of a fire time that has come and not started
/// (no Pod or Job, nothing in status), which the pass decides as if nothing were staged (see
/// `decide::decide_staged`), and the rest.
pub fn due(
    ctx: &Context,
    schedule: &Schedule,
    runs: Vec<Arc<JobRun>>,
    now: DateTime<Utc>,
) -> (Vec<Arc<JobRun>>, Vec<Arc<JobRun>>) {
    let cursor = schedule.status.as_ref().and_then(|s| s.cursor);
    runs.into_iter().partition(|run| {
        let fire_time = run.fire_time();
        fire_time <= now
            && cursor.is_none_or(|cursor| fire_time > cursor)
            && stage::created_ahead(run)
            && !run.is_finished()
            && run.cancel_requested().is_none()
            && !run.is_backfill()
            && !run.annotations().contains_key(RUN_NOW_ANNOTATION)
            && run.name_any() == run_name(&schedule.name_any(), fire_time)
            && run
                .status
                .as_ref()
                .is_none_or(|s| s.pod_name.is_none() && s.attempts.is_none())
            && ctx.pods.of_run(run).is_empty()
            && ctx.jobs.of_run(run).is_none()
    })
}

/// Creates the run of the next fire time ahead of it. Whatever goes wrong is left to the
/// pass at its fire time, which plans that fire time as if nothing were staged: an existing
/// run (`AlreadyExists`) is the staged one or is judged then, and a refusal is reported then.
pub async fn create(api: &Api<JobRun>, params: &PostParams, run: JobRun) {
    match api.create(params, &run).await {
        Ok(_) => info!(run = %run.name_any(), fire_time = %run.fire_time(), "staged"),
        Err(err) if is_already_exists(&err) => {}
        Err(err) => {
            warn!(run = %run.name_any(), error = %err, "could not stage the run; it is created at its fire time");
        }
    }
}

/// Deletes staged runs whose fire time will not fire, each with a Normal Event `Unstaged`
/// that says why.
pub async fn unstage(ctx: &Context, schedule: &Schedule, unstaged: Vec<Unstaged>) -> Result<(), Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    for unstaged in unstaged {
        info!(run = %unstaged.name, reason = unstaged.reason, "deleting a staged JobRun whose fire time will not fire");
        ctx.delete_run(&namespace, &unstaged.name).await?;
        let message = format!(
            "deleted staged JobRun {} ({}): {}",
            unstaged.name, unstaged.reason, unstaged.message
        );
        ctx.publish(schedule, Note::normal("Unstaged", message)).await;
    }
    Ok(())
}
