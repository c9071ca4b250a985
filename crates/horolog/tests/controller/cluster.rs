//! A cluster for controller tests: the in-process API server, the operator running against it
//! on a tokio clock (tests run under `start_paused`, so waiting is instant), and a stand-in
//! kubelet that moves Pods through their phases.
// Each test binary (controller, exactly_once, controls, ...) uses its own part of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use horolog::api::{JobRun, JobRunPhase, Schedule};
use horolog::clock::{Clock, TokioClock};
use horolog::controller::{self, ControllerConfig};
use horolog_memserver::{ApiServer, ChangeKind};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::fixtures::t0;

/// The namespace tests work in.
pub const NS: &str = "default";
/// The User-Agent of the operator's requests.
pub const OPERATOR: &str = "horolog";
/// The User-Agent of the test's own requests (the kubelet stand-in's included).
pub const TEST: &str = "test";

/// A client of `server` whose requests carry `user_agent` and whose writes are logged, as
/// `METHOD path`, in `writes`.
fn logging_client(server: &ApiServer, user_agent: &'static str, writes: &Arc<Mutex<Vec<String>>>) -> Client {
    let log = writes.clone();
    let service = tower::ServiceBuilder::new()
        .map_request(move |mut request: http::Request<kube::client::Body>| {
            if request.method() != http::Method::GET {
                let write = format!("{} {}", request.method(), request.uri().path());
                log.lock().unwrap_or_else(|p| p.into_inner()).push(write);
            }
            request.headers_mut().insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static(user_agent),
            );
            request
        })
        .service(server.clone());
    Client::new(service, NS)
}

/// The API server, a client, and the operator (which can be stopped and started again).
pub struct Cluster {
    /// The in-memory API server.
    pub server: ApiServer,
    /// The test's client of it (User-Agent `test`), which logs every write it sends.
    pub client: Client,
    /// The operator's client (User-Agent `horolog`), which logs every write it sends.
    operator_client: Client,
    /// `METHOD path` of every request other than GET sent through `client`, oldest first
    /// (the server's resourceVersion would miss a write that changes nothing).
    writes: Arc<Mutex<Vec<String>>>,
    /// The clock of the server and the operator.
    pub clock: TokioClock,
    operator: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    /// How the operator runs (`start_operator` uses it).
    pub config: ControllerConfig,
}

