//! The `horolog` command line: `run`, `crds`, `preview`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// horolog: APScheduler 4's scheduling model as a Kubernetes operator. Schedules fire
/// JobRuns, JobRuns run Pods; everything lands in status and Events.
#[derive(Debug, Parser)]
#[command(name = "horolog", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator against the in-cluster configuration or the current kubeconfig
    /// (needs the CRDs: `horolog crds | kubectl apply --server-side -f -`), or with
    /// `--local DIR` without any cluster, running the pods' commands on this host.
    /// A flag given twice takes its last value (as kubectl's and client-go's flags do), so the
    /// chart's `extraArgs` can override a value the chart passes.
    #[command(args_override_self = true)]
    Run(Box<RunCommand>),

    /// Print the CustomResourceDefinitions (Schedule, JobRun, Task, Backfill) as YAML, ready for
    /// `kubectl apply --server-side -f -`. crds/horolog.yaml holds exactly this output.
    Crds,

    /// Show the next fire times of every Schedule in a manifest file or directory,
    /// computed offline by the same code the operator uses. Needs no cluster.
    Preview {
        /// A manifest file, a directory of .yaml/.yml files, or - for standard input (a
        /// `kind: List`, as `kubectl get hs -o yaml` prints, stands for its items).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Start instant (RFC 3339), e.g. 2026-03-29T00:00:00+01:00. Default: now, to the
        /// whole second.
        /// Schedules without startTime are previewed as if created at this instant.
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        /// How many fire times per Schedule.
        #[arg(short = 'n', long, default_value_t = 5)]
        count: usize,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: PreviewFormat,
        /// Also list the fire times a Calendar or trigger.exclude excluded (rows marked x),
        /// with the Calendar that excluded each and where onExcluded moved it.
        #[arg(long)]
        show_excluded: bool,
    },
}

/// The flags of `horolog run`: the operator's, and local mode's in builds with it.
#[derive(Debug, Args)]
struct RunCommand {
    #[command(flatten)]
    operator: horolog::operator::RunArgs,
    #[cfg(feature = "local")]
    #[command(flatten)]
    local: horolog_local::LocalArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PreviewFormat {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => match horolog::crd::crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => fail("crds", e),
        },
        Command::Preview {
            file,
            from,
            count,
            output,
            show_excluded,
        } => preview(
            &file,
            from.unwrap_or_else(|| horolog::preview::default_from(Utc::now())),
            count,
            output,
            show_excluded,
        ),
        #[cfg(feature = "local")]
        Command::Run(args) if args.local.local.is_some() => match runtime() {
            Ok(rt) => rt.block_on(local(*args)),
            Err(e) => fail("run --local", e),
        },
        Command::Run(args) => match runtime() {
            Ok(rt) => match rt.block_on(horolog::operator::run(args.operator)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail("run", e),
            },
            Err(e) => fail("run", e),
        },
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

fn fail(command: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("horolog {command}: {error}");
    ExitCode::FAILURE
}

fn preview(
    file: &std::path::Path,
    from: DateTime<Utc>,
    count: usize,
    output: PreviewFormat,
    show_excluded: bool,
) -> ExitCode {
    let manifests = match horolog::manifest::read_manifests(file) {
        Ok(m) => m,
        Err(e) => return fail("preview", e),
    };
    let (previews, errors): (Vec<_>, Vec<_>) =
        horolog::preview::preview_with(&manifests, from, count, show_excluded)
            .into_iter()
            .partition(Result::is_ok);
    let previews: Vec<_> = previews.into_iter().filter_map(Result::ok).collect();
    match output {
        PreviewFormat::Table => print!("{}", horolog::preview::render_table(&previews)),
        PreviewFormat::Json => match serde_json::to_string_pretty(&previews) {
            Ok(json) => println!("{json}"),
            Err(e) => return fail("preview", e),
        },
    }
    for error in errors.iter().filter_map(|e| e.as_ref().err()) {
        eprintln!("horolog preview: {error}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(feature = "local")]
async fn local(args: RunCommand) -> ExitCode {
    let RunCommand { operator, local } = args;
    if let Err(e) = horolog::telemetry::init(
        operator.log_level.as_deref().unwrap_or("warn"),
        operator.log_format,
    ) {
        return fail("run --local", e);
    }
    let Some(options) = local.options() else {
        return fail("run --local", "no manifest directory given");
    };
    match horolog_local::run_local(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("run --local", e),
    }
}
