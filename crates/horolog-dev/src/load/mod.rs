//! `horolog-dev load`: a load test against a real cluster. It creates many Schedules, watches the
//! JobRuns and Pods that follow, and reports fire delay, missed and duplicate fire times,
//! throughput, the API server's latency and (optionally) the operator's CPU and memory, beside
//! the built-in CronJob controller doing the same work.
//!
//! The pure parts (`fires`, `runs`, `stats`, `mix`, `objects`, `report`, and the /proc parsing
//! in `process`) take values and return values; `cluster` and [`run`] are the thin edge.

mod cluster;
mod fires;
mod mix;
mod objects;
mod process;
mod report;
mod runs;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use rand::RngExt;
use tokio::sync::watch;

pub use fires::{FirePattern, Window};
pub use mix::{IntervalRange, Mix, MixError, PlannedSchedule, ScheduleKind, plan_schedules};
pub use process::OperatorUsage;
pub use report::{ApiServerReport, Report, TargetCheck, WindowReport};
pub use runs::{Delay, FireRef, PodSeen, Rate, RunSeen, RunSummary, Source};
pub use stats::Distribution;

use horolog::api::{Duration, JobRun, Schedule};
use objects::{BENCH_LABEL, BenchPod, PodOwner};
use process::{ClockTicks, ProcSample, SpawnedOperator};

/// How long a spawned operator gets to shut down after SIGTERM before it is killed.
const OPERATOR_STOP_GRACE: StdDuration = StdDuration::from_secs(10);

/// How `horolog-dev load` prints its report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned tables for people.
    #[default]
    Table,
    /// One JSON object (the `Report`), for scripts and CI.
    Json,
}

/// `horolog-dev load`: load-test the operator on the cluster of the current kubeconfig.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// Namespace to create everything in; created (and deleted afterwards) if missing.
    #[arg(
        long,
        short = 'n',
        default_value = "horolog-bench",
        env = "HOROLOG_BENCH_NAMESPACE"
    )]
    pub namespace: String,

    /// How many Schedules to create.
    #[arg(long, default_value_t = 1000)]
    pub schedules: usize,

    /// Shares of trigger kinds, in percent: every-second (interval 1s), every-minute-cron
    /// (6-field cron, second = index % 60), interval (--interval-min..--interval-max).
    #[arg(long, default_value = "every-minute-cron=100%")]
    pub mix: Mix,

    /// Length of the observation window whose fire times are checked, e.g. `5m`.
    #[arg(long, default_value = "5m")]
    pub duration: Duration,

    /// Pause between the last create and the window's start, so the operator's catch-up on the
    /// creation burst is not counted as fire delay.
    #[arg(long, default_value = "30s")]
    pub warmup: Duration,

    /// Keep watching this long after the window ends, so runs for its last fire times count.
    #[arg(long, default_value = "10s")]
    pub drain: Duration,

    /// Shortest period of `interval` Schedules (whole seconds are used).
    #[arg(long, default_value = "30s")]
    pub interval_min: Duration,

    /// Longest period of `interval` Schedules.
    #[arg(long, default_value = "5m")]
    pub interval_max: Duration,

    /// Seed for interval periods and phases: the same seed creates the same load.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Image of the trivial pod each run starts; it must have a `true` command.
    #[arg(long, default_value = "busybox:1.36")]
    pub image: String,

    /// activeDeadlineSeconds of each run, so stuck pods do not pile up.
    #[arg(long, default_value_t = 60)]
    pub active_deadline_seconds: i64,

    /// Create calls in flight at once.
    #[arg(long, default_value_t = 16)]
    pub create_concurrency: usize,

    /// Also create one batch/v1 CronJob (`* * * * *`) per every-minute-cron Schedule and report
    /// the CronJob controller's delays beside horolog's.
    #[arg(long)]
    pub compare_cronjob: bool,

    /// Measure CPU time and peak RSS of this local operator process (from /proc).
    #[arg(long, conflicts_with = "spawn_operator")]
    pub operator_pid: Option<u32>,

    /// Start `<this executable> run` as the operator for the bench's duration, measure it, and
    /// stop it at the end.
    #[arg(long)]
    pub spawn_operator: bool,

    /// Where a spawned operator's output goes. Default: horolog-bench-<run id>.log in the
    /// temporary directory.
    #[arg(long, requires = "spawn_operator")]
    pub operator_log: Option<PathBuf>,

    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// What can stop a bench.