impl Cluster {
    /// Every Pod the API server creates from now on, with the instant (on the server's clock)
    /// it was created. The change feed is read by a task of the test's runtime: under tokio's
    /// paused clock, time does not move while that task has a change to read, so the instant
    /// is exact.
    pub fn record_pod_creations(&self) -> Arc<Mutex<BTreeMap<String, DateTime<Utc>>>> {
        let created = Arc::new(Mutex::new(BTreeMap::new()));
        let mut changes = self.server.subscribe_changes();
        let (clock, log) = (self.clock.clone(), created.clone());
        tokio::spawn(async move {
            while let Ok(change) = changes.recv().await {
                if change.kind != ChangeKind::Added || change.resource.plural != "pods" {
                    continue;
                }
                let name = change.object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name, clock.now());
            }
        });
        created
    }

    /// A server at `t0()` with the operator running with its default configuration.
    pub async fn start() -> Cluster {
        Cluster::start_with(|_| {}).await
    }

    /// A server at `t0()` with the operator running, configured by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut ControllerConfig)) -> Cluster {
        let mut cluster = Cluster::without_operator();
        configure(&mut cluster.config);
        cluster.start_operator();
        cluster.settle().await;
        cluster
    }

    /// A server at `t0()`, operator not started.
    pub fn without_operator() -> Cluster {
        let clock = TokioClock::starting_at(t0());
        let server = ApiServer::with_crds(Arc::new(clock.clone()), &horolog::crd::crds());
        let writes = Arc::new(Mutex::new(Vec::new()));
        Cluster {
            client: logging_client(&server, TEST, &writes),
            operator_client: logging_client(&server, OPERATOR, &writes),
            server,
            writes,
            clock,
            operator: None,
            config: ControllerConfig::default().in_namespace(NS),
        }
    }

    /// Writes the operator sent (any resource, any response code), as the API server counts
    /// them: what a run costs.
    pub fn operator_writes(&self) -> u64 {
        self.server.write_count(Some(OPERATOR), None)
    }

    /// How many requests the API server answered with `code`, from the operator.
    pub fn operator_responses(&self, code: u16) -> u64 {
        self.server
            .request_counts()
            .iter()
            .filter(|(key, _)| key.client == OPERATOR && key.code == code)
            .map(|(_, n)| n)
            .sum()
    }

    /// Starts the operator (as a new process would: empty caches, state from the server).
    pub fn start_operator(&mut self) {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = self.config.clone();
        let run = controller::run(
            self.operator_client.clone(),
            config,
            Arc::new(self.clock.clone()),
            async {
                let _ = stopped.await;
            },
        );
        let handle = tokio::spawn(async move {
            if let Err(err) = run.await {
                panic!("operator failed: {err}");
            }
        });
        self.operator = Some((stop, handle));
    }

    /// Stops the operator and waits until it has.
    pub async fn stop_operator(&mut self) {
        if let Some((stop, handle)) = self.operator.take() {
            let _ = stop.send(());
            // An operator that died before it was asked to stop fails the test here, with its
            // own panic, instead of leaving the rest of the test to run without it.
            if let Err(err) = handle.await
                && err.is_panic()
            {
                std::panic::resume_unwind(err.into_panic());
            }
        }
    }

    /// Kills the operator as `kill -9` would: whatever it was doing stops between two calls.
    pub async fn kill_operator(&mut self) {
        if let Some((_stop, handle)) = self.operator.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// True while an operator is running (started and neither stopped nor killed).
    pub fn operator_running(&self) -> bool {
        self.operator.is_some()
    }

    /// Every write (`METHOD path`) sent so far, by the operator and by the test.
    pub fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Lets the operator react to everything that happened (a little tokio time passes).
    pub async fn settle(&self) {
        for _ in 0..5 {
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }

    /// Moves time forward by `secs` seconds, letting the operator do what falls due meanwhile.
    pub async fn advance(&self, secs: u64) {
        tokio::time::sleep(StdDuration::from_secs(secs)).await;
        self.settle().await;
    }

    /// Moves time forward to `to` (`t0()` plus seconds), letting the operator do what falls due.
    pub async fn advance_to(&self, to: chrono::DateTime<chrono::Utc>) {
        let now = horolog::clock::Clock::now(&self.clock);
        if let Ok(wait) = (to - now).to_std() {
            tokio::time::sleep(wait).await;
        }
        self.settle().await;
    }

    /// Creates a Schedule.
    pub async fn apply(&self, schedule: Schedule) {
        let api: Api<Schedule> = Api::namespaced(self.client.clone(), NS);
        api.create(&PostParams::default(), &schedule)
            .await
            .unwrap_or_else(|err| panic!("create schedule: {err}"));
        self.settle().await;
    }

    /// Creates a JobRun.
    pub async fn create_run(&self, run: JobRun) {
        let api: Api<JobRun> = Api::namespaced(self.client.clone(), NS);
        api.create(&PostParams::default(), &run)
            .await
            .unwrap_or_else(|err| panic!("create jobrun: {err}"));
        self.settle().await;
    }

    /// Merge-patches a Schedule's spec or metadata.
    pub async fn patch_schedule(&self, name: &str, patch: serde_json::Value) {
        let api: Api<Schedule> = Api::namespaced(self.client.clone(), NS);
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|err| panic!("patch schedule: {err}"));
        self.settle().await;
    }

    /// Merge-patches a JobRun's spec or metadata (e.g. the cancel annotation).
    pub async fn patch_run(&self, name: &str, patch: serde_json::Value) {
        let api: Api<JobRun> = Api::namespaced(self.client.clone(), NS);
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|err| panic!("patch jobrun: {err}"));
        self.settle().await;
    }

    /// Creates a Pod (as an operator that crashed right after creating it would have).
    pub async fn create_pod(&self, pod: Pod) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        api.create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|err| panic!("create pod: {err}"));
        self.settle().await;
    }

    /// Deletes a Schedule.
    pub async fn delete_schedule(&self, name: &str) {
        let api: Api<Schedule> = Api::namespaced(self.client.clone(), NS);
        api.delete(name, &DeleteParams::background())
            .await
            .unwrap_or_else(|err| panic!("delete schedule: {err}"));
        self.settle().await;
    }

    /// A Schedule as stored now.
    pub async fn schedule(&self, name: &str) -> Schedule {
        let api: Api<Schedule> = Api::namespaced(self.client.clone(), NS);
        api.get(name)
            .await
            .unwrap_or_else(|err| panic!("get schedule {name}: {err}"))
    }

    /// Every JobRun, by fire time.
    pub async fn runs(&self) -> Vec<JobRun> {
        let api: Api<JobRun> = Api::namespaced(self.client.clone(), NS);
        let mut runs = api
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|err| panic!("list jobruns: {err}"))
            .items;
        runs.sort_by_key(|run| (run.spec.fire_time, run.name_any()));
        runs
    }

    /// The JobRuns of `schedule`, by fire time.
    pub async fn runs_of(&self, schedule: &str) -> Vec<JobRun> {
        self.runs()
            .await
            .into_iter()
            .filter(|r| r.spec.schedule_name.as_deref() == Some(schedule))
            .collect()
    }

    /// A JobRun as stored now.
    pub async fn run(&self, name: &str) -> Option<JobRun> {
        let api: Api<JobRun> = Api::namespaced(self.client.clone(), NS);
        api.get_opt(name)
            .await
            .unwrap_or_else(|err| panic!("get jobrun {name}: {err}"))
    }

    /// The fire times of `schedule`'s JobRuns, in seconds after `t0()`.
    pub async fn fire_secs(&self, schedule: &str) -> Vec<i64> {
        self.runs_of(schedule)
            .await
            .iter()
            .filter_map(|r| r.spec.fire_time)
            .map(|t| (t - t0()).num_seconds())
            .collect()
    }

    /// The phase of each of `schedule`'s JobRuns, by fire time.
    pub async fn phases(&self, schedule: &str) -> Vec<JobRunPhase> {
        self.runs_of(schedule)
            .await
            .iter()
            .map(|r| r.status.as_ref().and_then(|s| s.phase).unwrap_or_default())
            .collect()
    }

    /// Every Pod, by name.
    pub async fn pods(&self) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        let mut pods = api
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|err| panic!("list pods: {err}"))
            .items;
        pods.sort_by_key(|p| p.name_any());
        pods
    }

    /// Names of every Pod.
    pub async fn pod_names(&self) -> Vec<String> {
        self.pods().await.iter().map(|p| p.name_any()).collect()
    }

    /// The kubelet stand-in: the Pod's container runs.
    pub async fn pod_running(&self, pod: &str) {
        self.pod_status(
            pod,
            json!({
                "phase": "Running",
                "containerStatuses": [container_status(json!({"running": {"startedAt": self.now_text()}}))],
            }),
        )
        .await;
    }

    /// The kubelet stand-in: the Pod's container exits with `code`, leaving `message` in its
    /// termination log.
    pub async fn pod_exits(&self, pod: &str, code: i32, message: &str) {
        self.pod_status(pod, exit_status(code, message, &self.now_text()))
            .await;
    }

    /// [`Cluster::pod_exits`] for a Pod that may be gone by now: true when it was there.
    pub async fn try_pod_exits(&self, pod: &str, code: i32, message: &str) -> bool {
        let written = self
            .patch_pod_status(pod, exit_status(code, message, &self.now_text()))
            .await;
        self.settle().await;
        written.is_ok()
    }

    /// Deletes a Pod (as a user or an eviction would).
    pub async fn delete_pod(&self, pod: &str) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        api.delete(pod, &DeleteParams::default())
            .await
            .unwrap_or_else(|err| panic!("delete pod: {err}"));
        self.settle().await;
    }

    async fn pod_status(&self, pod: &str, status: serde_json::Value) {
        self.patch_pod_status(pod, status)
            .await
            .unwrap_or_else(|err| panic!("patch pod {pod}: {err}"));
        self.settle().await;
    }

    async fn patch_pod_status(&self, pod: &str, status: serde_json::Value) -> kube::Result<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        api.patch_status(
            pod,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
    }

    fn now_text(&self) -> String {
        horolog::clock::Clock::now(&self.clock)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// `(reason, note)` of every Event about the object named `name`, oldest first.
    pub async fn events_of(&self, name: &str) -> Vec<(String, String)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), NS);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|err| panic!("list events: {err}"))
            .items;
        events.sort_by_key(|e| {
            e.metadata
                .resource_version
                .as_ref()
                .and_then(|v| v.parse::<u64>().ok())
        });
        events
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    /// The reasons of every Event about `name`.
    pub async fn reasons_of(&self, name: &str) -> Vec<String> {
        self.events_of(name)
            .await
            .into_iter()
            .map(|(reason, _)| reason)
            .collect()
    }
}

/// The status of a Pod whose one container exited with `code` at `now`.
fn exit_status(code: i32, message: &str, now: &str) -> serde_json::Value {
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    json!({
        "phase": phase,
        "containerStatuses": [container_status(json!({"terminated": {
            "exitCode": code,
            "reason": if code == 0 { "Completed" } else { "Error" },
            "message": message,
            "finishedAt": now,
        }}))],
    })
}

fn container_status(state: serde_json::Value) -> serde_json::Value {
    json!({"name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0, "state": state})
}
