//! The e2e harness: the cluster client, CRD installation, the test namespace, the in-process
//! operator, bounded waits, and a dump of what the namespace holds when a test fails.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use horolog::api::{Backfill, JobRun, Schedule, Task};
use horolog::clock::SystemClock;
use horolog::controller::{self, ControllerConfig, EventPolicy};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde::de::Deserialize;
use tokio::sync::{OnceCell, oneshot};
use tokio::task::JoinHandle;

/// The field manager of everything the tests apply.
pub const MANAGER: &str = "horolog-e2e";

/// How often waits poll.
const POLL: Duration = Duration::from_millis(500);

/// What a test needs besides the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Only the API server (schema, CEL, printer columns).
    ApiServer,
    /// A horolog operator acting on the test namespace.
    Operator,
}

/// Where the operator comes from (`HOROLOG_E2E_OPERATOR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OperatorMode {
    /// The default: `controller::run` in a tokio task of the test, scoped to its namespace.
    InProcess,
    /// `HOROLOG_E2E_OPERATOR=external`: an operator installed in the cluster is expected.
    External,
}

fn operator_mode() -> OperatorMode {
    match std::env::var("HOROLOG_E2E_OPERATOR").as_deref() {
        Ok("external") => OperatorMode::External,
        Ok("" | "in-process") | Err(_) => OperatorMode::InProcess,
        Ok(other) => panic!("HOROLOG_E2E_OPERATOR={other:?}: expected `external` or `in-process`"),
    }
}

/// One test's view of the cluster: a client and its own namespace.
#[derive(Clone)]
pub struct Env {
    pub client: Client,
    pub ns: String,
    /// Set when the in-process operator stopped on its own (its error, or "returned").
    operator_exit: Arc<Mutex<Option<String>>>,
    /// The in-process operator while it runs.
    operator: Arc<Mutex<Option<Operator>>>,
    /// How the in-process operator runs; `None` when the test starts none (it needs only the
    /// API server, or `HOROLOG_E2E_OPERATOR=external`).
    operator_config: Option<ControllerConfig>,
}

impl Env {
    pub fn schedules(&self) -> Api<Schedule> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn jobruns(&self) -> Api<JobRun> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn tasks(&self) -> Api<Task> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn backfills(&self) -> Api<Backfill> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn calendars(&self) -> Api<horolog::api::Calendar> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// True when this test runs its own operator in-process (so it can stop and start it).
    pub fn operator_in_process(&self) -> bool {
        self.operator_config.is_some()
    }

    /// Stops the in-process operator and waits until it has (as a process that exits would:
    /// nothing of it is left). `false` when there is none to stop.
    pub async fn stop_operator(&self) -> bool {
        let operator = self
            .operator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(operator) = operator else {
            return false;
        };
        operator.stop().await;
        // It stopped because it was told to: waits go on.
        *self.operator_exit.lock().unwrap_or_else(PoisonError::into_inner) = None;
        true
    }

