//! Local mode, `horolog run --local DIR [--state FILE]`: the operator without a cluster. The
//! Schedules, JobRuns, Tasks and Backfills of DIR go into an in-process API server ([`ApiServer`]), the unchanged
//! controllers run against it, and a [`PodRunner`] stands in for the kubelet, running each
//! Pod's first container command as a process on this host. A live table shows every JobRun
//! phase change, as `kubectl get jobruns -w` would.
//!
//! Local mode runs only what the given manifests say (it refuses to start without a Schedule
//! or JobRun) and prints at start that the commands run on this host as the current user.
//!
//! With `--state FILE` the server's objects are loaded from FILE at start and saved to it
//! after changes (at most every 200 ms, and at shutdown), so a restart neither repeats nor
//! loses fire times: the Schedules keep their `lastFireTime` and their JobRuns. The manifests
//! are applied over the saved objects with server-side apply, so edits of the files take
//! effect, Schedules that were removed from the files are deleted (with their JobRuns), and
//! status is kept. Events are not saved.
//!
//! Limits: see [`executor`] for what of a Pod runs locally (first container's command, literal
//! env; no image, volumes, `valueFrom`, resource limits or security contexts).
//!
//! This crate is its own product on the operator library (crate `horolog`): the `horolog`
//! binary calls it only when built with its `local` feature (the default of a dev build), and
//! the release image, built without that feature, contains neither this crate nor the
//! in-memory API server.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod executor;
mod state;
mod table;

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tracing::warn;

pub use executor::PodRunner;
pub use state::{SAVE_DEBOUNCE, StateError};
pub use table::HEADER;

use horolog::api::{Backfill, FieldError, JobRun, Schedule, Task, Validate};
use horolog::clock::{Clock, SystemClock};
use horolog::controller::{self, ControllerConfig};
use horolog::manifest::{Manifest, ManifestError, read_manifests};
use horolog_memserver::ApiServer;

/// The field manager local mode applies the manifests with.
pub const FIELD_MANAGER: &str = "horolog-local";

/// The flags of `horolog run` that local mode adds (the binary flattens them into `run`'s).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LocalArgs {
    /// Local mode: run the Schedules and JobRuns of this manifest file or directory on an
    /// embedded API server, with each pod's first container run as a local process on THIS
    /// host. No cluster needed. Prints a live table of JobRun transitions.
    #[arg(long, value_name = "DIR")]
    pub local: Option<PathBuf>,

    /// With --local: save the embedded store to FILE on every change and reload it at start,
    /// so a restart keeps Schedules, JobRuns and lastFireTime.
    #[arg(long, value_name = "FILE", requires = "local")]
    pub state: Option<PathBuf>,
}

impl LocalArgs {
    /// What these flags ask local mode to do; `None` without `--local` (run the operator).
    pub fn options(&self) -> Option<LocalOptions> {
        let options = LocalOptions::new(self.local.clone()?);
        Some(match &self.state {
            Some(state) => options.with_state(state),
            None => options,
        })
    }
}

/// What `horolog run --local` was asked to do.
pub struct LocalOptions {
    /// A manifest file, or a directory whose `.yaml`/`.yml` files are read.
    pub dir: PathBuf,
    /// Where the state is loaded from and saved to; `None` keeps it in memory only.
    pub state: Option<PathBuf>,
    /// The namespace of objects whose manifest names none.
    pub namespace: String,
    /// Where the warning, notes and the live table go (stdout by default).
    pub out: Box<dyn Write + Send>,
}

impl LocalOptions {
    /// Runs the manifests of `dir` in namespace `default`, without state file, printing to stdout.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalOptions {
            dir: dir.into(),
            state: None,
            namespace: "default".to_string(),
            out: Box::new(std::io::stdout()),
        }
    }

    /// Loads and saves the state in `path`.
    pub fn with_state(mut self, path: impl Into<PathBuf>) -> Self {
        self.state = Some(path.into());
        self
    }

    /// Puts objects without namespace into `namespace`.
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Prints to `out` instead of stdout.
    pub fn with_output(mut self, out: impl Write + Send + 'static) -> Self {
        self.out = Box::new(out);
        self
    }
}

