//! `horolog-dev`: the developer tools. `sandbox` serves a stand-in cluster; `load` load-tests
//! the operator (fire delay, missed and duplicate runs, API writes per run, operator cost).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// horolog's developer tools: a stand-in cluster and the load tool. Not part of the operator
/// and not in its image.
#[derive(Debug, Parser)]
#[command(name = "horolog-dev", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load test: create N Schedules in a cluster, watch JobRuns and Pods, and report fire
    /// delay, missed and duplicate fire times, API writes per run and the operator's cost.
    /// Cleans up after itself.
    Load(horolog_dev::load::BenchArgs),

    /// A stand-in cluster on this machine, for `horolog run` and `horolog-dev load` without
    /// Kubernetes: horolog's in-memory API server on a loopback port (plain HTTP, no auth),
    /// a kubeconfig pointing at it, and a simulated kubelet.
    Sandbox(horolog_dev::sandbox::SandboxArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail("start", e),
    };
    match cli.command {
        Command::Load(args) => runtime.block_on(load(args)),
        Command::Sandbox(args) => runtime.block_on(sandbox(args)),
    }
}

fn fail(command: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("horolog-dev {command}: {error}");
    ExitCode::FAILURE
}

async fn load(args: horolog_dev::load::BenchArgs) -> ExitCode {
    if let Err(e) = horolog::telemetry::init("info", horolog::telemetry::LogFormat::Text) {
        return fail("load", e);
    }
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => return fail("load", e),
    };
    let format = args.output;
    match horolog_dev::load::run(client, args).await {
        Ok(report) => match report.render(format) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail("load", e),
        },
        Err(e) => fail("load", e),
    }
}

async fn sandbox(args: horolog_dev::sandbox::SandboxArgs) -> ExitCode {
    use horolog_dev::sandbox::{Kubelet, Sandbox};
    if let Err(e) = horolog::telemetry::init("warn", horolog::telemetry::LogFormat::Text) {
        return fail("sandbox", e);
    }
    let sandbox = match Sandbox::bind(&args).await {
        Ok(sandbox) => sandbox,
        Err(e) => return fail("sandbox", e),
    };
    let kubelet = match args.kubelet {
        Kubelet::Simulate => format!("simulated, each pod runs {}", args.pod_run_time),
        Kubelet::Exec => "pods' commands run as processes on this host".to_string(),
        Kubelet::None => "none, pods stay Pending".to_string(),
    };
    println!(
        "horolog-dev sandbox: in-memory API server on http://{} (plain HTTP, no authentication)\n\
         kubelet: {kubelet}\n\
         kubeconfig: {}\n\
         try: KUBECONFIG={} horolog run   (and horolog-dev load in another terminal)\n\
         Ctrl-C stops it; everything it held is gone then.",
        sandbox.addr(),
        args.kubeconfig.display(),
        args.kubeconfig.display(),
    );
    sandbox
        .serve(async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                eprintln!("horolog-dev sandbox: cannot listen for Ctrl-C ({e}); stop it with SIGKILL");
                std::future::pending::<()>().await;
            }
        })
        .await;
    ExitCode::SUCCESS
}
