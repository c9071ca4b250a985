//! `kubectl horolog`: the kubectl plugin (binary `kubectl-horolog`).
//!
//! One file per family of subcommands. Each subcommand is a function that takes a
//! [`kube::Client`] (none for the offline ones, `lint` and `convert -f`), a [`Scope`] (namespace,
//! output format), its arguments and the writers it prints to, and returns the process's exit
//! code or an [`Error`], which `main` prints as one line on stderr. Tests drive the functions
//! directly against the in-memory API server.

mod backfill;
mod cancel;
pub mod complete;
mod convert;
mod history;
pub mod jsonpath;
mod lint;
mod logs;
mod lookup;
mod next;
mod output;
mod pause;
mod run;
pub mod status;
mod targets;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use backfill::{BackfillArgs, DryRun, backfill};
pub use cancel::{cancel, cancel_targets};
pub use convert::{ConvertArgs, Note, convert, schedule_for};
pub use history::{HistoryArgs, HistoryRow, history};
pub use lint::{Problem, lint};
pub use logs::{LogsArgs, logs};
pub use lookup::nearest;
pub use next::{NextArgs, NextFireTimes, next};
pub use output::{Format, kind_name};
pub use pause::{pause, pause_targets, resume, resume_targets};
pub use run::{RunArgs, run};
pub use status::{StatusArgs, status};
pub use targets::Targets;

use horolog::api::Duration;
use horolog::manifest::ManifestError;

/// Where a subcommand looks and how it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The namespace: `-n`, else the kubeconfig context's, else `default`.
    pub namespace: String,
    /// `-A`: look a name up in every namespace (it must be unique there).
    pub all_namespaces: bool,
    /// `-o`.
    pub output: Format,
}

impl Scope {
    /// The namespace `namespace`, table output.
    pub fn namespace(namespace: &str) -> Scope {
        Scope {
            namespace: namespace.to_string(),
            all_namespaces: false,
            output: Format::Table,
        }
    }

    /// The same scope printing `output`.
    pub fn with_output(self, output: Format) -> Scope {
        Scope { output, ..self }
    }
}

/// Why a subcommand could not do its work. Shown as one line after `kubectl horolog: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No object of this kind and name; `nearby` lists the closest names that exist.
    #[error("{}", lookup::not_found_message(kind, name, namespace.as_deref(), nearby))]
    NotFound {
        /// `Schedule`, `JobRun`, `CronJob`, ...
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The namespace looked in; None with `-A`.
        namespace: Option<String>,
        /// Up to 3 existing names, closest first (`namespace/name` with `-A`).
        nearby: Vec<String>,
    },
    /// With `-A`, the name exists in more than one namespace.
    #[error("{kind} {name:?} exists in namespaces {}: choose one with -n", namespaces.join(", "))]
    Ambiguous {
        /// `Schedule`, `JobRun`, ...
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// Where it exists.
        namespaces: Vec<String>,
    },
    /// The API server refused or failed a request.
    #[error("{doing}: {}", api_message(source))]
    Api {
        /// What was being done, e.g. `patching schedule nightly`.
        doing: String,
        /// What the server said.
        source: kube::Error,
    },
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The arguments or the input make no sense; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// A manifest could not be read.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// Writing to stdout or stderr failed (e.g. a closed pipe).
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    /// A wait ran out of time.
    #[error("timed out after {after} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The `--timeout`.
        after: Duration,
    },
}

impl Error {
    /// An API error, with what was being done.
    pub(crate) fn api(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let doing = doing.into();
        move |source| Error::Api { doing, source }
    }
}

/// The server's own message for an API error, without kube's debug dump.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// A subcommand's exit code, or why it failed (exit code 1).
pub type Outcome = Result<u8, Error>;