#[derive(Debug, thiserror::Error)]
pub enum LoadTestError {
    /// The Schedule and JobRun CRDs are not in the cluster.
    #[error(
        "the horolog CRDs are not installed in this cluster; run `horolog crds | kubectl apply --server-side -f -`"
    )]
    CrdsMissing,
    /// A call the bench cannot do without failed.
    #[error("{what}: {source}")]
    Cluster {
        /// What the bench was doing.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Every Schedule create failed: there is nothing to measure.
    #[error("no Schedule could be created in namespace {namespace} (first error: {first})")]
    NothingCreated {
        /// The bench namespace.
        namespace: String,
        /// The first failure.
        first: String,
    },
    /// `--spawn-operator` could not start the operator.
    #[error("--spawn-operator: {what}: {source}")]
    SpawnOperator {
        /// The step that failed.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The flags contradict each other.
    #[error("{0}")]
    InvalidArgs(String),
    /// Ctrl-C before there was anything to report; what was created has been deleted.
    #[error("interrupted by Ctrl-C while {during}")]
    Interrupted {
        /// The phase that was interrupted.
        during: &'static str,
    },
}

impl Report {
    /// The report in `format`.
    pub fn render(&self, format: OutputFormat) -> serde_json::Result<String> {
        match format {
            OutputFormat::Table => Ok(self.render_table()),
            OutputFormat::Json => self.to_json(),
        }
    }
}

/// A short random id for this run: names and the `horolog.dev/bench` label carry it, so two
/// benches in one namespace never touch each other's objects.
fn new_run_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    // A letter first: the id starts object names, which must begin with a letter or digit and
    // read better with a letter.
    let first = char::from(ALPHABET[rng.random_range(0..26)]);
    let rest: String = (0..4)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{first}{rest}")
}

/// The next whole second after `t`: triggers anchored on whole seconds give whole-second fire
/// times, which match JobRun names exactly.
fn next_whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::seconds(1)).unwrap_or(t) + TimeDelta::seconds(1)
}

