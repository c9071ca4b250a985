//! `logs JOBRUN|SCHEDULE [-f] [-c CONTAINER] [-p] [--tail N] [--since D]`: the pod logs of a
//! run, or of a Schedule's latest run.

use std::io::Write;

use clap::Args;
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, Client, ResourceExt};

use super::history::runs_of;
use super::lookup::{find, nearest};
use super::{Error, Outcome, Scope};
use horolog::api::{JobRun, Schedule};
use horolog::pod::pod_name;

/// The arguments of `logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// A JobRun, or a Schedule (then its newest run that has a pod).
    pub target: String,
    /// Keep streaming new lines until the pod ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The container (default: the first, whose termination message is the run's result).
    #[arg(short = 'c', long, value_name = "CONTAINER")]
    pub container: Option<String>,
    /// The logs of the container's previous instance (after a restart), as kubectl logs -p.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines (-1: all, the default).
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Only the lines newer than this, e.g. 30s, 5m, 2h.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<horolog::api::Duration>,
}

/// Prints the logs of the run's pod: `status.podName`, else the pod of its latest attempt
/// (`<jobrun>-<attempt>`).
pub async fn logs(client: &Client, scope: &Scope, args: &LogsArgs, out: &mut dyn Write) -> Outcome {
    let run = run_named(client, scope, &args.target).await?;
    let name = run.name_any();
    let namespace = run.namespace().unwrap_or_else(|| scope.namespace.clone());
    let status = run.status.clone().unwrap_or_default();
    let pod_name = status
        .pod_name
        .clone()
        .unwrap_or_else(|| pod_name(&name, status.attempts.unwrap_or(1).max(1)));
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let describe = || {
        let mut state = run.phase().as_str().to_string();
        if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
            state.push_str(&format!(": {message}"));
        }
        state
    };
    let Some(pod) = pods
        .get_opt(&pod_name)
        .await
        .map_err(Error::api(format!("reading pod {pod_name}")))?
    else {
        return Err(Error::Invalid(match status.pod_name {
            Some(_) => format!(
                "the pod {pod_name} of jobrun/{name} is gone (the run is {})",
                describe()
            ),
            None => format!("jobrun/{name} has no pod (it is {})", describe()),
        }));
    };
    let container = match &args.container {
        Some(container) => container.clone(),
        None => pod
            .spec
            .as_ref()
            .and_then(|spec| spec.containers.first())
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    };
    if args.tail < -1 {
        return Err(Error::Invalid(format!(
            "--tail {}: a number of lines, or -1 for all",
            args.tail
        )));
    }
    let params = LogParams {
        container: Some(container),
        follow: args.follow,
        previous: args.previous,
        tail_lines: (args.tail >= 0).then_some(args.tail),
        since_seconds: args.since.map(|d| d.as_std().as_secs().max(1) as i64),
        ..LogParams::default()
    };
    let doing = format!("reading the logs of pod {pod_name}");
    if !args.follow {
        let text = pods.logs(&pod_name, &params).await.map_err(Error::api(doing))?;
        write!(out, "{text}")?;
        return Ok(0);
    }
    let stream = pods
        .log_stream(&pod_name, &params)
        .await
        .map_err(Error::api(doing.clone()))?;
    let mut lines = std::pin::pin!(stream.lines());
    while let Some(line) = lines.next().await {
        let line = line.map_err(|e| Error::Invalid(format!("{doing}: {e}")))?;
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(0)
}

/// The JobRun `target`, or the newest run with a pod of the Schedule `target`.
async fn run_named(client: &Client, scope: &Scope, target: &str) -> Result<JobRun, Error> {
    let runs_nearby = match find::<JobRun>(client, scope, "JobRun", target).await {
        Ok(run) => return Ok(run),
        Err(Error::NotFound { nearby, .. }) => nearby,
        Err(other) => return Err(other),
    };
    let schedule = match find::<Schedule>(client, scope, "Schedule", target).await {
        Ok(schedule) => schedule,
        Err(Error::NotFound {
            nearby, namespace, ..
        }) => {
            return Err(Error::NotFound {
                kind: "JobRun or Schedule",
                name: target.to_string(),
                namespace,
                nearby: nearest(target, runs_nearby.into_iter().chain(nearby)),
            });
        }
        Err(other) => return Err(other),
    };
    let name = schedule.name_any();
    let namespace = schedule.namespace().unwrap_or_else(|| scope.namespace.clone());
    runs_of(client, &namespace, &name)
        .await?
        .into_iter()
        .filter(|run| {
            run.status
                .as_ref()
                .is_some_and(|s| s.pod_name.is_some() || s.attempts.unwrap_or(0) > 0)
        })
        .max_by_key(|run| (run.fire_time(), run.name_any()))
        .ok_or_else(|| Error::Invalid(format!("schedule/{name} has no run with a pod yet")))
}
