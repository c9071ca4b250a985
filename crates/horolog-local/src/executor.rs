//! A kubelet stand-in for local mode: every new Pod on the API server becomes a process on this
//! host, and the process's life becomes the Pod's status, written as a kubelet would write it.
//!
//! What runs: the Pod's first container's `command` followed by its `args`, with the host's
//! environment plus the container's literal `env` values, in the current directory (or the
//! container's `workingDir` when that directory exists here). Images, volumes, other
//! containers, resources and security contexts are ignored: there is no container runtime, so
//! a container without an explicit `command` cannot run (the image's entrypoint is unknown) and
//! its Pod fails with reason `CommandRequired`.
//!
//! The termination message: a container writes its result to `terminationMessagePath`
//! (default `/dev/termination-log`), which does not exist (or is not writable) on a host. Every
//! occurrence of that path in the command and args is replaced with a per-pod temporary file,
//! whose path is also exported as `HOROLOG_TERMINATION_LOG`, so
//! `sh -c 'echo ok > /dev/termination-log'` works unchanged and a program can write to
//! `$HOROLOG_TERMINATION_LOG`. A program that has the path built in (not in its command line)
//! cannot be redirected. The file's content, trimmed and cut to 4096 bytes, becomes the
//! terminated container's `message` (the JobRun's `result`).
//!
//! Stopping: `activeDeadlineSeconds` and Pod deletion stop the process's whole process group
//! with SIGTERM, then SIGKILL after `terminationGracePeriodSeconds` (default 30 s, as on a
//! node); a deadline fails the Pod with reason `DeadlineExceeded`. When the executor itself
//! stops, processes get at most [`SHUTDOWN_GRACE`] and their Pods fail with reason
//! `Interrupted`; a Pod found `Running` at start (the previous horolog process ended while it
//! ran) fails the same way, since its process is gone.
//!
//! Output: each line of stdout and stderr is logged at debug level with the pod's name
//! (`RUST_LOG=horolog::local=debug`); with `terminationMessagePolicy: FallbackToLogsOnError`, a
//! failed container with an empty termination file gets the tail of its output as message.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use horolog::clock::Clock;

/// Where a container writes its termination message unless it says otherwise.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

/// The environment variable holding the path of the pod's termination file.
pub const TERMINATION_LOG_ENV: &str = "HOROLOG_TERMINATION_LOG";

/// The most a process gets to exit after SIGTERM when horolog itself stops.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The kubelet's limit on a termination message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The kubelet's `FallbackToLogsOnError` takes at most this many last lines and bytes.
const FALLBACK_LOG_LINES: usize = 80;
const FALLBACK_LOG_BYTES: usize = 2048;

/// `terminationGracePeriodSeconds` when the Pod does not say.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How long to wait for the rest of a process's output once it has exited; a background
/// grandchild that keeps the pipe open must not hold the Pod's status back.
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);

/// The field manager of the status writes.
const MANAGER: &str = "horolog-local";

/// What the executor will run for a Pod: its first container as a host process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCommand {
    /// The container's name (for its status).
    pub container: String,
    /// The container's image (reported in its status, never pulled).
    pub image: String,
    /// The program: `command[0]`.
    pub program: String,
    /// The rest of `command`, then `args`, with the termination path rewritten.
    pub args: Vec<String>,
    /// Literal `env` values, plus [`TERMINATION_LOG_ENV`].
    pub env: Vec<(String, String)>,
    /// Variables that local mode cannot resolve (`valueFrom`, `envFrom`); left unset.
    pub unresolved_env: Vec<String>,
    /// The container's `workingDir`, if any.
    pub working_dir: Option<PathBuf>,
    /// `activeDeadlineSeconds` of the Pod.
    pub active_deadline: Option<Duration>,
    /// `terminationGracePeriodSeconds` of the Pod.
    pub grace: Duration,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    pub fallback_to_logs: bool,
}

/// Why a Pod cannot run locally; it fails with this reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotRunnable {
    /// One CamelCase word for the Pod's `status.reason`.
    pub reason: &'static str,
    /// What is wrong and what to do, for the Pod's `status.message`.
    pub message: String,
}

