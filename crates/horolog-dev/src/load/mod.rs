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
mod phase;
mod process;
mod report;
mod runs;
mod stats;
mod writes;

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use kube::Client;
use rand::RngExt;

pub use fires::{FirePattern, Window};
pub use mix::{IntervalRange, Mix, MixError, PlannedSchedule, ScheduleKind, plan_schedules};
pub use process::OperatorUsage;
pub use report::{ApiServerReport, Report, TargetCheck, WindowReport};
pub use runs::{Delay, FireRef, PodSeen, Rate, RunSeen, RunSummary, Source};
pub use stats::Distribution;
pub use writes::{WriteCounts, WritesPerRun};

use horolog::api::Duration;
use objects::BENCH_LABEL;
use phase::{Counters, Side};
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
    /// (6-field cron, second = index % 60), top-of-minute (every Schedule at second 0 of each
    /// minute: a burst), interval (--interval-min..--interval-max).
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

    /// Give each Schedule's pod template an environment variable naming the Schedule, so no two
    /// templates are the same. The operator's caches hold each distinct template once, so
    /// without this the load's 10,000 identical templates cost one; with it, the memory
    /// measured is what Schedules that each run their own Pod cost.
    #[arg(long)]
    pub distinct_templates: bool,

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

    /// `host:port` of the operator's metrics server (e.g. a `kubectl port-forward` to the
    /// operator's pod), read at the window's edges for the operator's own writes per run. A
    /// spawned operator's is known without it.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "spawn_operator")]
    pub operator_metrics: Option<String>,

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
    if args.compare_cronjob
        && !args
            .mix
            .counts(args.schedules)
            .iter()
            .any(|(kind, n)| kind.is_minutely() && *n > 0)
    {
        return Err(LoadTestError::InvalidArgs(
            "--compare-cronjob creates one CronJob per every-minute-cron or top-of-minute Schedule: \
             give --mix a share of either"
                .into(),
        ));
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

    let mut operator_metrics = args.operator_metrics.clone();
    let mut spawned = if args.spawn_operator {
        let log = args
            .operator_log
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("horolog-bench-{run_id}.log")));
        let metrics = process::free_loopback_addr().map_err(|source| LoadTestError::SpawnOperator {
            what: "finding a free port for its metrics".into(),
            source,
        })?;
        tracing::info!(log = %log.display(), %metrics, "starting the operator");
        let operator = SpawnedOperator::start(&log, &metrics)?;
        operator_metrics = Some(metrics);
        Some(operator)
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
    let outcome = measure(&client, &args, &run_id, pid, operator_metrics.as_deref()).await;

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

/// Creates the load, watches it through warmup, window and drain, and sums it up: horolog's
/// Schedules, then (`--compare-cronjob`), after they are deleted, the same number of CronJobs,
/// so each side's writes per run are counted alone.
async fn measure(
    client: &Client,
    args: &BenchArgs,
    run_id: &str,
    pid: Option<u32>,
    operator_metrics: Option<&str>,
) -> Result<Report, LoadTestError> {
    let ns = args.namespace.as_str();
    let counters = Counters {
        client,
        operator: operator_metrics,
    };
    let ticks = pid.map(|_| ClockTicks::detect());
    let horolog = phase::run(client, args, run_id, pid, Side::Horolog, &counters).await?;
    let cronjob = if args.compare_cronjob && !horolog.window.interrupted {
        tracing::info!("deleting the Schedules before the CronJob phase");
        let problems = cluster::cleanup(client, ns, false, run_id).await;
        tracing::info!(pause = %args.warmup, "letting the deletions settle");
        tokio::select! {
            _ = tokio::time::sleep(args.warmup.as_std()) => {}
            _ = tokio::signal::ctrl_c() => return Err(LoadTestError::Interrupted { during: "between the phases" }),
        }
        let mut cron = phase::run(client, args, run_id, None, Side::CronJob, &counters).await?;
        cron.notes.extend(problems);
        Some(cron)
    } else {
        None
    };

    let mut notes = horolog.notes;
    let operator = pid.map(|pid| {
        let [creating, start, end] = horolog.samples;
        if end.is_none() {
            notes.push(format!(
                "could not read /proc/{pid} at the window's end: is the operator running on this machine?"
            ));
        }
        OperatorUsage::from_samples(
            pid,
            ticks.unwrap_or(ClockTicks {
                per_second: 100,
                assumed: true,
            }),
            creating,
            start,
            end,
            horolog.window.seconds,
        )
    });
    let mut created = horolog.created;
    let (mut cronjobs, mut cronjob_window, mut cronjob_summary) = (0, None, None);
    if let Some(cron) = cronjob {
        created.latencies.extend(&cron.created.latencies);
        created.errors.extend(cron.created.errors);
        created.seconds += cron.created.seconds;
        cronjobs = cron.created.names.len();
        cronjob_window = Some(cron.window);
        cronjob_summary = Some(cron.summary);
        notes.extend(cron.notes);
    }
    if args.compare_cronjob {
        notes.push(
            "the CronJob phase ran after horolog's, alone, with one CronJob `* * * * *` per \
             every-minute-cron or top-of-minute Schedule; CronJob schedules have no seconds field, \
             so every CronJob fires at second 0 of the minute, as top-of-minute Schedules do \
             (every-minute-cron Schedules spread over its 60 seconds)"
                .into(),
        );
    }
    let creates = created.latencies.len();

    Ok(Report {
        run_id: run_id.to_string(),
        namespace: ns.to_string(),
        seed: args.seed,
        schedules: horolog.kinds,
        cronjobs,
        window: horolog.window,
        cronjob_window,
        api_server: ApiServerReport {
            creates,
            create_errors: created.errors.len(),
            creates_per_second: if created.seconds > 0.0 {
                creates as f64 / created.seconds
            } else {
                0.0
            },
            create_latency: Distribution::of(&created.latencies),
        },
        targets: report::check_targets(&horolog.summary, operator.as_ref())
            .into_iter()
            .chain(report::check_writes(&horolog.summary, cronjob_summary.as_ref()))
            .collect(),
        horolog: horolog.summary,
        cronjob: cronjob_summary,
        operator,
        notes,
    })
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
            "--operator-metrics",
            "127.0.0.1:8080",
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
        assert_eq!(args.operator_metrics.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(args.output, OutputFormat::Json);
    }

    #[test]
    fn contradictory_flags_are_rejected() {
        let cases: [&[&str]; 6] = [
            &["bench", "--operator-pid", "1", "--spawn-operator"],
            &[
                "bench",
                "--operator-metrics",
                "127.0.0.1:8080",
                "--spawn-operator",
            ],
            &["bench", "--operator-log", "/tmp/x"],
            &["bench", "--mix", "interval=50%"],
            &["bench", "--duration", "5 minutes"],
            &["bench", "-o", "yaml"],
        ];
        for argv in cases {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
        let invalid: [&[&str]; 5] = [
            // CronJobs are made for every-minute-cron Schedules; without any there is nothing
            // to compare.
            &["bench", "--compare-cronjob", "--mix", "interval=100%"],
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