impl std::fmt::Debug for LocalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalOptions")
            .field("dir", &self.dir)
            .field("state", &self.state)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Why local mode did not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A manifest cannot be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A manifest is read but invalid (what the CRD schema would reject at `kubectl apply`).
    #[error("{location}: {source}")]
    Invalid {
        /// The kind and name of the object, and its file.
        location: String,
        /// What is wrong.
        #[source]
        source: FieldError,
    },
    /// The manifests hold no Schedule and no JobRun.
    #[error(
        "no Schedule or JobRun in {0}: local mode runs only what the given manifests say (see examples/)"
    )]
    NothingToRun(PathBuf),
    /// The state file cannot be loaded or saved.
    #[error(transparent)]
    State(#[from] StateError),
    /// An object could not be created, updated or deleted on the in-process API server.
    #[error("could not {action} {kind} {name}: {message}")]
    Apply {
        /// `apply` or `delete`.
        action: &'static str,
        /// The kind of the object.
        kind: &'static str,
        /// `namespace/name`.
        name: String,
        /// What the API server said.
        message: String,
    },
    /// The controllers failed.
    #[error(transparent)]
    Controller(#[from] controller::Error),
    /// A part of local mode ended abnormally (a panic).
    #[error("local mode's {part} ended abnormally: {message}")]
    Task {
        /// `controller`, `executor`, `table` or `state saver`.
        part: &'static str,
        /// The panic or cancellation.
        message: String,
    },
}

/// Runs local mode until Ctrl-C. See the module docs.
pub async fn run_local(opts: LocalOptions) -> Result<(), LocalError> {
    run_local_until(opts, async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            // Without a signal handler there is no Ctrl-C to wait for; the process's own
            // termination stops local mode then.
            warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    })
    .await
}

/// Runs local mode until `shutdown` completes (tests, embedding): stops the running processes
/// (their Pods fail as `Interrupted`), then the controllers, and saves the state a last time.
pub async fn run_local_until(
    opts: LocalOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), LocalError> {
    let LocalOptions {
        dir,
        state: state_path,
        namespace,
        mut out,
    } = opts;
    let objects = read_objects(&dir, &namespace, SystemClock.now(), &mut out)?;
    // Output errors (a closed pipe) must not stop the scheduler; the same everywhere below.
    let _ = writeln!(out, "{}", warning());

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (server, state_note) = open_server(state_path.as_deref(), clock.clone())?;
    let _ = writeln!(
        out,
        "{} Schedule(s) and {} JobRun(s) from {}; {state_note}",
        objects.schedules.len(),
        objects.runs.len(),
        dir.display()
    );
    let before = server.snapshot();
    // Subscribed before the manifests are applied, so the table and the state see those writes.
    let table_changes = server.subscribe_changes();
    let state_changes = server.subscribe_changes();
    let client = server.client();
    apply_objects(&client, &objects, &mut out).await?;
    if let Some(path) = &state_path {
        // Fails early when the file cannot be written, rather than after the first run.
        state::save(&server, path).await?;
    }

    let mut table = table::Table::new(out);
    table.show_all(&before);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stop_pods_tx, stop_pods_rx) = watch::channel(false);
    let executor =
        tokio::spawn(PodRunner::new(client.clone(), clock.clone(), work_dir()).run(stopped(stop_pods_rx)));
    let mut controller = tokio::spawn(controller::run(
        client,
        ControllerConfig::default(),
        clock,
        stopped(stop_rx.clone()),
    ));
    let printer = tokio::spawn(table.follow(server.clone(), table_changes, stop_rx.clone()));
    let saver = state_path.clone().map(|path| {
        tokio::spawn(state::save_on_change(
            server.clone(),
            path,
            state_changes,
            stop_rx.clone(),
        ))
    });

    let early_end = tokio::select! {
        () = shutdown => None,
        ended = &mut controller => Some(ended),
    };
    let (executor_end, controller_end) =
        stop_in_order(&server, executor, stop_pods_tx, controller, early_end, stop_tx).await;
    let mut out = printer.await.map_err(|e| task_error("table", e))?;
    if let Some(saver) = saver {
        saver.await.map_err(|e| task_error("state saver", e))?;
    }
    if let Some(path) = &state_path {
        state::save(&server, path).await?;
        let _ = writeln!(out, "stopped; state saved to {}", path.display());
    } else {
        let _ = writeln!(out, "stopped");
    }
    let _ = out.flush();
    executor_end.map_err(|e| task_error("executor", e))?;
    controller_end.map_err(|e| task_error("controller", e))??;
    Ok(())
}

/// The in-process API server: the one saved in `state_path` if there is one, else a fresh one
/// with the CRDs; and a note for the user saying which.
fn open_server(state_path: Option<&Path>, clock: Arc<dyn Clock>) -> Result<(ApiServer, String), LocalError> {
    Ok(match state_path {
        Some(path) => match state::load(path, clock.clone())? {
            Some(server) => (server, format!("state loaded from {}", path.display())),
            None => (
                ApiServer::with_crds(clock, &horolog::crd::crds()),
                format!("state will be saved to {} (new)", path.display()),
            ),
        },
        None => (
            ApiServer::with_crds(clock, &horolog::crd::crds()),
            "state kept in memory only (use --state FILE to keep it across restarts)".to_string(),
        ),
    })
}

/// How the controllers' task ended: their result, or a panic.
type ControllerEnd = Result<Result<(), controller::Error>, JoinError>;