/// The host process for `pod`, writing its termination message to `termination_file`. Pure.
pub fn local_command(pod: &Pod, termination_file: &Path) -> Result<LocalCommand, NotRunnable> {
    let spec = pod.spec.as_ref();
    let Some(container) = spec.and_then(|s| s.containers.first()) else {
        return Err(NotRunnable {
            reason: "NoContainer",
            message: "the pod has no container to run".into(),
        });
    };
    let command = container.command.clone().unwrap_or_default();
    let Some((program, rest)) = command.split_first() else {
        return Err(NotRunnable {
            reason: "CommandRequired",
            message: format!(
                "local mode needs an explicit command: container {:?} has none, and without a container \
                 runtime the entrypoint of image {:?} is unknown; set `command` (e.g. [\"sh\", \"-c\", \"...\"])",
                container.name,
                container.image.as_deref().unwrap_or_default()
            ),
        });
    };
    let log_path = container
        .termination_message_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_TERMINATION_LOG);
    let local_path = termination_file.display().to_string();
    let rewrite = |arg: &String| arg.replace(log_path, &local_path);
    let args = rest
        .iter()
        .chain(container.args.iter().flatten())
        .map(rewrite)
        .collect();
    let (mut env, unresolved_env) = literal_env(container);
    env.push((TERMINATION_LOG_ENV.to_string(), local_path.clone()));
    Ok(LocalCommand {
        container: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        program: rewrite(program),
        args,
        env,
        unresolved_env,
        working_dir: container.working_dir.as_ref().map(PathBuf::from),
        active_deadline: spec
            .and_then(|s| s.active_deadline_seconds)
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        grace: spec
            .and_then(|s| s.termination_grace_period_seconds)
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(DEFAULT_GRACE),
        fallback_to_logs: container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
    })
}

/// The container's literal variables, and the names of those only a cluster can fill in.
fn literal_env(container: &Container) -> (Vec<(String, String)>, Vec<String>) {
    let mut literal = Vec::new();
    let mut unresolved = Vec::new();
    for var in container.env.iter().flatten() {
        match (&var.value, &var.value_from) {
            (_, Some(_)) => unresolved.push(var.name.clone()),
            (value, None) => literal.push((var.name.clone(), value.clone().unwrap_or_default())),
        }
    }
    for source in container.env_from.iter().flatten() {
        let from = match (&source.config_map_ref, &source.secret_ref) {
            (Some(map), _) => format!("envFrom configMap {}", map.name),
            (_, Some(secret)) => format!("envFrom secret {}", secret.name),
            _ => "envFrom".to_string(),
        };
        unresolved.push(from);
    }
    (literal, unresolved)
}

/// A termination file's content as the kubelet reports it: trimmed, at most 4096 bytes.
pub fn termination_message(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    truncate_to(text.trim(), MAX_MESSAGE_BYTES).to_string()
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn truncate_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The exit code a container runtime reports: the code, or 128 + the signal that ended it.
fn exit_code(status: ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(-1)
}

/// How the executor runs a Pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The first container's command as a process on this host (see the module docs), with
    /// termination files under `workdir`.
    Processes {
        /// Where termination files are kept (created when needed; a path without spaces).
        workdir: PathBuf,
    },
    /// No process at all, as KWOK's simulated nodes: the Pod is `Running` at once and
    /// `Succeeded` (exit code 0, no message) after `run_for`. For load tests, where what the
    /// pods do does not matter but their lifecycle, and its API writes, do.
    Simulated {
        /// How long each Pod runs.
        run_for: Duration,
    },
}

/// The kubelet stand-in. See the module docs.
#[derive(Clone)]
pub struct PodRunner {
    client: Client,
    clock: Arc<dyn Clock>,
    mode: Mode,
}

impl std::fmt::Debug for PodRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodRunner")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// A Pod the executor has seen, by uid.
struct Seen {
    /// Tells the Pod's process that the Pod is gone (absent once it was told, or for Pods it
    /// does not run).
    deleted: Option<oneshot::Sender<()>>,
}

