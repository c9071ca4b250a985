//! `backfill SCHEDULE --from T --to T [--dry-run]`: creates a Backfill; a dry run waits for the
//! operator's list of fire times.

use std::io::Write;
use std::pin::pin;

use chrono::{DateTime, Utc};
use clap::Args;
use futures::StreamExt;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::watcher::watch_object;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use super::lookup::find;
use super::output::{self, local_time, zone_of};
use super::{Error, Outcome, Scope};
use horolog::api::{Backfill, BackfillPhase, BackfillSpec, Duration, Schedule};
use horolog::pod::{MAX_NAME_LEN, short_name};

/// The arguments of `backfill`.
#[derive(Debug, Clone, Args)]
pub struct BackfillArgs {
    /// The Schedule whose fire times to run.
    pub schedule: String,
    /// The start of the range, inclusive (RFC 3339), e.g. 2026-01-01T00:00:00Z.
    #[arg(long, value_name = "RFC3339")]
    pub from: DateTime<Utc>,
    /// The end of the range, exclusive (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub to: DateTime<Utc>,
    /// Only list the fire times (the operator answers in the Backfill's status); create no run.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the trigger's own fire times, ignoring the Schedule's Calendars and trigger.exclude.
    #[arg(long)]
    pub ignore_exclusions: bool,
    /// The Backfill's name (default: generated from the Schedule's).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long a dry run waits for the operator's answer.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: Duration,
}

/// What a dry run prints with `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// The Schedule.
    pub schedule: String,
    /// The range's start.
    pub from: String,
    /// The range's end.
    pub to: String,
    /// How many fire times the range holds.
    pub fire_times: i64,
    /// The first 100 of them, in the trigger's time zone.
    pub preview: Vec<String>,
}

/// Creates the Backfill; with `--dry-run`, waits for its `status.preview`, prints the fire
/// times and deletes it (a dry run creates nothing worth keeping). When the operator does not
/// answer within `--timeout`, says so and leaves the Backfill to look at later.
pub async fn backfill(client: &Client, scope: &Scope, args: &BackfillArgs, out: &mut dyn Write) -> Outcome {
    let schedule: Schedule = find(client, scope, "Schedule", &args.schedule).await?;
    let schedule_name = schedule.name_any();
    let namespace = schedule.namespace().unwrap_or_else(|| scope.namespace.clone());
    let spec = BackfillSpec {
        schedule_name: schedule_name.clone(),
        from: args.from,
        to: args.to,
        concurrency_policy: None,
        max_fire_times: None,
        dry_run: args.dry_run,
        ignore_exclusions: args.ignore_exclusions,
    };
    if let Some(problem) = spec.problems().into_iter().next() {
        return Err(Error::Invalid(format!(
            "--from {} --to {}: {}",
            args.from.to_rfc3339(),
            args.to.to_rfc3339(),
            problem.message
        )));
    }
    let suffix = if args.dry_run { "dry-run" } else { "backfill" };
    let metadata = match &args.name {
        Some(name) => ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        // Room for the 5 characters the API server appends, within a label value's 63.
        None => ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                short_name(&format!("{schedule_name}-{suffix}"), MAX_NAME_LEN - 6)
            )),
            ..ObjectMeta::default()
        },
    };
    let api: Api<Backfill> = Api::namespaced(client.clone(), &namespace);
    let created = api
        .create(
            &PostParams::default(),
            &Backfill {
                metadata,
                spec,
                status: None,
            },
        )
        .await
        .map_err(Error::api(format!(
            "creating a backfill of schedule {schedule_name}"
        )))?;
    let name = created.name_any();
    if !args.dry_run {
        let names = [output::kind_name("Backfill", &name)];
        return output::structured(out, &scope.output, &created, &names, |out, _| {
            writeln!(
                out,
                "backfill/{name} created: the fire times of schedule {schedule_name} from {} to {} (follow it with kubectl get backfill {name} -w)",
                args.from.to_rfc3339(),
                args.to.to_rfc3339()
            )
            .map_err(Error::from)
        })
        .map(|()| 0);
    }
    let answered = answer(client, &namespace, &name, args.timeout).await?;
    let status = answered.status.unwrap_or_default();
    if status.phase == Some(BackfillPhase::Failed) {
        return Err(Error::Invalid(format!(
            "backfill/{name} (dry run) failed: {}",
            status.message.unwrap_or_default()
        )));
    }
    api.delete(&name, &DeleteParams::default())
        .await
        .map_err(Error::api(format!("deleting the dry run backfill {name}")))?;
    let tz = zone_of(&schedule.spec.trigger);
    let dry_run = DryRun {
        schedule: schedule_name.clone(),
        from: local_time(args.from, tz),
        to: local_time(args.to, tz),
        fire_times: status.fire_times.unwrap_or(status.preview.len() as i64),
        preview: status.preview.iter().map(|t| local_time(*t, tz)).collect(),
    };
    // The Backfill was deleted: -o name names the Schedule whose fire times these are.
    let names = [output::kind_name("Schedule", &schedule_name)];
    output::structured(out, &scope.output, &dry_run, &names, |out, _| {
        let listed = if dry_run.fire_times > dry_run.preview.len() as i64 {
            format!("; the first {}:", dry_run.preview.len())
        } else if dry_run.fire_times > 0 {
            ":".to_string()
        } else {
            String::new()
        };
        writeln!(
            out,
            "schedule/{schedule_name} has {} fire times from {} to {} (exclusive){listed}",
            dry_run.fire_times, dry_run.from, dry_run.to
        )?;
        if dry_run.preview.is_empty() {
            return Ok(());
        }
        let rows: Vec<Vec<String>> = dry_run
            .preview
            .iter()
            .enumerate()
            .map(|(i, t)| vec![(i + 1).to_string(), t.clone()])
            .collect();
        output::table(out, &["#", "FIRE TIME"], &rows)
    })?;
    Ok(0)
}

/// The Backfill once the operator has finished with it (Complete or Failed).
async fn answer(client: &Client, namespace: &str, name: &str, timeout: Duration) -> Result<Backfill, Error> {
    let api: Api<Backfill> = Api::namespaced(client.clone(), namespace);
    let answered = tokio::time::timeout(timeout.as_std(), async {
        let mut changes = pin!(watch_object(api, name));
        while let Some(change) = changes.next().await {
            match change {
                Ok(Some(backfill))
                    if matches!(
                        backfill.status.as_ref().and_then(|s| s.phase),
                        Some(BackfillPhase::Complete | BackfillPhase::Failed)
                    ) =>
                {
                    return Ok(backfill);
                }
                Ok(_) => {}
                Err(e) => return Err(Error::Invalid(format!("watching backfill {name}: {e}"))),
            }
        }
        Err(Error::Invalid(format!("the watch of backfill {name} ended")))
    })
    .await;
    answered.unwrap_or_else(|_| {
        Err(Error::Timeout {
            what: format!(
                "the operator to answer the dry run backfill/{name} (is it running?); the Backfill stays: kubectl get backfill {name} -o yaml"
            ),
            after: timeout,
        })
    })
}
