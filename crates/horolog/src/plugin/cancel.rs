//! `cancel JOBRUN`: the cancel annotation the operator serves.

use std::io::Write;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::lookup::find;
use super::{Error, Outcome, Scope};
use crate::api::{CANCEL_ANNOTATION, JobRun};

/// Sets `horolog.dev/cancel: <by>` on the JobRun (`by` says who and when), unless it has
/// finished or a cancel was already asked for.
pub async fn cancel(client: &Client, scope: &Scope, jobrun: &str, by: &str, out: &mut dyn Write) -> Outcome {
    let run: JobRun = find(client, scope, "JobRun", jobrun).await?;
    let name = run.name_any();
    let phase = run.phase().as_str();
    if run.is_finished() {
        writeln!(
            out,
            "jobrun/{name} has already finished ({phase}); nothing to cancel"
        )?;
        return Ok(0);
    }
    if let Some(asked) = run.cancel_requested() {
        writeln!(
            out,
            "jobrun/{name}: cancel already asked for ({asked}); it is {phase}"
        )?;
        return Ok(0);
    }
    let namespace = run.namespace().unwrap_or_else(|| scope.namespace.clone());
    let body = json!({"metadata": {"annotations": {CANCEL_ANNOTATION: by}}});
    Api::<JobRun>::namespaced(client.clone(), &namespace)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map_err(Error::api(format!(
            "setting {CANCEL_ANNOTATION} on jobrun {name}"
        )))?;
    writeln!(
        out,
        "jobrun/{name}: annotation {CANCEL_ANNOTATION}: {by} (it was {phase})"
    )?;
    Ok(0)
}
