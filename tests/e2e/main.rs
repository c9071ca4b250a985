//! End-to-end tests against a real cluster with horolog installed.
//!
//! They run when `HOROLOG_E2E_KUBECONFIG` names a kubeconfig file, and pass with a printed
//! reason otherwise. The operator must already run in that cluster (`helm install horolog
//! charts/horolog`) with the CRDs applied: the tests exercise the release as users get it,
//! not a build of the test binary. Each test works in its own namespace
//! (`horolog-e2e-<test>`), created and deleted by the test.
//!
//! Run: `HOROLOG_E2E_KUBECONFIG=~/.kube/config cargo test --test e2e -- --test-threads=4`

use std::time::Duration;

use horolog::api::{JobRun, JobRunPhase, Schedule};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;

/// A client for the e2e cluster, or `None` (with the reason printed) when there is none.
async fn cluster(test: &str) -> Option<(Client, String)> {
    let Ok(path) = std::env::var("HOROLOG_E2E_KUBECONFIG") else {
        println!(
            "skipping {test}: HOROLOG_E2E_KUBECONFIG is not set (point it at a cluster running horolog)"
        );
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(&path).unwrap_or_else(|err| panic!("reading {path}: {err}"));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|err| panic!("kubeconfig {path}: {err}"));
    let client = Client::try_from(config).unwrap_or_else(|err| panic!("client: {err}"));
    let namespace = format!("horolog-e2e-{test}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    namespaces
        .patch(&namespace, &PatchParams::apply("horolog-e2e"), &Patch::Apply(&ns))
        .await
        .unwrap_or_else(|err| panic!("namespace {namespace}: {err}"));
    Some((client, namespace))
}

async fn cleanup(client: &Client, namespace: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(namespace, &DeleteParams::background()).await;
}

/// An examples-like Schedule: busybox writing `ok` to its termination log.
fn schedule(name: &str, trigger: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "trigger": trigger,
        "jobTemplate": {"spec": {
            "template": {"spec": {"containers": [{
                "name": "main",
                "image": "busybox:1.36",
                "command": ["sh", "-c", "echo ok > /dev/termination-log"],
            }]}},
            "activeDeadlineSeconds": 120,
        }},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({"apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule", "metadata": {"name": name}, "spec": spec})
}

async fn apply(client: &Client, namespace: &str, object: serde_json::Value) {
    let api: Api<Schedule> = Api::namespaced(client.clone(), namespace);
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply("horolog-e2e").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|err| panic!("apply schedule {name}: {err}"));
}

/// Polls `check` every 2 s until it returns `Some`, for at most `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn runs(client: &Client, namespace: &str, schedule: &str) -> Vec<JobRun> {
    let api: Api<JobRun> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("horolog.dev/schedule={schedule}"));
    api.list(&params).await.map(|list| list.items).unwrap_or_default()
}

async fn event_reasons(client: &Client, namespace: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let events = api
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    events
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn an_interval_schedule_runs_busybox_pods_to_success_with_their_result() {
    let Some((client, ns)) = cluster("interval").await else {
        return;
    };
    apply(
        &client,
        &ns,
        schedule(
            "every-20s",
            json!({"interval": "20s"}),
            json!({"successfulRunsHistoryLimit": 5}),
        ),
    )
    .await;
    let succeeded = eventually(Duration::from_secs(180), "two Succeeded JobRuns", || async {
        let done: Vec<JobRun> = runs(&client, &ns, "every-20s")
            .await
            .into_iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(JobRunPhase::Succeeded))
            .collect();
        (done.len() >= 2).then_some(done)
    })
    .await;
    for run in &succeeded {
        let status = run.status.clone().unwrap_or_default();
        assert_eq!(
            status.result.as_deref().map(str::trim),
            Some("ok"),
            "{}",
            run.name_any()
        );
        assert_eq!(status.exit_code, Some(0));
        let fire = run.spec.fire_time.map(|t| t.timestamp()).unwrap_or_default();
        assert_eq!(run.name_any(), format!("every-20s-{fire}"));
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let labelled = pods
        .list(&ListParams::default().labels("horolog.dev/schedule=every-20s"))
        .await;
    assert!(labelled.map(|l| l.items.len()).unwrap_or(0) >= 2);
    let status = Api::<Schedule>::namespaced(client.clone(), &ns)
        .get("every-20s")
        .await
        .map(|s| s.status.unwrap_or_default())
        .unwrap_or_default();
    assert!(status.next_fire_time.is_some() && status.last_successful_time.is_some());
    assert_eq!(status.conditions.first().map(|c| c.status.as_str()), Some("True"));
    assert!(
        event_reasons(&client, &ns, "every-20s")
            .await
            .contains(&"Fired".to_string())
    );
    assert!(
        event_reasons(&client, &ns, &succeeded[0].name_any())
            .await
            .contains(&"Succeeded".to_string())
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn run_now_fires_a_paused_schedule_once_per_value() {
    let Some((client, ns)) = cluster("run-now").await else {
        return;
    };
    let mut paused = schedule("manual", json!({"cron": "0 0 1 1 *"}), json!({"paused": true}));
    paused["metadata"]["annotations"] = json!({"horolog.dev/run-now": "first"});
    apply(&client, &ns, paused).await;
    let run = eventually(Duration::from_secs(120), "the manual run to succeed", || async {
        runs(&client, &ns, "manual")
            .await
            .into_iter()
            .find(|r| r.status.as_ref().and_then(|s| s.phase) == Some(JobRunPhase::Succeeded))
    })
    .await;
    assert_eq!(runs(&client, &ns, "manual").await.len(), 1, "{}", run.name_any());
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn an_invalid_cron_is_reported_on_the_ready_condition() {
    let Some((client, ns)) = cluster("invalid").await else {
        return;
    };
    apply(
        &client,
        &ns,
        schedule("typo", json!({"cron": "0 9 * * mon-fry"}), json!({})),
    )
    .await;
    let ready = eventually(Duration::from_secs(60), "Ready=False", || async {
        let schedule = Api::<Schedule>::namespaced(client.clone(), &ns)
            .get("typo")
            .await
            .ok()?;
        schedule
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == "False")
    })
    .await;
    assert_eq!(ready.reason, "InvalidTrigger");
    assert!(ready.message.contains("mon-fry"), "{}", ready.message);
    assert!(
        event_reasons(&client, &ns, "typo")
            .await
            .contains(&"InvalidTrigger".to_string())
    );
    cleanup(&client, &ns).await;
}
