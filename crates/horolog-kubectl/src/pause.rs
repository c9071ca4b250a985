//! `pause SCHEDULE` and `resume SCHEDULE`: spec.paused, and the resume annotation after a stop
//! for too many failures.

use std::io::Write;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::lookup::find;
use super::output::{Format, kind_name};
use super::targets::{Targets, nothing_chosen, scope_of};
use super::{Error, Outcome, Scope};
use horolog::api::{RESUME_ANNOTATION, Schedule};

/// The Ready reason of a Schedule stopped by `pauseAfterFailures`.
const TOO_MANY_FAILURES: &str = "TooManyFailures";

/// Sets `spec.paused: true` and says what changed.
pub async fn pause(client: &Client, scope: &Scope, schedule: &str, out: &mut dyn Write) -> Outcome {
    let schedule: Schedule = find(client, scope, "Schedule", schedule).await?;
    let name = schedule.name_any();
    if schedule.spec.paused {
        writeln!(
            out,
            "schedule/{name}: spec.paused is already true; nothing changed"
        )?;
        return Ok(0);
    }
    patch(client, scope, &schedule, json!({"spec": {"paused": true}})).await?;
    writeln!(out, "schedule/{name}: spec.paused: false -> true")?;
    Ok(0)
}

/// Sets `spec.paused: false`, and a new `horolog.dev/resume` value (`value`) when the Schedule
/// stopped after too many failures; says what changed.
pub async fn resume(
    client: &Client,
    scope: &Scope,
    schedule: &str,
    value: &str,
    out: &mut dyn Write,
) -> Outcome {
    let schedule: Schedule = find(client, scope, "Schedule", schedule).await?;
    let name = schedule.name_any();
    let stopped = schedule
        .condition("Ready")
        .filter(|ready| ready.status == "False" && ready.reason == TOO_MANY_FAILURES);
    if !schedule.spec.paused && stopped.is_none() {
        writeln!(
            out,
            "schedule/{name}: spec.paused is already false and it is not stopped by failures; nothing changed"
        )?;
        return Ok(0);
    }
    let mut body = json!({"spec": {"paused": false}});
    if stopped.is_some() {
        body["metadata"] = json!({"annotations": {RESUME_ANNOTATION: value}});
    }
    patch(client, scope, &schedule, body).await?;
    if schedule.spec.paused {
        writeln!(out, "schedule/{name}: spec.paused: true -> false")?;
    }
    if let Some(ready) = stopped {
        writeln!(
            out,
            "schedule/{name}: annotation {RESUME_ANNOTATION}: {value} (it had stopped firing: {})",
            ready.message
        )?;
    }
    Ok(0)
}

async fn patch(
    client: &Client,
    scope: &Scope,
    schedule: &Schedule,
    body: serde_json::Value,
) -> Result<(), Error> {
    let name = schedule.name_any();
    let namespace = schedule.namespace().unwrap_or_else(|| scope.namespace.clone());
    Api::<Schedule>::namespaced(client.clone(), &namespace)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map_err(Error::api(format!("patching schedule {name}")))?;
    Ok(())
}

/// `pause` on every Schedule the targets choose; with `-o name`, prints the names only.
pub async fn pause_targets(
    client: &Client,
    scope: &Scope,
    targets: &Targets,
    out: &mut dyn Write,
) -> Outcome {
    for_each(client, scope, targets, out, async |client, scope, name, out| {
        pause(client, scope, name, out).await
    })
    .await
}

/// `resume` on every Schedule the targets choose; with `-o name`, prints the names only.
pub async fn resume_targets(
    client: &Client,
    scope: &Scope,
    targets: &Targets,
    value: &str,
    out: &mut dyn Write,
) -> Outcome {
    for_each(client, scope, targets, out, async |client, scope, name, out| {
        resume(client, scope, name, value, out).await
    })
    .await
}

async fn for_each(
    client: &Client,
    scope: &Scope,
    targets: &Targets,
    out: &mut dyn Write,
    verb: impl AsyncFn(&Client, &Scope, &str, &mut dyn Write) -> Outcome,
) -> Outcome {
    let chosen: Vec<(Scope, String)> = match targets.select::<Schedule>(client, scope, "Schedule").await? {
        None => targets.names.iter().map(|n| (scope.clone(), n.clone())).collect(),
        Some(found) if found.is_empty() => {
            return Err(Error::Invalid(nothing_chosen("Schedule", targets, scope)));
        }
        Some(found) => found
            .iter()
            .map(|s| (scope_of(scope, s.namespace()), s.name_any()))
            .collect(),
    };
    for (scope, name) in &chosen {
        if scope.output == Format::Name {
            let found: Schedule = find(client, scope, "Schedule", name).await?;
            verb(client, scope, name, &mut std::io::sink()).await?;
            writeln!(out, "{}", kind_name("Schedule", &found.name_any()))?;
        } else {
            verb(client, scope, name, out).await?;
        }
    }
    Ok(0)
}