/// Stops the executor's processes, then the controllers (unless they ended on their own:
/// `early_end`); returns how the executor and the controllers ended.
async fn stop_in_order(
    server: &ApiServer,
    executor: JoinHandle<()>,
    stop_pods: watch::Sender<bool>,
    controller: JoinHandle<Result<(), controller::Error>>,
    early_end: Option<ControllerEnd>,
    stop_controllers: watch::Sender<bool>,
) -> (Result<(), JoinError>, ControllerEnd) {
    // Processes first, so their Pods are recorded as interrupted in the state that is saved.
    let _ = stop_pods.send(true);
    let executor_end = executor.await;
    if early_end.is_none() {
        // Let the controllers record how the stopped processes ended, so the table and the saved
        // state end consistent; bounded, since a restart would catch up anyway.
        let _ = tokio::time::timeout(SETTLE_LIMIT, runs_follow_their_pods(server)).await;
    }
    let _ = stop_controllers.send(true);
    let controller_end = match early_end {
        Some(ended) => ended,
        None => controller.await,
    };
    (executor_end, controller_end)
}

/// How long stopping waits for the controllers to record the ends of the stopped processes.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Returns once no unfinished JobRun has a Pod that has ended.
async fn runs_follow_their_pods(server: &ApiServer) {
    while has_unrecorded_pod_end(&server.snapshot()) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// True when some unfinished JobRun's current Pod has Succeeded or Failed.
fn has_unrecorded_pod_end(objects: &[Value]) -> bool {
    let text = |object: &Value, pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let ended: HashSet<(String, String)> = objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Pod"))
        .filter(|pod| matches!(text(pod, "/status/phase").as_str(), "Succeeded" | "Failed"))
        .map(|pod| (text(pod, "/metadata/namespace"), text(pod, "/metadata/name")))
        .collect();
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("JobRun"))
        .filter_map(|o| serde_json::from_value::<JobRun>(o.clone()).ok())
        .filter(|run| !run.is_finished())
        .any(|run| {
            let pod = run
                .status
                .as_ref()
                .and_then(|s| s.pod_name.clone())
                .unwrap_or_default();
            ended.contains(&(run.namespace().unwrap_or_default(), pod))
        })
}

/// The warning printed at start.
fn warning() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|user| format!("user {user:?}"))
        .unwrap_or_else(|_| "the current user".to_string());
    format!(
        "WARNING: local mode runs each pod's command directly on this host as {user}, without a \
         container: images, volumes, resource limits and security contexts are ignored. Run only \
         manifests you trust. Ctrl-C stops it."
    )
}

/// A fresh directory name for termination files, unique per local mode run (tests run several
/// in one process).
fn work_dir() -> PathBuf {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("horolog-local-{}-{run}", std::process::id()))
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens once everything stops anyway.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

fn task_error(part: &'static str, err: JoinError) -> LocalError {
    LocalError::Task {
        part,
        message: err.to_string(),
    }
}

/// The objects to run, each with its namespace set.
#[derive(Default)]
struct Objects {
    schedules: Vec<Schedule>,
    runs: Vec<JobRun>,
    tasks: Vec<Task>,
    backfills: Vec<Backfill>,
    calendars: Vec<horolog::api::Calendar>,
}

/// Reads and validates the manifests; reports other kinds to `out` and leaves them out.
/// Every object is checked by [`Validate::problems`], as `kubectl horolog lint` and preview
/// check it; `now` anchors triggers without startTime while checking.
fn read_objects(
    dir: &std::path::Path,
    namespace: &str,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
) -> Result<Objects, LocalError> {
    let mut objects = Objects::default();
    let first = |problems: Vec<FieldError>| problems.into_iter().next();
    for manifest in read_manifests(dir)? {
        match manifest {
            Manifest::Schedule(schedule) => {
                let schedule = in_namespace_if_valid(*schedule, namespace, |s| first(s.problems(now)))?;
                objects.schedules.push(schedule);
            }
            Manifest::JobRun(run) => {
                let run = in_namespace_if_valid(*run, namespace, |r| first(r.problems(now)))?;
                objects.runs.push(run);
            }
            Manifest::Task(task) => {
                let task = in_namespace_if_valid(*task, namespace, |t| first(t.problems(now)))?;
                objects.tasks.push(task);
            }
            Manifest::Backfill(backfill) => {
                let backfill = in_namespace_if_valid(*backfill, namespace, |b| first(b.problems(now)))?;
                objects.backfills.push(backfill);
            }
            Manifest::Calendar(calendar) => {
                let calendar = in_namespace_if_valid(*calendar, namespace, |_| None)?;
                objects.calendars.push(calendar);
            }
            Manifest::Other { api_version, kind } => {
                let _ = writeln!(
                    out,
                    "ignoring a {kind} ({api_version}): local mode runs horolog objects only"
                );
            }
        }
    }
    if objects.schedules.is_empty() && objects.runs.is_empty() {
        return Err(LocalError::NothingToRun(dir.to_path_buf()));
    }
    Ok(objects)
}