/// The command line of `kubectl horolog`.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-horolog",
    bin_name = "kubectl horolog",
    version,
    about = "Run, pause, inspect, lint and convert horolog Schedules from kubectl.",
    long_about = None
)]
pub struct Cli {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    #[command(flatten)]
    global: Globals,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes, before or after its name.
#[derive(Debug, Args)]
struct Globals {
    /// Look names up in every namespace (a name must be unique there).
    #[arg(short = 'A', long = "all-namespaces", global = true)]
    all_namespaces: bool,
    /// The kubeconfig context to use (default: the current one).
    #[arg(long, global = true, value_name = "CONTEXT")]
    context: Option<String>,
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Output format: table, wide, name, json, yaml or jsonpath=TEMPLATE (where objects are
    /// printed: status, history, next, backfill, convert; name also on pause, resume, cancel).
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_parser = Format::parse,
        default_value = "table",
        value_name = "FORMAT"
    )]
    output: Format,
}

/// `-n/--namespace` after a subcommand's name.
#[derive(Debug, Args)]
pub struct NamespaceArg {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// A subcommand of `kubectl horolog`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start one run of a Schedule now (annotation horolog.dev/run-now) and print the JobRun's
    /// name; with --wait, follow it to the end and exit with its exit code.
    Run {
        #[command(flatten)]
        args: RunArgs,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Pause Schedules (spec.paused: true): nothing fires until they are resumed.
    Pause {
        /// The Schedules: names, -l SELECTOR or --all.
        #[command(flatten)]
        targets: Targets,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Resume Schedules (spec.paused: false), also after a stop for too many failures.
    Resume {
        /// The Schedules: names, -l SELECTOR or --all.
        #[command(flatten)]
        targets: Targets,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Cancel JobRuns (annotation horolog.dev/cancel): a Running run's pod is deleted.
    Cancel {
        /// The JobRuns: names, -l SELECTOR, or --all (every unfinished one).
        #[command(flatten)]
        targets: Targets,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Schedules at a glance: state, next fire, last run, running and waiting, the last 20
    /// outcomes; with a name, its upcoming fire times, runs and Warning Events.
    Status {
        #[command(flatten)]
        args: StatusArgs,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Run the fire times of a past range (creates a Backfill); --dry-run lists them.
    Backfill {
        #[command(flatten)]
        args: BackfillArgs,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// A Schedule's JobRuns, newest first.
    History {
        #[command(flatten)]
        args: HistoryArgs,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// The next fire times of a Schedule in the cluster, from where the operator is.
    Next {
        #[command(flatten)]
        args: NextArgs,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// The pod logs of a JobRun, or of a Schedule's latest run.
    Logs {
        #[command(flatten)]
        args: LogsArgs,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Check manifests offline: every schema and CEL problem and every trigger error, one line
    /// each (FILE: KIND/NAME: FIELD: VALUE: MESSAGE). Exit 1 on any problem.
    Lint {
        /// A manifest file, a directory of .yaml/.yml files, or - for standard input; repeatable.
        #[arg(short = 'f', long = "filename", required = true, value_name = "FILE|DIR|-")]
        files: Vec<PathBuf>,
    },
    /// Print the Schedule equivalent to a CronJob (cronjob/NAME from the cluster, or -f FILE);
    /// what cannot be carried over is named on stderr.
    Convert {
        #[command(flatten)]
        args: ConvertArgs,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Print the shell completion script for kubectl-horolog (bash, zsh or fish). For
    /// `kubectl horolog <TAB>`, put kubectl_complete-horolog on PATH too.
    Completion {
        /// The shell.
        shell: complete::Shell,
    },
}

/// `kubectl-horolog`'s main: parse the command line, run the subcommand, print an error as
/// one line on stderr.
pub fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Command::Status { args, .. } = &mut cli.command {
        args.terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&Error::Invalid(format!("cannot start: {e}"))),
    };
    let outcome = runtime.block_on(cli.run(
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
        &mut std::io::stdin().lock(),
    ));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => fail(&error),
    }
}

fn fail(error: &Error) -> ExitCode {
    eprintln!("kubectl horolog: {error}");
    ExitCode::FAILURE
}

impl Command {
    /// The namespace given after the subcommand (`-n`), for the verbs that take one.
    fn namespace_after(&self) -> Option<&str> {
        match self {
            Command::Run { ns, .. }
            | Command::Pause { ns, .. }
            | Command::Resume { ns, .. }
            | Command::Cancel { ns, .. }
            | Command::Status { ns, .. }
            | Command::Backfill { ns, .. }
            | Command::History { ns, .. }
            | Command::Next { ns, .. }
            | Command::Logs { ns, .. }
            | Command::Convert { ns, .. } => ns.namespace.as_deref(),
            Command::Lint { .. } | Command::Completion { .. } => None,
        }
    }
}

impl Cli {
    /// Runs the subcommand, writing to `out` and `err`, reading `stdin` for `-f -`.
    pub async fn run(
        self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        stdin: &mut dyn std::io::Read,
    ) -> Outcome {
        let Cli {
            namespace: before,
            global,
            command,
        } = self;
        let explicit = command.namespace_after().map(str::to_string).or(before);
        // lint and convert -f need no cluster; from a file, the Schedule keeps the CronJob's
        // namespace unless -n names one.
        let offline = match &command {
            Command::Lint { .. } | Command::Completion { .. } => true,
            Command::Convert { args, .. } => args.file.is_some(),
            _ => false,
        };
        let (client, scope) = if offline {
            (None, global.scope(explicit.as_deref().unwrap_or_default(), false))
        } else {
            let (client, default_namespace) = global.connect().await?;
            let namespace = explicit.unwrap_or(default_namespace);
            (Some(client), global.scope(&namespace, global.all_namespaces))
        };
        let connected = || {
            client
                .as_ref()
                .ok_or_else(|| Error::Connect("no cluster for this subcommand".into()))
        };
        let now = chrono::Utc::now();
        match command {
            Command::Lint { files } => lint(&files, stdin, out),
            Command::Completion { shell } => complete::script(shell, out),
            Command::Convert { args, .. } => convert(client.as_ref(), &scope, &args, stdin, out, err).await,
            Command::Run { args, .. } => run(connected()?, &scope, &args, &now_value(now), out).await,
            Command::Pause { targets, .. } => pause_targets(connected()?, &scope, &targets, out).await,
            Command::Resume { targets, .. } => {
                resume_targets(connected()?, &scope, &targets, &now_value(now), out).await
            }
            Command::Cancel { targets, .. } => {
                let by = format!("{} at {}", who(), now_value(now));
                cancel_targets(connected()?, &scope, &targets, &by, out).await
            }
            Command::Status { args, .. } => status(connected()?, &scope, &args, out).await,
            Command::Backfill { args, .. } => backfill(connected()?, &scope, &args, out).await,
            Command::History { args, .. } => history(connected()?, &scope, &args, out).await,
            Command::Next { args, .. } => next(connected()?, &scope, &args, now, out).await,
            Command::Logs { args, .. } => logs(connected()?, &scope, &args, out).await,
        }
    }
}

impl Cli {
    /// The namespace given on the command line (after the subcommand, else before it).
    pub fn namespace_given(&self) -> Option<&str> {
        self.command.namespace_after().or(self.namespace.as_deref())
    }

    /// `-o`.
    pub fn output(&self) -> &Format {
        &self.global.output
    }

    /// `--context` and `--kubeconfig`, to connect as the command line says.
    pub async fn connect(&self) -> Result<(kube::Client, String), Error> {
        self.global.connect().await
    }
}

impl Globals {
    fn scope(&self, namespace: &str, all_namespaces: bool) -> Scope {
        Scope {
            namespace: namespace.to_string(),
            all_namespaces,
            output: self.output.clone(),
        }
    }

    /// A client for the kubeconfig context (or the pod's service account), and the context's
    /// namespace.
    async fn connect(&self) -> Result<(kube::Client, String), Error> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| Error::Connect(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options).await,
            None => {
                return kube::Config::infer()
                    .await
                    .map_err(|e| Error::Connect(e.to_string()))
                    .and_then(client_of);
            }
        }
        .map_err(|e| Error::Connect(e.to_string()))?;
        client_of(config)
    }
}

fn client_of(config: kube::Config) -> Result<(kube::Client, String), Error> {
    let namespace = config.default_namespace.clone();
    kube::Client::try_from(config)
        .map(|client| (client, namespace))
        .map_err(|e| Error::Connect(e.to_string()))
}

/// A new value for a run-now or resume annotation: the instant, to the nanosecond.
pub fn now_value(now: chrono::DateTime<chrono::Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Who is asking, for the cancel annotation: the login name, if the environment tells it.
fn who() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "kubectl-horolog".to_string())
}