    /// Starts the in-process operator again (a new process: empty caches, state from the API
    /// server). `false` when this test has no in-process operator.
    pub fn start_operator(&self) -> bool {
        let Some(config) = &self.operator_config else {
            return false;
        };
        let mut slot = self.operator.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(Operator::start(self, config.clone()));
        }
        true
    }

    pub fn crds(&self) -> Api<CustomResourceDefinition> {
        Api::all(self.client.clone())
    }

    /// Polls `check` every 500 ms until it returns `Ok`, for at most `within`. `Err` carries
    /// what was seen last, printed (with the namespace's state) when the wait times out.
    pub async fn eventually<T, F, Fut>(&self, within: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = match check().await {
                Ok(value) => return value,
                Err(seen) => seen,
            };
            if let Some(exit) = self.operator_exit() {
                panic!(
                    "the in-process operator stopped ({exit}) while waiting for {what}; last seen: {seen}"
                );
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out after {within:?} waiting for {what}; last seen: {seen}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn operator_exit(&self) -> Option<String> {
        self.operator_exit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The Events whose `regarding` object is `name`, oldest first.
    pub async fn events_of(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .map(|list| list.items)
            .unwrap_or_else(|err| panic!("listing events in {}: {err}", self.ns))
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        events.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        events
    }
}

/// One line per Event: `type reason: note`.
pub fn describe_events(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events".into();
    }
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.as_deref().unwrap_or("?"),
                e.reason.as_deref().unwrap_or("?"),
                e.note.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Runs `body` against the e2e cluster in namespace `horolog-e2e-<test>`, or prints why it
/// skips. Around it: the CRDs applied and Established, a fresh namespace, the in-process
/// operator when `needs` says so (and `HOROLOG_E2E_OPERATOR` is not `external`), configured
/// as [`operator_config`] says. Afterwards, pass or fail, the operator is stopped and the
/// namespace deleted; on failure the namespace's Schedules, JobRuns, Pods and Events are
/// printed first.
pub async fn e2e<F, Fut>(test: &str, needs: Needs, body: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    e2e_configured(test, needs, |_| {}, body).await;
}

/// The in-process operator's configuration: `horolog run`'s defaults (as
/// `ControllerConfig::default()` has them), watching only the test namespace, except that
/// every Event is published (`--events all`), since some tests look for the per-run Normal
/// Events (Fired, PodCreated, Succeeded). An external operator must run with `--events all`
/// for those checks too.
pub fn operator_config(ns: &str) -> ControllerConfig {
    let mut config = ControllerConfig::default().in_namespace(ns);
    config.events = EventPolicy::All;
    config
}

/// [`e2e`] with the in-process operator's configuration changed by `configure` (e.g.
/// `job_executor = true`). With `HOROLOG_E2E_OPERATOR=external` the installed operator must
/// be configured alike; the test says so in its output.
pub async fn e2e_configured<F, Fut>(
    test: &str,
    needs: Needs,
    configure: impl FnOnce(&mut ControllerConfig),
    body: F,
) where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(client) = cluster_client(test).await else {
        return;
    };
    let mode = operator_mode();
    init_logging();
    install_crds(&client).await;
    let ns = format!("horolog-e2e-{test}");
    fresh_namespace(&client, &ns).await;
    let operator_config = match (needs, mode) {
        (Needs::Operator, OperatorMode::InProcess) => {
            let mut config = operator_config(&ns);
            configure(&mut config);
            Some(config)
        }
        _ => None,
    };
    let env = Env {
        client: client.clone(),
        ns: ns.clone(),
        operator_exit: Arc::new(Mutex::new(None)),
        operator: Arc::new(Mutex::new(None)),
        operator_config,
    };
    // From here on the namespace exists: whatever fails, it is cleaned up below.
    let outcome = AssertUnwindSafe(async {
        wait_until_served(&env).await;
        match (needs, mode) {
            (Needs::Operator, OperatorMode::InProcess) => {
                env.start_operator();
            }
            (Needs::Operator, OperatorMode::External) => {
                println!(
                    "{test}: expecting an installed horolog operator to act on namespace {ns} \
                     (configured as this test's in-process operator would be: see its doc comment)"
                );
            }
            (Needs::ApiServer, _) => {}
        }
        body(env.clone()).await;
    })
    .catch_unwind()
    .await;
    if outcome.is_err() {
        dump(&env).await;
    }
    env.stop_operator().await;
    if std::env::var_os("HOROLOG_E2E_KEEP_NAMESPACE").is_some() {
        println!("{test}: keeping namespace {ns} (HOROLOG_E2E_KEEP_NAMESPACE is set)");
    } else if let Err(err) = Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::background())
        .await
    {
        println!("{test}: could not delete namespace {ns}: {err}");
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A client for the e2e cluster, or `None` (with the reason printed) when there is none.
async fn cluster_client(test: &str) -> Option<Client> {
    let Some(path) = std::env::var_os("HOROLOG_E2E_KUBECONFIG").filter(|p| !p.is_empty()) else {
        // CI runs the suite against the sandbox with HOROLOG_E2E_REQUIRE set, so a rig that
        // lost its kubeconfig fails instead of passing 30 empty tests.
        assert!(
            std::env::var_os("HOROLOG_E2E_REQUIRE").is_none(),
            "{test}: HOROLOG_E2E_REQUIRE is set but HOROLOG_E2E_KUBECONFIG is not"
        );
        println!(
            "skipping {test}: HOROLOG_E2E_KUBECONFIG is not set (point it at a kubeconfig of a \
             Kubernetes cluster to run the end-to-end tests)"
        );
        return None;
    };
    let path = std::path::PathBuf::from(path);
    let kubeconfig =
        Kubeconfig::read_from(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|err| panic!("kubeconfig {}: {err}", path.display()));
    Some(Client::try_from(config).unwrap_or_else(|err| panic!("client: {err}")))
}

/// Operator logs go to the test's captured output (shown for failing tests);
/// `HOROLOG_E2E_LOG` sets the filter (default `horolog=info`).
fn init_logging() {
    let filter = std::env::var("HOROLOG_E2E_LOG").unwrap_or_else(|_| "horolog=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// The generated CRDs (`horolog::crd::crds_yaml()`, the content of crds/horolog.yaml).
pub fn generated_crds() -> Vec<CustomResourceDefinition> {
    let yaml = horolog::crd::crds_yaml().unwrap_or_else(|err| panic!("generating the CRDs: {err}"));
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|doc| {
            CustomResourceDefinition::deserialize(doc)
                .unwrap_or_else(|err| panic!("a generated CRD is not a CustomResourceDefinition: {err}"))
        })
        .collect()
}

/// Server-side applies the generated CRDs (field manager `horolog-e2e`, forced, so the cluster
/// serves the schema of this checkout) and waits until each is Established.
async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(MANAGER).force();
    let crds = generated_crds();
    for crd in &crds {
        let name = crd.name_any();
        let mut crd = crd.clone();
        crd.metadata.managed_fields = None;
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|err| panic!("the API server rejected CRD {name}: {err}"));
    }
    for crd in &crds {
        let name = crd.name_any();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let current = api
                .get(&name)
                .await
                .unwrap_or_else(|err| panic!("reading CRD {name}: {err}"));
            let conditions = current.status.and_then(|s| s.conditions).unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let seen: Vec<String> = conditions
                    .iter()
                    .map(|c| {
                        format!(
                            "{}={} ({}: {})",
                            c.type_,
                            c.status,
                            c.reason.as_deref().unwrap_or(""),
                            c.message.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                panic!("CRD {name} is not Established after 60s; conditions: {seen:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Creates the namespace, first waiting (bounded) for a leftover of an earlier run to go, so
/// no object of that run can confuse this one.
async fn fresh_namespace(client: &Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match api.get_opt(ns).await {
            Ok(None) => break,
            Ok(Some(existing)) => {
                if existing.metadata.deletion_timestamp.is_none() {
                    println!("deleting namespace {ns}, left over from an earlier run");
                    let _ = api.delete(ns, &DeleteParams::background()).await;
                }
                if tokio::time::Instant::now() >= deadline {
                    panic!(
                        "namespace {ns}, left over from an earlier run, is still there after 120s: {:?}",
                        existing.status
                    );
                }
            }
            Err(err) => panic!("reading namespace {ns}: {err}"),
        }
        tokio::time::sleep(POLL).await;
    }
    let namespace = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"app.kubernetes.io/created-by": MANAGER}},
    });
    api.patch(ns, &PatchParams::apply(MANAGER), &Patch::Apply(&namespace))
        .await
        .unwrap_or_else(|err| panic!("creating namespace {ns}: {err}"));
}

/// Established can precede the new resources being served everywhere: lists them until they are.
async fn wait_until_served(env: &Env) {
    env.eventually(
        Duration::from_secs(60),
        "Schedules and JobRuns to be served",
        || async {
            let params = ListParams::default().limit(1);
            match (
                env.schedules().list(&params).await,
                env.jobruns().list(&params).await,
            ) {
                (Ok(_), Ok(_)) => Ok(()),
                (Err(err), _) | (_, Err(err)) => Err(err.to_string()),
            }
        },
    )
    .await;
}

/// `controller::run` in a tokio task, watching only the test's namespace.
struct Operator {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Operator {
    fn start(env: &Env, config: ControllerConfig) -> Operator {
        let (shutdown, stop) = oneshot::channel::<()>();
        let run = controller::run(env.client.clone(), config, Arc::new(SystemClock), async {
            let _ = stop.await;
        });
        let exit = env.operator_exit.clone();
        let task = tokio::spawn(async move {
            let outcome = match run.await {
                Ok(()) => "returned".to_string(),
                Err(err) => format!("failed: {err}"),
            };
            *exit.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        });
        Operator { shutdown, task }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(10), &mut task)
            .await
            .is_err()
        {
            println!("the in-process operator did not stop within 10s; aborting it");
            task.abort();
        }
    }
}

/// The image of the probes (and of the tests' pods).
pub const PROBE_IMAGE: &str = "busybox:1.37";

/// Whether pods run to completion on this cluster, found out once per test process.
static PODS_RUN: OnceCell<Result<String, String>> = OnceCell::const_new();
/// Whether kube-controller-manager's job controller acts on Jobs, found out once per process.
static JOBS_RUN: OnceCell<Result<(), String>> = OnceCell::const_new();

/// `Ok(what ran it)` when a pod (busybox, no tolerations or selectors, as the operator's pods
/// are) runs to completion on this cluster; `Err(why not)` otherwise. Found out once per test
/// process by a probe Pod in the asking test's namespace, given 120 s (the image may need
/// pulling); immediate when the cluster lists no Node at all. A probe, not a look at the Nodes:
/// a node that binds pods itself may carry taints, and a Ready untainted node may still be
/// unable to run anything.
pub async fn pods_run(env: &Env) -> Result<String, String> {
    PODS_RUN.get_or_init(|| probe_pods(env.clone())).await.clone()
}

async fn probe_pods(env: Env) -> Result<String, String> {
    let nodes: Api<Node> = Api::all(env.client.clone());
    // No Node at all: nothing to wait for. Nodes that cannot be listed (RBAC): the probe tells.
    if let Ok(list) = nodes.list(&ListParams::default().limit(1)).await
        && list.items.is_empty()
    {
        return Err("the cluster has no Node".into());
    }
    let name = "e2e-probe";
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": PROBE_IMAGE, "command": ["sh", "-c", "echo ok > /dev/termination-log"]}],
        },
    }))
    .map_err(|err| format!("probe pod: {err}"))?;
    if let Err(err) = env.pods().create(&PostParams::default(), &pod).await {
        return Err(format!("cannot create a probe pod ({err})"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let outcome = loop {
        let seen = match env.pods().get(name).await {
            Ok(pod) => {
                let status = pod.status.clone().unwrap_or_default();
                let phase = status.phase.clone().unwrap_or_default();
                let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
                match phase.as_str() {
                    "Succeeded" => break Ok(format!("node {}", node.unwrap_or_default())),
                    "Failed" => break Err(format!("a probe pod failed on node {node:?}: {status:?}")),
                    _ => format!(
                        "phase {phase:?} on node {node:?}, conditions {:?}",
                        status.conditions
                    ),
                }
            }
            Err(err) => format!("{err}"),
        };
        if tokio::time::Instant::now() >= deadline {
            break Err(format!(
                "a probe pod did not run to completion within 120s (last seen: {seen})"
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    let _ = env.pods().delete(name, &DeleteParams::default()).await;
    outcome
}

/// `Ok` when kube-controller-manager's job controller acts on batch/v1 Jobs (a probe Job
/// gets a startTime or pods within 60 s), found out once per test process.
pub async fn job_controller_runs(env: &Env) -> Result<(), String> {
    JOBS_RUN.get_or_init(|| probe_jobs(env.clone())).await.clone()
}

async fn probe_jobs(env: Env) -> Result<(), String> {
    let name = "e2e-job-probe";
    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": PROBE_IMAGE, "command": ["true"]}],
            }},
        },
    }))
    .map_err(|err| format!("probe job: {err}"))?;
    if let Err(err) = env.jobs().create(&PostParams::default(), &job).await {
        return Err(format!("cannot create a probe Job ({err})"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let outcome = loop {
        let seen = match env.jobs().get(name).await {
            Ok(job) => {
                let status = job.status.clone().unwrap_or_default();
                if status.start_time.is_some()
                    || status.active.unwrap_or(0) + status.succeeded.unwrap_or(0) + status.failed.unwrap_or(0)
                        > 0
                {
                    break Ok(());
                }
                format!("{status:?}")
            }
            Err(err) => format!("{err}"),
        };
        if tokio::time::Instant::now() >= deadline {
            break Err(format!(
                "no job controller acted on a probe Job within 60s (its status: {seen})"
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    let _ = env.jobs().delete(name, &DeleteParams::background()).await;
    outcome
}

/// Prints what the namespace holds: Schedules (conditions, fire times), JobRuns (phase,
/// reason), Tasks, Calendars, Jobs, Pods (phase, container states) and Events, and whether the operator stopped.
pub async fn dump(env: &Env) {
    let mut out = format!("---- state of namespace {} at failure ----\n", env.ns);
    if let Some(exit) = env.operator_exit() {
        out.push_str(&format!("in-process operator: stopped ({exit})\n"));
    }
    let all = ListParams::default();
    match env.schedules().list(&all).await {
        Ok(list) => {
            for s in list.items {
                let status = s.status.clone().unwrap_or_default();
                let conditions: Vec<String> = status
                    .conditions
                    .iter()
                    .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
                    .collect();
                out.push_str(&format!(
                    "Schedule {}: paused={} trigger={:?} next={:?} last={:?} upcoming={} active={} \
                     conditions={conditions:?}\n",
                    s.name_any(),
                    s.spec.paused,
                    status.trigger,
                    status.next_fire_time,
                    status.last_fire_time,
                    status.upcoming_fire_times.len(),
                    status.active_count,
                ));
            }
        }
        Err(err) => out.push_str(&format!("Schedules: {err}\n")),
    }
    match env.jobruns().list(&all).await {
        Ok(list) => {
            for r in list.items {
                let status = r.status.clone().unwrap_or_default();
                out.push_str(&format!(
                    "JobRun {}: phase={:?} reason={:?} message={:?} pod={:?} exit={:?} result={:?}\n",
                    r.name_any(),
                    status.phase,
                    status.reason,
                    status.message,
                    status.pod_name,
                    status.exit_code,
                    status.result,
                ));
            }
        }
        Err(err) => out.push_str(&format!("JobRuns: {err}\n")),
    }
    match env.tasks().list(&all).await {
        Ok(list) => {
            for t in list.items {
                out.push_str(&format!("Task {}: status={:?}\n", t.name_any(), t.status));
            }
        }
        Err(err) => out.push_str(&format!("Tasks: {err}\n")),
    }
    match env.calendars().list(&all).await {
        Ok(list) => {
            for c in list.items {
                out.push_str(&format!(
                    "Calendar {}: spec={:?} status={:?}\n",
                    c.name_any(),
                    c.spec,
                    c.status
                ));
            }
        }
        Err(err) => out.push_str(&format!("Calendars: {err}\n")),
    }
    match env.jobs().list(&all).await {
        Ok(list) => {
            for j in list.items {
                out.push_str(&format!("Job {}: status={:?}\n", j.name_any(), j.status));
            }
        }
        Err(err) => out.push_str(&format!("Jobs: {err}\n")),
    }
    match env.pods().list(&all).await {
        Ok(list) => {
            for p in list.items {
                let status = p.status.clone().unwrap_or_default();
                let conditions: Vec<String> = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .map(|c| format!("{}={} {}", c.type_, c.status, c.reason.as_deref().unwrap_or("")))
                    .collect();
                let containers: Vec<String> = status
                    .container_statuses
                    .unwrap_or_default()
                    .iter()
                    .map(|c| format!("{}: {:?}", c.name, c.state))
                    .collect();
                out.push_str(&format!(
                    "Pod {}: phase={:?} node={:?} conditions={conditions:?} containers={containers:?}\n",
                    p.name_any(),
                    status.phase,
                    p.spec.as_ref().and_then(|s| s.node_name.clone()),
                ));
            }
        }
        Err(err) => out.push_str(&format!("Pods: {err}\n")),
    }
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    match events.list(&all).await {
        Ok(list) => {
            for e in list.items {
                let regarding = e.regarding.clone().unwrap_or_default();
                out.push_str(&format!(
                    "Event {}/{}: {} {}: {}\n",
                    regarding.kind.as_deref().unwrap_or("?"),
                    regarding.name.as_deref().unwrap_or("?"),
                    e.type_.as_deref().unwrap_or("?"),
                    e.reason.as_deref().unwrap_or("?"),
                    e.note.as_deref().unwrap_or(""),
                ));
            }
        }
        Err(err) => out.push_str(&format!("Events: {err}\n")),
    }
    out.push_str("---- end of state ----");
    println!("{out}");
}