/// `object` with `namespace` filled in when its manifest names none, unless `first_problem`
/// finds it invalid.
fn in_namespace_if_valid<K>(
    mut object: K,
    namespace: &str,
    first_problem: impl FnOnce(&K) -> Option<FieldError>,
) -> Result<K, LocalError>
where
    K: kube::Resource<DynamicType = ()>,
{
    object
        .meta_mut()
        .namespace
        .get_or_insert_with(|| namespace.to_string());
    match first_problem(&object) {
        Some(source) => Err(LocalError::Invalid {
            location: format!("{} {}", K::kind(&()), object.name_any()),
            source,
        }),
        None => Ok(object),
    }
}

/// Server-side applies every object (creating it, or updating its spec and keeping its status)
/// and deletes the Schedules that are no longer in the manifests.
async fn apply_objects(
    client: &Client,
    objects: &Objects,
    out: &mut (dyn Write + Send),
) -> Result<(), LocalError> {
    for calendar in &objects.calendars {
        apply(client, "Calendar", calendar).await?;
    }
    for task in &objects.tasks {
        apply(client, "Task", task).await?;
    }
    for schedule in &objects.schedules {
        apply(client, "Schedule", schedule).await?;
    }
    for run in &objects.runs {
        apply(client, "JobRun", run).await?;
    }
    for backfill in &objects.backfills {
        apply(client, "Backfill", backfill).await?;
    }
    let wanted: HashSet<(String, String)> = objects
        .schedules
        .iter()
        .map(|s| (s.namespace().unwrap_or_default(), s.name_any()))
        .collect();
    let all: Api<Schedule> = Api::all(client.clone());
    let stored = all
        .list(&ListParams::default())
        .await
        .map_err(|e| apply_error("list", "Schedule", "*", e))?;
    for schedule in stored.items {
        let (namespace, name) = (schedule.namespace().unwrap_or_default(), schedule.name_any());
        if wanted.contains(&(namespace.clone(), name.clone())) {
            continue;
        }
        let _ = writeln!(
            out,
            "deleting Schedule {namespace}/{name} and its JobRuns: it is no longer in the manifests"
        );
        // Only the Schedule listed, not one created again under its name since.
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: schedule.uid(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        Api::<Schedule>::namespaced(client.clone(), &namespace)
            .delete(&name, &params)
            .await
            .map_err(|e| apply_error("delete", "Schedule", &format!("{namespace}/{name}"), e))?;
    }
    Ok(())
}

/// Server-side applies one object without its status (which belongs to the controllers).
async fn apply<K>(client: &Client, kind: &'static str, object: &K) -> Result<(), LocalError>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Serialize
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
    let full_name = format!("{namespace}/{name}");
    let mut value = serde_json::to_value(object).map_err(|e| LocalError::Apply {
        action: "apply",
        kind,
        name: full_name.clone(),
        message: e.to_string(),
    })?;
    if let Some(fields) = value.as_object_mut() {
        fields.remove("status");
    }
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply::<Value>(value),
    )
    .await
    .map_err(|e| apply_error("apply", kind, &full_name, e))?;
    Ok(())
}

fn apply_error(action: &'static str, kind: &'static str, name: &str, err: kube::Error) -> LocalError {
    LocalError::Apply {
        action,
        kind,
        name: name.to_string(),
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_running_jobrun_whose_pod_ended_is_not_yet_recorded() {
        let run = |phase: &str| {
            json!({
                "apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun",
                "metadata": {"name": "r", "namespace": "default"},
                "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "x"}]}}},
                "status": {"phase": phase, "podName": "r-1"},
            })
        };
        let pod = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r-1", "namespace": "default"},
                   "status": {"phase": phase}})
        };
        assert!(has_unrecorded_pod_end(&[run("Running"), pod("Failed")]));
        assert!(!has_unrecorded_pod_end(&[run("Failed"), pod("Failed")]));
        assert!(!has_unrecorded_pod_end(&[run("Running"), pod("Running")]));
    }

    #[test]
    fn manifests_without_schedules_or_jobruns_are_refused() {
        let dir = std::env::temp_dir().join(format!("horolog-local-refuse-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("cm.yaml");
        let _ = std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
        let mut out = Vec::new();
        let result = read_objects(&file, "default", chrono::Utc::now(), &mut out);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(result, Err(LocalError::NothingToRun(_))));
        let text = String::from_utf8(out).unwrap_or_default();
        assert!(text.contains("ignoring a ConfigMap"), "{text}");
    }
}
