//! The `horolog` command line: `run`, `crds`, `preview`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// horolog: APScheduler 4's scheduling model as a Kubernetes operator.
#[derive(Debug, Parser)]
#[command(name = "horolog", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions (Schedule, JobRun) as YAML, ready for
    /// `kubectl apply --server-side -f -`. The files under crds/ hold exactly this output.
    Crds,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => match horolog::crd::crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("horolog crds: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