impl PodRunner {
    /// An executor for the Pods `client` sees, keeping termination files under `workdir`
    /// (created when needed; it should be a path without spaces, since it is written into
    /// shell command lines).
    pub fn new(client: Client, clock: Arc<dyn Clock>, workdir: PathBuf) -> Self {
        PodRunner::with_mode(client, clock, Mode::Processes { workdir })
    }

    /// An executor for the Pods `client` sees that runs them as `mode` says.
    pub fn with_mode(client: Client, clock: Arc<dyn Clock>, mode: Mode) -> Self {
        PodRunner { client, clock, mode }
    }

    /// Runs Pods until `shutdown` completes, then stops their processes (at most
    /// [`SHUTDOWN_GRACE`] each), records them as `Interrupted` and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        if let Mode::Processes { workdir } = &self.mode
            && let Err(err) = tokio::fs::create_dir_all(workdir).await
        {
            // Pods will then fail one by one with the reason; the executor keeps going.
            warn!(workdir = %workdir.display(), error = %err, "cannot create the work directory");
        }
        let api: Api<Pod> = Api::all(self.client.clone());
        let events = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(events);
        futures::pin_mut!(shutdown);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut seen: HashMap<String, Seen> = HashMap::new();
        let mut relisted: Option<HashSet<String>> = None;
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(err) = done {
                        warn!(error = %err, "a pod task ended abnormally");
                    }
                }
                event = events.next() => match event {
                    None => break,
                    Some(Err(err)) => warn!(error = %err, "watching pods failed; retrying"),
                    Some(Ok(watcher::Event::Init)) => relisted = Some(HashSet::new()),
                    Some(Ok(watcher::Event::InitApply(pod))) => {
                        if let (Some(uids), Some(uid)) = (relisted.as_mut(), pod.uid()) {
                            uids.insert(uid);
                        }
                        self.consider(pod, &mut seen, &mut tasks, &stop_rx);
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        // Pods that went while the watch was down were deleted.
                        let listed = relisted.take().unwrap_or_default();
                        seen.retain(|uid, pod| {
                            let keep = listed.contains(uid);
                            if !keep && let Some(deleted) = pod.deleted.take() {
                                let _ = deleted.send(());
                            }
                            keep
                        });
                    }
                    Some(Ok(watcher::Event::Apply(pod))) => self.consider(pod, &mut seen, &mut tasks, &stop_rx),
                    Some(Ok(watcher::Event::Delete(pod))) => {
                        if let Some(mut gone) = pod.uid().and_then(|uid| seen.remove(&uid))
                            && let Some(deleted) = gone.deleted.take()
                        {
                            // The task may have finished already; then there is nothing to stop.
                            let _ = deleted.send(());
                        }
                    }
                },
            }
        }
        let _ = stop_tx.send(true);
        while let Some(done) = tasks.join_next().await {
            if let Err(err) = done {
                warn!(error = %err, "a pod task ended abnormally");
            }
        }
        if let Mode::Processes { workdir } = &self.mode
            && let Err(err) = tokio::fs::remove_dir(workdir).await
        {
            debug!(workdir = %workdir.display(), error = %err, "work directory not removed");
        }
    }

    /// Starts a new Pod's process, or settles a Pod left over from a previous process.
    fn consider(
        &self,
        pod: Pod,
        seen: &mut HashMap<String, Seen>,
        tasks: &mut JoinSet<()>,
        stop: &watch::Receiver<bool>,
    ) {
        let Some(uid) = pod.uid() else { return };
        if pod.metadata.deletion_timestamp.is_some() {
            if let Some(deleted) = seen.get_mut(&uid).and_then(|s| s.deleted.take()) {
                let _ = deleted.send(());
            }
            return;
        }
        if seen.contains_key(&uid) {
            return;
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        match phase.as_str() {
            "" | "Pending" => {
                let (deleted_tx, deleted_rx) = oneshot::channel();
                seen.insert(
                    uid,
                    Seen {
                        deleted: Some(deleted_tx),
                    },
                );
                let this = self.clone();
                let stop = stop.clone();
                tasks.spawn(async move { this.run_pod(pod, deleted_rx, stop).await });
            }
            "Running" | "Unknown" => {
                seen.insert(uid, Seen { deleted: None });
                let this = self.clone();
                tasks.spawn(async move {
                    let status = this.interrupted_status(&pod, "horolog stopped while the pod ran");
                    this.write_status(&pod, status).await;
                });
            }
            _ => {
                seen.insert(uid, Seen { deleted: None });
            }
        }
    }

    /// Runs one Pod's process from start to status.
    async fn run_pod(&self, pod: Pod, deleted: oneshot::Receiver<()>, stop: watch::Receiver<bool>) {
        let workdir = match &self.mode {
            Mode::Processes { workdir } => workdir,
            Mode::Simulated { run_for } => return self.simulate_pod(&pod, *run_for, deleted, stop).await,
        };
        let name = pod.name_any();
        let file_name = format!("{}.{}.termination-log", pod.namespace().unwrap_or_default(), name);
        let termination_file = workdir.join(file_name);
        let command = match local_command(&pod, &termination_file) {
            Ok(command) => command,
            Err(not_runnable) => {
                warn!(pod = %name, reason = not_runnable.reason, "{}", not_runnable.message);
                let status = json!({
                    "phase": "Failed",
                    "reason": not_runnable.reason,
                    "message": not_runnable.message,
                });
                self.write_status(&pod, status).await;
                return;
            }
        };
        let note = (!command.unresolved_env.is_empty()).then(|| {
            format!(
                "local mode cannot resolve {}; left unset",
                command.unresolved_env.join(", ")
            )
        });
        if let Some(note) = &note {
            warn!(pod = %name, "{note}");
        }
        let result = self
            .run_process(&pod, &command, &termination_file, note, deleted, stop)
            .await;
        if let Err(err) = tokio::fs::remove_file(&termination_file).await {
            debug!(pod = %name, error = %err, "termination file not removed");
        }
        if let Some(status) = result {
            self.write_status(&pod, status).await;
        }
    }

    /// A simulated Pod's life: `Running` now, `Succeeded` after `run_for`; `Interrupted` when
    /// the executor stops first; nothing more once the Pod is deleted.
    async fn simulate_pod(
        &self,
        pod: &Pod,
        run_for: Duration,
        deleted: oneshot::Receiver<()>,
        mut stop: watch::Receiver<bool>,
    ) {
        let (container, image) = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
            .unwrap_or_default();
        let started_at = time_text(self.now());
        let running = json!({
            "phase": "Running",
            "startTime": started_at,
            "containerStatuses": [container_status(&container, &image, true, json!({
                "running": {"startedAt": started_at},
            }))],
        });
        self.write_status(pod, running).await;
        tokio::select! {
            () = tokio::time::sleep(run_for) => {}
            _ = deleted => return,
            // The guard `wait_for` returns must be gone before the write below awaits.
            () = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                let status = self.interrupted_status(pod, "horolog stopped while the pod ran");
                self.write_status(pod, status).await;
                return;
            }
        }
        let succeeded = json!({
            "phase": "Succeeded",
            "containerStatuses": [container_status(&container, &image, false, json!({
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started_at,
                    "finishedAt": time_text(self.now()),
                },
            }))],
        });
        self.write_status(pod, succeeded).await;
    }

    /// Spawns and watches the process; the Pod's final status, or `None` when the Pod is gone.
    async fn run_process(
        &self,
        pod: &Pod,
        command: &LocalCommand,
        termination_file: &Path,
        note: Option<String>,
        mut deleted: oneshot::Receiver<()>,
        mut stop: watch::Receiver<bool>,
    ) -> Option<Value> {
        let name = pod.name_any();
        // An empty file first: a process that writes nothing leaves an empty message, and a
        // leftover from an earlier pod of the same name must not become this one's result.
        if let Err(err) = tokio::fs::write(termination_file, b"").await {
            return Some(self.start_failed(command, format!("cannot create the termination file: {err}")));
        }
        let mut child = match process_for(command).spawn() {
            Ok(child) => child,
            Err(err) => {
                let message = format!("cannot run {:?}: {err}", command.program);
                warn!(pod = %name, "{message}");
                return Some(self.start_failed(command, message));
            }
        };
        let started_at = self.now();
        debug!(pod = %name, program = %command.program, "process started");
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let readers = forward_outputs(&mut child, &name, &tail);
        self.write_status(pod, running_status(command, started_at, note.as_deref()))
            .await;

        let deadline = async {
            match command.active_deadline {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let end = tokio::select! {
            status = child.wait() => End::Exited(status),
            () = deadline => End::Deadline,
            _ = &mut deleted => End::Deleted,
            _ = stop.wait_for(|stopped| *stopped) => End::Shutdown,
        };
        let stopped = stop_for(end, &mut child, command, &name).await;
        drain(readers).await;
        let (status, pod_failure) = stopped?;
        let (pod_reason, pod_message) = match pod_failure {
            Some((reason, message)) => (Some(reason), Some(message)),
            None => (None, note),
        };
        let finished_at = self.now();
        let code = match &status {
            Ok(status) => exit_code(*status),
            Err(err) => {
                warn!(pod = %name, error = %err, "lost track of the process");
                -1
            }
        };
        let message = container_message(command, termination_file, code, &tail, &name).await;
        debug!(pod = %name, exit_code = code, "process exited");
        let succeeded = code == 0 && pod_reason.is_none();
        Some(json!({
            "phase": if succeeded { "Succeeded" } else { "Failed" },
            "reason": pod_reason,
            "message": pod_message,
            "containerStatuses": [container_status(&command.container, &command.image, false, json!({
                "terminated": {
                    "exitCode": code,
                    "reason": if code == 0 { "Completed" } else { "Error" },
                    "message": message,
                    "startedAt": time_text(started_at),
                    "finishedAt": time_text(finished_at),
                },
            }))],
        }))
    }

    /// The status of a Pod whose process could not be started (as a runtime's `StartError`).
    fn start_failed(&self, command: &LocalCommand, message: String) -> Value {
        let now = time_text(self.now());
        json!({
            "phase": "Failed",
            "reason": "StartError",
            "message": message,
            "containerStatuses": [container_status(&command.container, &command.image, false, json!({
                "terminated": {"exitCode": 128, "reason": "StartError", "startedAt": now, "finishedAt": now},
            }))],
        })
    }

    /// The status of a Pod whose process ended with horolog.
    fn interrupted_status(&self, pod: &Pod, message: &str) -> Value {
        let now = time_text(self.now());
        let container = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let started_at = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .and_then(horolog::pod::chrono_time)
            .map(time_text)
            .unwrap_or_else(|| now.clone());
        json!({
            "phase": "Failed",
            "reason": "Interrupted",
            "message": message,
            "containerStatuses": [{
                "name": container, "image": "", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {
                    "exitCode": 137, "reason": "Error", "startedAt": started_at, "finishedAt": now,
                }},
            }],
        })
    }

    /// Merge-patches the Pod's status; a Pod that is gone needs none.
    async fn write_status(&self, pod: &Pod, status: Value) {
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..PatchParams::default()
        };
        match api
            .patch_status(&name, &params, &Patch::Merge(&json!({ "status": status })))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                debug!(pod = %name, "pod gone before its status was written");
            }
            Err(err) => warn!(pod = %name, error = %err, "cannot write the pod's status"),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// A container status as the kubelet writes it.
