//! `cancel JOBRUN`: the cancel annotation the operator serves.

use std::io::Write;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::lookup::find;
use super::output::{Format, kind_name};
use super::targets::{Targets, nothing_chosen, scope_of};
use super::{Error, Outcome, Scope};
use horolog::api::{CANCEL_ANNOTATION, JobRun};

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

/// `cancel` on every JobRun the targets choose (with `-l` / `--all`, the unfinished ones);
/// with `-o name`, prints the names only.
pub async fn cancel_targets(
    client: &Client,
    scope: &Scope,
    targets: &Targets,
    by: &str,
    out: &mut dyn Write,
) -> Outcome {
    let chosen: Vec<(Scope, String)> = match targets.select::<JobRun>(client, scope, "JobRun").await? {
        None => targets.names.iter().map(|n| (scope.clone(), n.clone())).collect(),
        Some(found) => {
            let unfinished: Vec<(Scope, String)> = found
                .iter()
                .filter(|run| !run.is_finished())
                .map(|run| (scope_of(scope, run.namespace()), run.name_any()))
                .collect();
            if unfinished.is_empty() {
                return Err(Error::Invalid(nothing_chosen(
                    "unfinished JobRun",
                    targets,
                    scope,
                )));
            }
            unfinished
        }
    };
    for (scope, name) in &chosen {
        if scope.output == Format::Name {
            cancel(client, scope, name, by, &mut std::io::sink()).await?;
            writeln!(out, "{}", kind_name("JobRun", name))?;
        } else {
            cancel(client, scope, name, by, out).await?;
        }
    }
    Ok(0)
}
