//! `horolog-dev sandbox` over a real socket: a kube client built from the kubeconfig it writes talks
//! plain HTTP to it, its simulated kubelet runs Pods, and the unchanged controllers fire a
//! Schedule through it. Real (short) time; every wait is on a watched condition with a timeout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use horolog::api::{JobRun, JobRunPhase, Schedule};
use horolog::clock::SystemClock;
use horolog::controller::{self, ControllerConfig};
use horolog_dev::sandbox::{Kubelet, Sandbox, SandboxArgs};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::oneshot;

/// How long any one condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn kubeconfig_path(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "horolog-sandbox-test-{}-{test}.kubeconfig",
        std::process::id()
    ))
}

/// Starts a sandbox on a free loopback port; the client comes from the kubeconfig it wrote.
async fn start(test: &str, kubelet: Kubelet) -> (Client, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let args = SandboxArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kubeconfig: kubeconfig_path(test),
        kubelet,
        pod_run_time: "200ms".parse().expect("duration"),
        write_latency: "0s".parse().expect("duration"),
    };
    let sandbox = Sandbox::bind(&args).await.expect("sandbox binds");
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig).expect("the written kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    assert_eq!(
        config.cluster_url.to_string(),
        format!("http://{}/", sandbox.addr()),
        "the kubeconfig points at the bound port"
    );
    let client = Client::try_from(config).expect("client");
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let serving = tokio::spawn(sandbox.serve(async move {
        let _ = stop_rx.await;
    }));
    (client, stop_tx, serving)
}

/// Waits until an object of `api` satisfies `done`.
async fn wait_for<K>(api: Api<K>, what: &str, done: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let mut found = watcher(api, watcher::Config::default())
        .applied_objects()
        .try_filter(|object| futures::future::ready(done(object)))
        .boxed_local();
    match tokio::time::timeout(PATIENCE, found.next()).await {
        Ok(Some(Ok(object))) => object,
        Ok(other) => panic!("watching for {what} ended: {other:?}"),
        Err(_) => panic!("no {what} within {PATIENCE:?}"),
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

#[tokio::test]
async fn the_simulated_kubelet_runs_a_pod_to_success_over_http() {
    let (client, stop, serving) = start("pod", Kubelet::Simulate).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "hello"},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]},
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create over HTTP");

    let done = wait_for(pods.clone(), "a Succeeded pod", |p| phase(p) == "Succeeded").await;
    let status = done.status.expect("status");
    let container = &status.container_statuses.expect("container statuses")[0];
    assert_eq!(container.name, "main");
    assert_eq!(container.image, "busybox:1.36");
    let terminated = container
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated state");
    assert_eq!(terminated.exit_code, 0);
    assert!(
        status.start_time.is_some(),
        "Running was recorded first, with its start time"
    );

    // /metrics counts the writes as a real API server does, the kubelet's under its own name.
    let request = http::Request::get("/metrics").body(Vec::new()).expect("request");
    let text = client.request_text(request).await.expect("GET /metrics");
    let counts = horolog_dev::load::WriteCounts::from_api_server(&text);
    assert_eq!(counts.0.get("pods"), Some(&1.0), "one create:\n{text}");
    assert!(
        counts.0.get("pods/status").is_some_and(|&n| n >= 2.0),
        "Running and Succeeded written:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("client=\"kubelet\"") && l.contains("subresource=\"status\"")),
        "{text}"
    );

    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, serving)
        .await
        .expect("the sandbox stops when asked")
        .expect("no panic");
    let _ = std::fs::remove_file(kubeconfig_path("pod"));
}

#[tokio::test]
async fn the_operator_fires_a_schedule_through_the_sandbox() {
    let (client, stop, serving) = start("operator", Kubelet::Simulate).await;
    let (stop_controllers, controllers_stopped) = oneshot::channel::<()>();
    let controllers = tokio::spawn(controller::run(
        client.clone(),
        ControllerConfig::default(),
        Arc::new(SystemClock),
        async move {
            let _ = controllers_stopped.await;
        },
    ));
    let schedule: Schedule = serde_json::from_value(json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": "tick", "namespace": "default"},
        "spec": {
            "trigger": {"interval": "1s"},
            "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
            }}}},
        },
    }))
    .expect("schedule");
    Api::<Schedule>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &schedule)
        .await
        .expect("create the Schedule");

    let runs: Api<JobRun> = Api::namespaced(client.clone(), "default");
    let run = wait_for(runs, "a Succeeded JobRun", |r: &JobRun| {
        r.status.as_ref().and_then(|s| s.phase) == Some(JobRunPhase::Succeeded)
    })
    .await;
    assert_eq!(run.spec.schedule_name.as_deref(), Some("tick"));
    let pod_name = run
        .status
        .as_ref()
        .and_then(|s| s.pod_name.clone())
        .expect("podName");
    let pod = Api::<Pod>::namespaced(client.clone(), "default")
        .get(&pod_name)
        .await
        .expect("the run's pod");
    assert_eq!(phase(&pod), "Succeeded");
    assert!(
        pod.owner_references().iter().any(|o| o.name == run.name_any()),
        "the pod is owned by its run"
    );

    let _ = stop_controllers.send(());
    let _ = tokio::time::timeout(PATIENCE, controllers).await;
    let _ = stop.send(());
    let _ = serving.await;
    let _ = std::fs::remove_file(kubeconfig_path("operator"));
}