fn container_status(name: &str, image: &str, running: bool, state: Value) -> Value {
    json!({
        "name": name,
        "image": image,
        "imageID": "",
        "ready": running,
        "started": running,
        "restartCount": 0,
        "state": state,
    })
}

/// A metav1 Time as the API server writes it (whole seconds).
fn time_text(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The host process for `command`: its program, args and env, output piped, in the
/// container's working directory when that exists here.
fn process_for(command: &LocalCommand) -> Command {
    let mut process = Command::new(&command.program);
    process
        .args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = command.working_dir.as_ref().filter(|d| d.is_dir()) {
        process.current_dir(dir);
    }
    // Its own process group, so a deadline or deletion stops `sh -c`'s children too, and a
    // Ctrl-C in the terminal reaches horolog only (which then stops the group itself).
    #[cfg(unix)]
    process.process_group(0);
    process
}

/// Starts logging the child's stdout and stderr (see [`forward_output`]), keeping the last
/// lines in `tail`.
fn forward_outputs(child: &mut Child, pod: &str, tail: &Arc<Mutex<VecDeque<String>>>) -> JoinSet<()> {
    let mut readers = JoinSet::new();
    if let Some(stdout) = child.stdout.take() {
        readers.spawn(forward_output(stdout, pod.to_string(), "stdout", tail.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.spawn(forward_output(stderr, pod.to_string(), "stderr", tail.clone()));
    }
    readers
}

/// The status of a Pod whose process started at `started_at` and runs; `note` says what of
/// the Pod local mode could not honour.
fn running_status(command: &LocalCommand, started_at: DateTime<Utc>, note: Option<&str>) -> Value {
    json!({
        "phase": "Running",
        "startTime": time_text(started_at),
        "message": note,
        "containerStatuses": [container_status(&command.container, &command.image, true, json!({
            "running": {"startedAt": time_text(started_at)},
        }))],
    })
}

/// The terminated container's message: what the process left in the termination file, or,
/// when that is empty, the process failed and the container says `FallbackToLogsOnError`,
/// the tail of its output.
async fn container_message(
    command: &LocalCommand,
    termination_file: &Path,
    code: i32,
    tail: &Mutex<VecDeque<String>>,
    pod: &str,
) -> String {
    let message = match tokio::fs::read(termination_file).await {
        Ok(raw) => termination_message(&raw),
        Err(err) => {
            warn!(pod = %pod, error = %err, "cannot read the termination file");
            String::new()
        }
    };
    if message.is_empty() && code != 0 && command.fallback_to_logs {
        return log_tail(tail);
    }
    message
}

/// What ended the wait for a running process.
enum End {
    Exited(std::io::Result<ExitStatus>),
    Deadline,
    Deleted,
    Shutdown,
}

/// Why a Pod fails whatever its process's exit status says: a reason and a message.
type PodFailure = (&'static str, String);

/// Stops the process when `end` asks for it: its exit status, and the reason and message of a
/// Pod that fails whatever its exit status (a deadline exceeded, horolog stopping). `None` when
/// the Pod was deleted: a Pod that is gone needs no status.
async fn stop_for(
    end: End,
    child: &mut Child,
    command: &LocalCommand,
    pod: &str,
) -> Option<(std::io::Result<ExitStatus>, Option<PodFailure>)> {
    match end {
        End::Exited(status) => Some((status, None)),
        End::Deadline => {
            info!(pod = %pod, "active deadline exceeded; stopping the process");
            let message = "Pod was active on the node longer than the specified deadline";
            let status = stop_group(child, command.grace).await;
            Some((status, Some(("DeadlineExceeded", message.into()))))
        }
        End::Deleted => {
            info!(pod = %pod, "pod deleted; stopping the process");
            let _ = stop_group(child, command.grace).await;
            None
        }
        End::Shutdown => {
            info!(pod = %pod, "horolog is stopping; stopping the process");
            let grace = command.grace.min(SHUTDOWN_GRACE);
            let status = stop_group(child, grace).await;
            Some((
                status,
                Some(("Interrupted", "horolog stopped while the pod ran".into())),
            ))
        }
    }
}

/// Stops the process group: SIGTERM, then SIGKILL after `grace`; the exit status.
async fn stop_group(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    if !signal_group(child, "TERM").await {
        // No group to signal (not Unix, or no `kill`): the direct child is all we can stop.
        child.start_kill()?;
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if !signal_group(child, "KILL").await {
                child.start_kill()?;
            }
            child.wait().await
        }
    }
}

/// Sends `signal` to the child's process group with kill(1) (this crate has no unsafe code, so
/// no direct kill(2)); false when that was not possible.
async fn signal_group(child: &Child, signal: &str) -> bool {
    let Some(pid) = child.id() else {
        return false; // already reaped
    };
    if !cfg!(unix) {
        return false;
    }
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// Logs each line of a process's output and keeps the last ones.
async fn forward_output(
    stream: impl AsyncRead + Unpin,
    pod: String,
    which: &'static str,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                debug!(pod = %pod, stream = which, "{text}");
                let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                if tail.len() == FALLBACK_LOG_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
            Err(err) => {
                debug!(pod = %pod, stream = which, error = %err, "output unreadable");
                return;
            }
        }
    }
}

/// Waits briefly for the output readers, then gives up on them.
async fn drain(mut readers: JoinSet<()>) {
    let all = async { while readers.join_next().await.is_some() {} };
    if tokio::time::timeout(OUTPUT_DRAIN, all).await.is_err() {
        readers.abort_all();
    }
}

/// The last output lines, at most [`FALLBACK_LOG_BYTES`] of them counted from the end.
fn log_tail(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
    let text = tail.iter().cloned().collect::<Vec<_>>().join("\n");
    let text = text.trim();
    let mut start = text.len().saturating_sub(FALLBACK_LOG_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, PodSpec};

    fn pod(container: Container) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![container],
                active_deadline_seconds: Some(5),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn shell(script: &str) -> Container {
        Container {
            name: "main".into(),
            image: Some("busybox:1.37".into()),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec![script.into()]),
            ..Container::default()
        }
    }

    #[test]
    fn the_termination_path_is_rewritten_to_the_local_file_and_exported() {
        let command = local_command(
            &pod(shell("echo ok > /dev/termination-log")),
            Path::new("/tmp/x/t.log"),
        )
        .unwrap();
        assert_eq!(command.program, "sh");
        assert_eq!(command.args, ["-c", "echo ok > /tmp/x/t.log"]);
        assert!(
            command
                .env
                .contains(&(TERMINATION_LOG_ENV.into(), "/tmp/x/t.log".into()))
        );
        assert_eq!(command.active_deadline, Some(Duration::from_secs(5)));
        assert_eq!(command.grace, DEFAULT_GRACE);
    }

    #[test]
    fn a_custom_termination_message_path_is_rewritten_instead() {
        let mut container = shell("echo ok > /out/result");
        container.termination_message_path = Some("/out/result".into());
        let command = local_command(&pod(container), Path::new("/tmp/t")).unwrap();
        assert_eq!(command.args, ["-c", "echo ok > /tmp/t"]);
    }

    #[test]
    fn a_container_without_command_cannot_run_locally() {
        let mut container = shell("ignored");
        container.command = None;
        let refused = local_command(&pod(container), Path::new("/tmp/t")).unwrap_err();
        assert_eq!(refused.reason, "CommandRequired");
        assert!(
            refused.message.contains("explicit command"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn literal_env_is_passed_and_value_from_is_reported() {
        let mut container = shell("true");
        container.env = Some(vec![
            EnvVar {
                name: "GREETING".into(),
                value: Some("hi".into()),
                value_from: None,
            },
            EnvVar {
                name: "TOKEN".into(),
                value: None,
                value_from: Some(EnvVarSource::default()),
            },
        ]);
        let command = local_command(&pod(container), Path::new("/tmp/t")).unwrap();
        assert!(command.env.contains(&("GREETING".into(), "hi".into())));
        assert!(!command.env.iter().any(|(k, _)| k == "TOKEN"));
        assert_eq!(command.unresolved_env, ["TOKEN"]);
    }

    #[test]
    fn termination_messages_are_trimmed_and_cut_at_4096_bytes() {
        assert_eq!(termination_message(b"  ok\n"), "ok");
        let long = "é".repeat(3000); // 6000 bytes
        let cut = termination_message(long.as_bytes());
        assert!(cut.len() <= 4096 && cut.len() >= 4095, "{}", cut.len());
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_log_tail_keeps_the_last_bytes() {
        let tail = Mutex::new((0..100).map(|i| format!("line {i}")).collect::<VecDeque<_>>());
        let text = log_tail(&tail);
        assert!(text.len() <= FALLBACK_LOG_BYTES);
        assert!(text.ends_with("line 99"));
    }
}