fn validate(args: &BenchArgs) -> Result<(), LoadTestError> {
    if args.schedules == 0 {
        return Err(LoadTestError::InvalidArgs(
            "--schedules must be at least 1".into(),
        ));
    }
    if args.duration.is_zero() {
        return Err(LoadTestError::InvalidArgs(
            "--duration must be longer than 0s".into(),
        ));
    }
    if args.interval_min.as_std().as_secs() < 1 || args.interval_max < args.interval_min {
        return Err(LoadTestError::InvalidArgs(format!(
            "need 1s <= --interval-min ({}) <= --interval-max ({})",
            args.interval_min, args.interval_max
        )));
    }
    if args.active_deadline_seconds < 1 {
        return Err(LoadTestError::InvalidArgs(
            "--active-deadline-seconds must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Reads the operator's counters; a vanished process is a note, not a failure.
fn sample(pid: Option<u32>) -> Option<ProcSample> {
    process::read_sample(pid?).ok()
}

/// Runs the bench: create, warm up, observe, report; deletes what it created at the end, also
/// after an error or Ctrl-C. Ctrl-C during the observation window ends the window early and
/// still reports.
pub async fn run(client: Client, args: BenchArgs) -> Result<Report, LoadTestError> {
    validate(&args)?;
    cluster::check_crds(&client, &args.namespace).await?;
    let run_id = new_run_id();

    let mut spawned = if args.spawn_operator {
        let log = args
            .operator_log
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("horolog-bench-{run_id}.log")));
        tracing::info!(log = %log.display(), "starting the operator");
        Some(SpawnedOperator::start(&log)?)
    } else {
        None
    };

    let namespace_created = match cluster::ensure_namespace(&client, &args.namespace, &run_id).await {
        Ok(created) => created,
        Err(e) => {
            if let Some(operator) = spawned {
                operator.stop(OPERATOR_STOP_GRACE).await;
            }
            return Err(e);
        }
    };

    let pid = args
        .operator_pid
        .or_else(|| spawned.as_ref().and_then(SpawnedOperator::pid));
    let outcome = measure(&client, &args, &run_id, pid).await;

    tracing::info!(namespace = %args.namespace, "cleaning up");
    let cleanup_problems = tokio::select! {
        problems = cluster::cleanup(&client, &args.namespace, namespace_created, &run_id) => problems,
        _ = tokio::signal::ctrl_c() => vec![format!(
            "cleanup abandoned by a second Ctrl-C: delete with `kubectl delete namespace {}` or \
             `kubectl delete schedules,jobruns,cronjobs,jobs,pods -n {} -l {BENCH_LABEL}={run_id}`",
            args.namespace, args.namespace
        )],
    };
    for problem in &cleanup_problems {
        tracing::warn!(problem, "cleanup");
    }

    let mut operator_notes = Vec::new();
    if let Some(mut operator) = spawned.take() {
        if let Some(status) = operator.exited() {
            operator_notes.push(format!(
                "the spawned operator exited during the bench ({status}); see {}",
                operator.log.display()
            ));
        } else {
            operator_notes.push(format!(
                "the spawned operator's log is {}",
                operator.log.display()
            ));
        }
        // After cleanup: the operator may hold finalizers the deletions need it for.
        operator.stop(OPERATOR_STOP_GRACE).await;
    }

    let mut report = outcome?;
    if let Some(usage) = report.operator.as_mut() {
        usage.spawned = args.spawn_operator;
    }
    report.notes.extend(operator_notes);
    report.notes.extend(cleanup_problems);
    if namespace_created {
        report.notes.push(format!(
            "namespace {} was created for the bench and is being deleted",
            args.namespace
        ));
    }
    Ok(report)
}

/// Creates the load, watches it through warmup, window and drain, and sums it up.
async fn measure(
    client: &Client,
    args: &BenchArgs,
    run_id: &str,
    pid: Option<u32>,
) -> Result<Report, LoadTestError> {
    let ns = args.namespace.as_str();
    let selector = format!("{BENCH_LABEL}={run_id}");
    let (stop, stopped) = watch::channel(false);

    // Watches first, so no run or pod can be created before they look.
    let jobruns = cluster::record(
        Api::<JobRun>::namespaced(client.clone(), ns),
        selector.clone(),
        stopped.clone(),
        objects::jobrun_seen,
    );
    let pods = cluster::record(
        Api::<Pod>::namespaced(client.clone(), ns),
        selector.clone(),
        stopped.clone(),
        |pod: &Pod, seen| objects::pod_seen(pod, seen).map(|(owner, p)| PodSeenBy { owner, pod: p }),
    );
    let jobs = args.compare_cronjob.then(|| {
        cluster::record(
            Api::<Job>::namespaced(client.clone(), ns),
            selector.clone(),
            stopped.clone(),
            objects::job_seen,
        )
    });

    let ticks = pid.map(|_| ClockTicks::detect());
    let sample_creating = sample(pid);

    // Plan: every trigger starts at the next whole second, before any of them exists; fire
    // times before the window are the operator's catch-up and are not checked.
    let anchor = next_whole_second(Utc::now());
    let counts = args.mix.counts(args.schedules);
    let plan = plan_schedules(
        run_id,
        &counts,
        anchor,
        IntervalRange {
            min_seconds: args.interval_min.as_std().as_secs() as i64,
            max_seconds: args.interval_max.as_std().as_secs() as i64,
        },
        args.seed,
    );
    let pod = BenchPod {
        image: args.image.clone(),
        active_deadline_seconds: args.active_deadline_seconds,
    };
    let schedules: Vec<Schedule> = plan
        .iter()
        .map(|p| objects::schedule_for(p, ns, run_id, &pod))
        .collect();
    let minute_level = plan
        .iter()
        .filter(|p| p.kind == ScheduleKind::EveryMinuteCron)
        .count();
    let cronjob_names: Vec<String> = if args.compare_cronjob {
        (0..minute_level).map(|i| format!("{run_id}-cj{i}")).collect()
    } else {
        Vec::new()
    };
    let cronjobs: Vec<CronJob> = cronjob_names
        .iter()
        .map(|n| objects::cronjob_for(n, ns, run_id, &pod))
        .collect();

    tracing::info!(
        schedules = schedules.len(),
        cronjobs = cronjobs.len(),
        namespace = ns,
        "creating"
    );
    let creating = async {
        let schedule_api = Api::<Schedule>::namespaced(client.clone(), ns);
        let created_schedules = cluster::create_all(&schedule_api, schedules, args.create_concurrency).await;
        let cronjob_api = Api::<CronJob>::namespaced(client.clone(), ns);
        let created_cronjobs = cluster::create_all(&cronjob_api, cronjobs, args.create_concurrency).await;
        (created_schedules, created_cronjobs)
    };
    let (created_schedules, created_cronjobs) = tokio::select! {
        created = creating => created,
        _ = tokio::signal::ctrl_c() => return Err(LoadTestError::Interrupted { during: "creating objects" }),
    };
    if created_schedules.names.is_empty() {
        return Err(LoadTestError::NothingCreated {
            namespace: ns.to_string(),
            first: created_schedules.errors.first().cloned().unwrap_or_default(),
        });
    }

    tracing::info!(warmup = %args.warmup, "letting the operator catch up");
    tokio::select! {
        _ = tokio::time::sleep(args.warmup.as_std()) => {}
        _ = tokio::signal::ctrl_c() => return Err(LoadTestError::Interrupted { during: "warming up" }),
    }

    let window_start = next_whole_second(Utc::now());
    let sample_start = sample(pid);
    tracing::info!(duration = %args.duration, %window_start, "observing");
    let planned_end = window_start + args.duration.as_chrono();
    let until_end = (planned_end - Utc::now()).to_std().unwrap_or_default();
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(until_end) => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    let window = Window {
        start: window_start,
        end: if interrupted {
            Utc::now().min(planned_end)
        } else {
            planned_end
        },
    };
    let sample_end = sample(pid);
    if !interrupted {
        tracing::info!(drain = %args.drain, "waiting for late runs");
        tokio::select! {
            _ = tokio::time::sleep(args.drain.as_std()) => {}
            // A Ctrl-C here still reports: the window is complete, only late runs are lost.
            _ = tokio::signal::ctrl_c() => {}
        }
    }

    let _ = stop.send(true);
    let jobruns = jobruns.join().await;
    let pods = pods.join().await;
    let jobs = match jobs {
        Some(task) => task.join().await,
        None => None,
    };

    let mut notes = Vec::new();
    let mut watch_errors = 0;
    let runs: Vec<RunSeen> = jobruns
        .map(|r| {
            watch_errors += r.errors;
            r.seen.into_values().collect()
        })
        .unwrap_or_default();
    let (mut horolog_pods, mut cron_pods) = (Vec::new(), Vec::new());
    for seen in pods
        .map(|r| {
            watch_errors += r.errors;
            r.seen.into_values()
        })
        .into_iter()
        .flatten()
    {
        match seen.owner {
            PodOwner::JobRun => horolog_pods.push(seen.pod),
            PodOwner::Job => cron_pods.push(seen.pod),
        }
    }
    let cron_runs: Vec<RunSeen> = jobs
        .map(|r| {
            watch_errors += r.errors;
            r.seen.into_values().collect()
        })
        .unwrap_or_default();

    let created_names: std::collections::HashSet<&str> =
        created_schedules.names.iter().map(String::as_str).collect();
    let sources: Vec<Source> = plan
        .iter()
        .filter(|p| created_names.contains(p.name.as_str()))
        .map(|p| Source {
            name: p.name.clone(),
            pattern: p.pattern,
        })
        .collect();
    let horolog = runs::summarize(&sources, &runs, &horolog_pods, &window);

    let cronjob = args.compare_cronjob.then(|| {
        let sources: Vec<Source> = created_cronjobs
            .names
            .iter()
            .map(|name| Source {
                name: name.clone(),
                pattern: FirePattern::MinutelyAt {
                    second: 0,
                    start: anchor,
                },
            })
            .collect();
        runs::summarize(&sources, &cron_runs, &cron_pods, &window)
    });

    let operator = pid.map(|pid| {
        let usage = OperatorUsage::from_samples(
            pid,
            ticks.unwrap_or(ClockTicks {
                per_second: 100,
                assumed: true,
            }),
            sample_creating,
            sample_start,
            sample_end,
            window.seconds(),
        );
        if sample_end.is_none() {
            notes.push(format!(
                "could not read /proc/{pid} at the window's end: is the operator running on this machine?"
            ));
        }
        usage
    });

    if interrupted {
        notes.push("Ctrl-C ended the window early; fire times after it are not checked".into());
    }
    if horolog.runs_seen == 0 {
        notes.push(format!(
            "no JobRuns seen: is the operator running, and does it copy jobTemplate.metadata.labels \
             ({selector}) to JobRuns and the pod template's labels to Pods?"
        ));
    }
    let create_errors = created_schedules.errors.len() + created_cronjobs.errors.len();
    if create_errors > 0 {
        let first = created_schedules
            .errors
            .iter()
            .chain(&created_cronjobs.errors)
            .next()
            .cloned()
            .unwrap_or_default();
        notes.push(format!(
            "{create_errors} creates failed and are left out of expected fire times (first: {first})"
        ));
    }
    if watch_errors > 0 {
        notes.push(format!(
            "{watch_errors} watch errors (each watch restarted); runs created while a watch was down \
             may be seen late or, if deleted meanwhile, not at all"
        ));
    }
    if let Some(lead) = runs::server_clock_lead(&runs, &horolog_pods).filter(|&l| l > 1.0) {
        notes.push(format!(
            "the API server's clock is at least {lead:.1} s ahead of this machine's: *watched* delays read low"
        ));
    }
    if args.compare_cronjob {
        notes.push(
            "CronJob schedules have no seconds field: every CronJob fires at second 0 of the minute, \
             while the Schedules spread over its 60 seconds"
                .into(),
        );
    }

    let mut latencies = created_schedules.latencies.clone();
    latencies.extend(&created_cronjobs.latencies);
    let creating_seconds = created_schedules.seconds + created_cronjobs.seconds;
    let creates = latencies.len();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for p in plan.iter().filter(|p| created_names.contains(p.name.as_str())) {
        *by_kind.entry(p.kind.as_str().to_string()).or_default() += 1;
    }

    Ok(Report {
        run_id: run_id.to_string(),
        namespace: ns.to_string(),
        seed: args.seed,
        schedules: by_kind,
        cronjobs: created_cronjobs.names.len(),
        window: WindowReport {
            start: window.start,
            end: window.end,
            seconds: window.seconds(),
            interrupted,
        },
        api_server: ApiServerReport {
            creates,
            create_errors,
            creates_per_second: if creating_seconds > 0.0 {
                creates as f64 / creating_seconds
            } else {
                0.0
            },
            create_latency: Distribution::of(&latencies),
        },
        targets: report::check_targets(&horolog, operator.as_ref()),
        horolog,
        cronjob,
        operator,
        notes,
    })
}

/// A pod observation with the controller it belongs to, so one pod watch serves both columns.
#[derive(Debug)]
struct PodSeenBy {
    owner: PodOwner,
    pod: PodSeen,
}

impl runs::Observation for PodSeenBy {
    fn key(&self) -> &str {
        self.pod.key()
    }

    fn merge(&mut self, later: Self) {
        self.pod.merge(later.pod);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn defaults_describe_the_headline_scenario() {
        let args = Cli::try_parse_from(["bench"]).expect("defaults parse").bench;
        assert_eq!(args.namespace, "horolog-bench");
        assert_eq!(args.mix, Mix::default());
        assert_eq!(args.duration, Duration::from_secs(300));
        assert_eq!(args.output, OutputFormat::Table);
        assert!(validate(&args).is_ok());
    }

    #[test]
    fn flags_parse_into_bench_args() {
        let args = Cli::try_parse_from([
            "bench",
            "--schedules",
            "10000",
            "--mix",
            "every-second=10%,every-minute-cron=80%,interval=10%",
            "--duration",
            "10m",
            "--compare-cronjob",
            "--operator-pid",
            "4242",
            "-o",
            "json",
        ])
        .expect("flags parse")
        .bench;
        assert_eq!(args.schedules, 10_000);
        assert_eq!(
            args.mix.counts(10_000).iter().map(|(_, c)| c).sum::<usize>(),
            10_000
        );
        assert_eq!(args.duration, Duration::from_secs(600));
        assert!(args.compare_cronjob);
        assert_eq!(args.operator_pid, Some(4242));
        assert_eq!(args.output, OutputFormat::Json);
    }

    #[test]
    fn contradictory_flags_are_rejected() {
        let cases: [&[&str]; 5] = [
            &["bench", "--operator-pid", "1", "--spawn-operator"],
            &["bench", "--operator-log", "/tmp/x"],
            &["bench", "--mix", "interval=50%"],
            &["bench", "--duration", "5 minutes"],
            &["bench", "-o", "yaml"],
        ];
        for argv in cases {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
        let invalid: [&[&str]; 4] = [
            &["bench", "--schedules", "0"],
            &["bench", "--duration", "0s"],
            &["bench", "--interval-min", "1m", "--interval-max", "30s"],
            &["bench", "--interval-min", "500ms"],
        ];
        for argv in invalid {
            let args = Cli::try_parse_from(argv).expect("parses").bench;
            assert!(validate(&args).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn run_ids_are_short_lowercase_and_start_with_a_letter() {
        for _ in 0..100 {
            let id = new_run_id();
            assert_eq!(id.len(), 5);
            assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{id}");
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{id}"
            );
        }
    }

    #[test]
    fn anchors_fall_on_the_next_whole_second() {
        let t = DateTime::from_timestamp_millis(1_767_225_600_250).expect("valid");
        assert_eq!(next_whole_second(t).timestamp_millis(), 1_767_225_601_000);
        let whole = DateTime::from_timestamp(1_767_225_600, 0).expect("valid");
        assert_eq!(next_whole_second(whole).timestamp(), 1_767_225_601);
    }
}
