//! `run SCHEDULE [--wait]`: one run now, through the run-now annotation the operator serves.

use std::io::Write;
use std::pin::pin;

use clap::Args;
use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher::watch_object;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::lookup::find;
use super::{Error, Outcome, Scope};
use horolog::api::{Duration, JobRun, JobRunPhase, RUN_NOW_ANNOTATION, Schedule};
use horolog::names::run_now_name;

/// The arguments of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The Schedule.
    pub schedule: String,
    /// Follow the run to its end, print its result and exit with its exit code (1 when it
    /// ended without one, e.g. Missed or Cancelled).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. 90s, 30m, 2h.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub timeout: Duration,
}

/// Sets `horolog.dev/run-now` on the Schedule to `value` (new each time: the operator creates
/// one JobRun per value) and prints that JobRun's name; with `--wait`, follows it.
pub async fn run(
    client: &Client,
    scope: &Scope,
    args: &RunArgs,
    value: &str,
    out: &mut dyn Write,
) -> Outcome {
    let schedule: Schedule = find(client, scope, "Schedule", &args.schedule).await?;
    let name = schedule.name_any();
    let namespace = schedule.namespace().unwrap_or_else(|| scope.namespace.clone());
    let patch = json!({"metadata": {"annotations": {RUN_NOW_ANNOTATION: value}}});
    Api::<Schedule>::namespaced(client.clone(), &namespace)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::api(format!(
            "setting {RUN_NOW_ANNOTATION} on schedule {name}"
        )))?;
    let run_name = run_now_name(&name, value);
    writeln!(out, "{run_name}")?;
    if !args.wait {
        return Ok(0);
    }
    out.flush()?;
    let run = follow(client, &namespace, &run_name, args.timeout).await?;
    report(&run, out)?;
    Ok(exit_code(&run))
}

/// Watches the JobRun `name` (which the operator may not have created yet) until it finishes.
pub(crate) async fn follow(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<JobRun, Error> {
    let api: Api<JobRun> = Api::namespaced(client.clone(), namespace);
    let mut last: Option<JobRunPhase> = None;
    let watched = tokio::time::timeout(timeout.as_std(), async {
        let mut changes = pin!(watch_object(api, name));
        while let Some(change) = changes.next().await {
            match change {
                Ok(Some(run)) if run.is_finished() => return Ok(run),
                Ok(Some(run)) => last = Some(run.phase()),
                Ok(None) if last.is_some() => {
                    return Err(Error::Invalid(format!(
                        "jobrun {name} was deleted before it finished"
                    )));
                }
                Ok(None) => {}
                Err(e) => return Err(Error::Invalid(format!("watching jobrun {name}: {e}"))),
            }
        }
        Err(Error::Invalid(format!("the watch of jobrun {name} ended")))
    })
    .await;
    watched.unwrap_or_else(|_| {
        let state = match last {
            Some(phase) => format!("it is {}", phase.as_str()),
            None => "the operator has not created it".to_string(),
        };
        Err(Error::Timeout {
            what: format!("jobrun {name} to finish ({state})"),
            after: timeout,
        })
    })
}

/// `Failed (BackoffLimitExceeded): exit code 3 after 4s: message`, then the result as is.
fn report(run: &JobRun, out: &mut dyn Write) -> Result<(), Error> {
    let status = run.status.clone().unwrap_or_default();
    let phase = run.phase();
    let mut line = phase.as_str().to_string();
    if let Some(reason) = status.reason.filter(|r| r != phase.as_str()) {
        line.push_str(&format!(" ({reason})"));
    }
    if let Some(code) = status.exit_code {
        line.push_str(&format!(": exit code {code}"));
    }
    if let Some(duration) = status.duration {
        line.push_str(&format!(" after {duration}"));
    }
    if let Some(message) = status
        .message
        .filter(|m| !m.is_empty() && phase != JobRunPhase::Succeeded)
    {
        line.push_str(&format!(": {message}"));
    }
    writeln!(out, "{line}")?;
    if let Some(result) = status.result.filter(|r| !r.is_empty()) {
        write!(out, "{result}")?;
        if !result.ends_with('\n') {
            writeln!(out)?;
        }
    }
    Ok(())
}

/// 0 for Succeeded; else the run's exit code, or 1 when it has none (Missed, Cancelled, ...).
pub fn exit_code(run: &JobRun) -> u8 {
    if run.phase() == JobRunPhase::Succeeded {
        return 0;
    }
    run.status
        .as_ref()
        .and_then(|s| s.exit_code)
        .and_then(|code| u8::try_from(code).ok())
        .filter(|&code| code != 0)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use horolog::api::JobRunStatus;

    fn ended(phase: JobRunPhase, exit_code: Option<i32>) -> JobRun {
        let mut run = JobRun::new("r", Default::default());
        run.status = Some(JobRunStatus {
            phase: Some(phase),
            exit_code,
            ..JobRunStatus::default()
        });
        run
    }

    #[test]
    fn the_exit_code_is_the_runs_or_one_when_it_failed_without_one() {
        assert_eq!(exit_code(&ended(JobRunPhase::Succeeded, Some(0))), 0);
        assert_eq!(exit_code(&ended(JobRunPhase::Failed, Some(3))), 3);
        assert_eq!(exit_code(&ended(JobRunPhase::Failed, None)), 1);
        assert_eq!(exit_code(&ended(JobRunPhase::Missed, None)), 1);
        assert_eq!(exit_code(&ended(JobRunPhase::Cancelled, Some(0))), 1);
        assert_eq!(exit_code(&ended(JobRunPhase::Failed, Some(300))), 1);
    }
}
