//! `history SCHEDULE [--failed] [--limit N]`: a Schedule's JobRuns, newest first.

use std::collections::HashMap;
use std::io::Write;
use std::pin::pin;

use clap::Args;
use futures::StreamExt;
use kube::api::ListParams;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use super::lookup::find;
use super::output::{self, first_line, local_time, zone_of};
use super::{Error, Outcome, Scope};
use horolog::api::{JobRun, JobRunPhase, SCHEDULE_LABEL, Schedule};
use horolog::pod::{MAX_NAME_LEN, short_name};

/// How much of a result's first line the table shows.
const RESULT_WIDTH: usize = 40;

/// The arguments of `history`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The Schedule.
    pub schedule: String,
    /// Only the runs that did not succeed: Failed, Missed, Skipped, Cancelled.
    #[arg(long)]
    pub failed: bool,
    /// At most this many runs (the newest).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// After the list, print each run again when it changes, until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// One run, as `history -o json|yaml` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    /// The JobRun's name.
    pub name: String,
    /// Its fire time, in the trigger's time zone.
    pub fire_time: String,
    /// Its phase.
    pub phase: String,
    /// Why it is in its phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// The exit code of its first container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Its result (the termination message), whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// An RFC 3339 time without its fraction of a second (a run-now run fires at the instant it
/// was asked for, to the nanosecond), for the table; JSON and YAML keep it whole.
fn to_the_second(time: &str) -> String {
    match (time.find('.'), time.rfind(['+', '-', 'Z'])) {
        (Some(dot), Some(zone)) if dot < zone => format!("{}{}", &time[..dot], &time[zone..]),
        _ => time.to_string(),
    }
}

/// The JobRuns of the Schedule `schedule` in `namespace`, in no particular order.
pub(crate) async fn runs_of(client: &Client, namespace: &str, schedule: &str) -> Result<Vec<JobRun>, Error> {
    let selector = format!("{SCHEDULE_LABEL}={}", short_name(schedule, MAX_NAME_LEN));
    let runs = Api::<JobRun>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::api(format!("listing the jobruns of schedule {schedule}")))?
        .items;
    // A shortened label can be shared; the spec names the Schedule in full.
    Ok(runs
        .into_iter()
        .filter(|run| run.spec.schedule_name.as_deref() == Some(schedule))
        .collect())
}

/// One run as a row.
fn row_of(run: &JobRun, tz: chrono_tz::Tz) -> HistoryRow {
    let status = run.status.clone().unwrap_or_default();
    HistoryRow {
        name: run.name_any(),
        fire_time: local_time(run.fire_time(), tz),
        phase: run.phase().as_str().to_string(),
        reason: status.reason,
        duration: status.duration,
        exit_code: status.exit_code,
        result: status.result,
    }
}

const HEADER: [&str; 6] = ["NAME", "FIRE TIME", "PHASE", "DURATION", "EXIT", "RESULT"];

/// The table cells of a row; wide adds REASON and shows the result's first line uncut.
fn cells_of(row: &HistoryRow, wide: bool) -> Vec<String> {
    let result_width = if wide { usize::MAX } else { RESULT_WIDTH };
    let mut cells = vec![
        row.name.clone(),
        to_the_second(&row.fire_time),
        row.phase.clone(),
        row.duration.clone().unwrap_or_else(|| "-".into()),
        row.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
        row.result
            .as_deref()
            .map_or_else(String::new, |r| first_line(r, result_width)),
    ];
    if wide {
        cells.insert(3, row.reason.clone().unwrap_or_else(|| "-".into()));
    }
    cells
}

fn header(wide: bool) -> Vec<&'static str> {
    let mut header = HEADER.to_vec();
    if wide {
        header.insert(3, "REASON");
    }
    header
}

/// Lists the Schedule's JobRuns newest first: NAME, FIRE TIME, PHASE, DURATION, EXIT, RESULT
/// (its first line, cut), or every field with `-o json|yaml`; `-o wide` adds REASON. With
/// `--watch`, then prints each run again whenever its phase or duration changes (as
/// `kubectl get -w`), until the watch ends.
pub async fn history(client: &Client, scope: &Scope, args: &HistoryArgs, out: &mut dyn Write) -> Outcome {
    let schedule: Schedule = find(client, scope, "Schedule", &args.schedule).await?;
    let name = schedule.name_any();
    let namespace = schedule.namespace().unwrap_or_else(|| scope.namespace.clone());
    let shown = |run: &JobRun| !args.failed || (run.is_finished() && run.phase() != JobRunPhase::Succeeded);
    let mut runs: Vec<JobRun> = runs_of(client, &namespace, &name)
        .await?
        .into_iter()
        .filter(|run| shown(run))
        .collect();
    runs.sort_by_key(|run| std::cmp::Reverse((run.fire_time(), run.name_any())));
    runs.truncate(args.limit.unwrap_or(usize::MAX));
    let tz = zone_of(&schedule.spec.trigger);
    let rows: Vec<HistoryRow> = runs.iter().map(|run| row_of(run, tz)).collect();
    let names: Vec<String> = rows
        .iter()
        .map(|r| output::kind_name("JobRun", &r.name))
        .collect();
    output::structured(out, &scope.output, &rows, &names, |out, wide| {
        if rows.is_empty() {
            let which = if args.failed { "failed " } else { "" };
            writeln!(
                out,
                "schedule/{name} in namespace {namespace} has no {which}JobRuns"
            )?;
            return Ok(());
        }
        let cells: Vec<Vec<String>> = rows.iter().map(|row| cells_of(row, wide)).collect();
        output::table(out, &header(wide), &cells)
    })?;
    if !args.watch {
        return Ok(0);
    }
    out.flush()?;
    let mut seen: HashMap<String, (String, Option<String>)> = rows
        .iter()
        .map(|r| (r.name.clone(), (r.phase.clone(), r.duration.clone())))
        .collect();
    let selector = format!("{SCHEDULE_LABEL}={}", short_name(&name, MAX_NAME_LEN));
    let api = Api::<JobRun>::namespaced(client.clone(), &namespace);
    let mut events = pin!(watcher(api, watcher::Config::default().labels(&selector)));
    while let Some(event) = events.next().await {
        let run = match event {
            Ok(watcher::Event::Apply(run) | watcher::Event::InitApply(run)) => run,
            Ok(_) => continue,
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "watching the jobruns of schedule {name}: {e}"
                )));
            }
        };
        if run.spec.schedule_name.as_deref() != Some(name.as_str()) || !shown(&run) {
            continue;
        }
        let row = row_of(&run, tz);
        let key = (row.phase.clone(), row.duration.clone());
        if seen.get(&row.name) == Some(&key) {
            continue;
        }
        seen.insert(row.name.clone(), key);
        let names = [output::kind_name("JobRun", &row.name)];
        output::structured(out, &scope.output, &row, &names, |out, wide| {
            writeln!(out, "{}", cells_of(&row, wide).join("  ").trim_end())?;
            Ok(())
        })?;
        out.flush()?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_fire_times_to_the_second() {
        assert_eq!(
            to_the_second("2026-12-02T07:56:04.698568741+01:00"),
            "2026-12-02T07:56:04+01:00"
        );
        assert_eq!(to_the_second("2026-12-02T07:56:04.5Z"), "2026-12-02T07:56:04Z");
        assert_eq!(
            to_the_second("2026-12-02T07:56:04-05:00"),
            "2026-12-02T07:56:04-05:00"
        );
    }
}
