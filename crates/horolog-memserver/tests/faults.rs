//! Fault injection and request counting, seen through a real `kube::Client` and kube-runtime
//! watchers: what a client of an unreliable API server gets, and what the server counted.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use horolog_core::clock::ManualClock;
use horolog_memserver::{ApiServer, GARBAGE_COLLECTOR, RequestKey, RequestMatch, Verb};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

/// How long a test waits for something that should already be on its way (tokio time is
/// paused, so this never costs real time; it only turns a hang into a failure).
const PATIENCE: Duration = Duration::from_secs(600);

fn server() -> ApiServer {
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .to_utc();
    ApiServer::new(Arc::new(ManualClock::new(start)))
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"key": "value"}})).unwrap()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }))
    .unwrap()
}

/// The status code of an API error, or a panic naming what came instead.
fn code_of<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> u16 {
    match result {
        Err(kube::Error::Api(status)) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// True when `result` failed as a refused connection: a transport error, not a status.
fn is_refused<T: std::fmt::Debug>(result: &Result<T, kube::Error>) -> bool {
    match result {
        Err(kube::Error::Service(error)) => error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused),
        _ => false,
    }
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("stream went quiet")
        .expect("stream ended")
}

fn count_of(server: &ApiServer, client: &str, verb: Verb, resource: &str) -> u64 {
    server
        .request_counts()
        .into_iter()
        .filter(|(key, _)| key.client == client && key.verb == verb && key.resource == resource)
        .map(|(_, count)| count)
        .sum()
}

#[tokio::test(start_paused = true)]
async fn refuse_all_fails_every_request_as_a_refused_connection_until_restore() {
    let server = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client_as("test"));
    maps.create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();

    server.faults().refuse_all();
    let refused = maps.get("a").await;
    assert!(is_refused(&refused), "a transport error, got {refused:?}");
    let refused = maps.create(&PostParams::default(), &config_map("b")).await;
    assert!(is_refused(&refused), "{refused:?}");
    assert!(
        server.snapshot().iter().all(|o| o["metadata"]["name"] != "b"),
        "a refused write changes nothing"
    );
    assert_eq!(
        count_of(&server, "test", Verb::Get, "configmaps"),
        0,
        "refused requests never reached the server, so they are not counted"
    );

    server.faults().restore();
    assert_eq!(maps.get("a").await.unwrap().name_any(), "a");
}

#[tokio::test(start_paused = true)]
async fn fail_answers_the_next_matching_requests_with_the_status_code() {
    let server = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    let creates = RequestMatch::any().verb("create").resource("configmaps");
    server.faults().fail(creates, 2, 503);

    for name in ["a", "b"] {
        let status = maps.create(&PostParams::default(), &config_map(name)).await;
        assert_eq!(code_of(status), 503);
    }
    assert!(
        maps.list(&ListParams::default()).await.unwrap().items.is_empty(),
        "other requests are served, and the failed creates stored nothing"
    );
    maps.create(&PostParams::default(), &config_map("c"))
        .await
        .unwrap();

    server.faults().fail(RequestMatch::any(), 1, 429);
    match maps.get("c").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (429, "TooManyRequests"));
            let retry = status.details.map(|d| d.retry_after_seconds);
            assert_eq!(retry, Some(1), "429 says when to retry");
        }
        other => panic!("expected 429, got {other:?}"),
    }
    server.faults().fail(RequestMatch::any(), 1, 409);
    let conflict = maps.get("c").await;
    assert!(
        matches!(&conflict, Err(kube::Error::Api(s)) if s.is_conflict()),
        "{conflict:?}"
    );
    let failed = server
        .request_counts()
        .into_iter()
        .filter(|(key, _)| key.verb == Verb::Create && key.code == 503)
        .map(|(_, count)| count)
        .sum::<u64>();
    assert_eq!(failed, 2, "failed requests are counted with their code");
}

#[tokio::test(start_paused = true)]
async fn fail_with_answers_with_the_chosen_reason_and_message() {
    let server = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    let quota = "configmaps \"a\" is forbidden: exceeded quota: q, requested: count/configmaps=1";
    server
        .faults()
        .fail_with(RequestMatch::any().verb("create"), 1, 403, "Forbidden", quota);
    match maps.create(&PostParams::default(), &config_map("a")).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str(), status.message.as_str()),
                (403, "Forbidden", quota)
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    maps.create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn fail_nth_fails_exactly_the_nth_matching_request() {
    let server = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    maps.create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    let gets = RequestMatch::any().verb("get").resource("configmaps").name("a");
    server.faults().fail_nth(gets, 3, 500);

    let mut codes = Vec::new();
    for _ in 0..5 {
        // Requests the rule does not match do not move it on.
        maps.list(&ListParams::default()).await.unwrap();
        let _ = maps.get_opt("other").await.unwrap();
        codes.push(match maps.get("a").await {
            Ok(_) => 200,
            Err(kube::Error::Api(status)) => status.code,
            Err(other) => panic!("{other}"),
        });
    }
    assert_eq!(codes, [200, 200, 500, 200, 200]);
}

#[tokio::test(start_paused = true)]
async fn a_fault_by_name_matches_the_name_in_a_create_body() {
    let server = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    let create_b = RequestMatch::any().verb("create").name("b");
    server.faults().fail(create_b, 1, 500);
    maps.create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    assert_eq!(
        code_of(maps.create(&PostParams::default(), &config_map("b")).await),
        500
    );
    maps.create(&PostParams::default(), &config_map("b"))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn refuse_after_serves_exactly_one_matching_request_then_refuses_everything() {
    let server = server();
    let operator: Api<ConfigMap> = Api::default_namespaced(server.client_as("operator"));
    let test: Api<ConfigMap> = Api::default_namespaced(server.client_as("test"));
    let crash_point = RequestMatch::any()
        .client("operator")
        .verb("create")
        .resource("configmaps");
    server.faults().refuse_after(crash_point);

    operator.list(&ListParams::default()).await.unwrap();
    operator
        .create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    let after = operator.create(&PostParams::default(), &config_map("b")).await;
    assert!(
        is_refused(&after),
        "the operator is gone after its create: {after:?}"
    );
    let other_client = test.get("a").await;
    assert!(is_refused(&other_client), "so is everyone else: {other_client:?}");
    let names: Vec<_> = server
        .snapshot()
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["a"], "the one write that got through is stored");
    assert_eq!(count_of(&server, "operator", Verb::Create, "configmaps"), 1);

    server.faults().restore();
    assert_eq!(test.get("a").await.unwrap().name_any(), "a");
}

#[tokio::test(start_paused = true)]
async fn delay_holds_matching_requests_on_tokio_time() {
    let server = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    maps.create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    server
        .faults()
        .delay(RequestMatch::any().verb("get"), Duration::from_secs(5));

    let start = Instant::now();
    maps.get("a").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    let start = Instant::now();
    maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "a list is not a get");

    // A hanging request: the client's own timeout gives up on it.
    server
        .faults()
        .delay(RequestMatch::any().verb("list"), Duration::from_secs(24 * 3600));
    let hung = tokio::time::timeout(Duration::from_secs(60), maps.list(&ListParams::default())).await;
    assert!(hung.is_err(), "still waiting after a minute");
    server.faults().restore();
    let start = Instant::now();
    maps.get("a").await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "restore ends the delays");
}

#[tokio::test(start_paused = true)]
async fn lag_watches_holds_back_each_event_of_the_matching_watches() {
    let server = server();
    server.faults().lag_watches(
        RequestMatch::any().client("slow").verb("watch"),
        Duration::from_secs(2),
    );
    let slow: Api<ConfigMap> = Api::default_namespaced(server.client_as("slow"));
    let fast: Api<ConfigMap> = Api::default_namespaced(server.client_as("fast"));
    let mut slow_events = watcher(slow, watcher::Config::default())
        .applied_objects()
        .boxed();
    let mut fast_events = watcher(fast, watcher::Config::default())
        .applied_objects()
        .boxed();
    let writer: Api<ConfigMap> = Api::default_namespaced(server.client_as("test"));
    // Both watchers list (nothing) and open their watches before anything is written.
    for events in [&mut slow_events, &mut fast_events] {
        let nothing = tokio::time::timeout(Duration::from_millis(10), events.next()).await;
        assert!(nothing.is_err(), "no object yet: {nothing:?}");
    }
    let start = Instant::now();
    for name in ["a", "b"] {
        writer
            .create(&PostParams::default(), &config_map(name))
            .await
            .unwrap();
    }
    assert_eq!(next(&mut fast_events).await.unwrap().name_any(), "a");
    assert_eq!(start.elapsed(), Duration::ZERO, "other watches are not held back");
    assert_eq!(next(&mut slow_events).await.unwrap().name_any(), "a");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(next(&mut slow_events).await.unwrap().name_any(), "b");
    assert_eq!(start.elapsed(), Duration::from_secs(4), "one after the other");
}

#[tokio::test(start_paused = true)]
async fn drop_watches_makes_a_watcher_watch_again_without_missing_a_change() {
    let server = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client_as("watcher"));
    let writer: Api<ConfigMap> = Api::default_namespaced(server.client_as("test"));
    let mut applied = watcher(maps, watcher::Config::default())
        .applied_objects()
        .boxed();
    writer
        .create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    assert_eq!(next(&mut applied).await.unwrap().name_any(), "a");
    let watches_before = count_of(&server, "watcher", Verb::Watch, "configmaps");

    server.faults().drop_watches();
    writer
        .create(&PostParams::default(), &config_map("b"))
        .await
        .unwrap();
    assert_eq!(next(&mut applied).await.unwrap().name_any(), "b");
    assert!(
        count_of(&server, "watcher", Verb::Watch, "configmaps") > watches_before,
        "the watcher opened a new watch"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watcher_survives_an_outage_and_sees_what_changed_after_it() {
    let server = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client_as("watcher"));
    let mut applied = watcher(maps, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let writer: Api<ConfigMap> = Api::default_namespaced(server.client_as("test"));
    writer
        .create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    assert_eq!(next(&mut applied).await.unwrap().name_any(), "a");

    server.faults().refuse_all();
    // The open watch ends and the watcher's retries are refused for a while.
    let during = tokio::time::timeout(Duration::from_secs(20), applied.next()).await;
    assert!(
        matches!(&during, Err(_) | Ok(Some(Err(_)))),
        "nothing arrives while the server is down: {during:?}"
    );
    server.faults().restore();
    writer
        .create(&PostParams::default(), &config_map("b"))
        .await
        .unwrap();
    loop {
        match next(&mut applied).await {
            Ok(map) if map.name_any() == "b" => break,
            // Watcher errors from the outage, or `a` again after a relist.
            Ok(_) | Err(_) => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn request_counts_count_each_client_verb_resource_subresource_and_code() {
    let server = server();
    let pods: Api<Pod> = Api::default_namespaced(server.client_as("operator"));
    pods.create(&PostParams::default(), &pod("p")).await.unwrap();
    pods.get("p").await.unwrap();
    assert_eq!(code_of(pods.get("missing").await), 404);
    assert_eq!(code_of(pods.create(&PostParams::default(), &pod("p")).await), 409);
    let running = json!({"status": {"phase": "Running"}});
    pods.patch_status("p", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .unwrap();
    let applied = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}}});
    pods.patch("p", &PatchParams::apply("operator"), &Patch::Apply(&applied))
        .await
        .unwrap();
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let unknown: Api<Pod> = Api::default_namespaced(server.client());
    unknown.list(&ListParams::default()).await.unwrap();

    let key = |client: &str, verb, subresource: &str, code| RequestKey {
        client: client.into(),
        verb,
        group: String::new(),
        resource: "pods".into(),
        subresource: subresource.into(),
        code,
    };
    assert_eq!(
        server.request_counts(),
        vec![
            (key("operator", Verb::Get, "", 200), 1),
            (key("operator", Verb::Get, "", 404), 1),
            (key("operator", Verb::Create, "", 201), 1),
            (key("operator", Verb::Create, "", 409), 1),
            (key("operator", Verb::Patch, "status", 200), 1),
            (key("operator", Verb::Apply, "", 200), 1),
            (key("operator", Verb::Delete, "", 200), 1),
            (key("unknown", Verb::List, "", 200), 1),
        ]
    );
    assert_eq!(server.write_count(Some("operator"), Some("pods")), 5);
    assert_eq!(server.write_count(Some("operator"), Some("configmaps")), 0);
    assert_eq!(server.write_count(None, None), 5);

    server.reset_request_counts();
    assert!(server.request_counts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn garbage_collection_and_namespace_deletion_count_as_the_garbage_collectors_deletes() {
    let server = server();
    let client = server.client_as("test");
    let maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let owner = maps
        .create(&PostParams::default(), &config_map("owner"))
        .await
        .unwrap();
    for name in ["a", "b"] {
        let mut child = pod(name);
        child.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
        pods.create(&PostParams::default(), &child).await.unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let doomed: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    namespaces.create(&PostParams::default(), &doomed).await.unwrap();
    let doomed_maps: Api<ConfigMap> = Api::namespaced(client, "doomed");
    for name in ["x", "y", "z"] {
        doomed_maps
            .create(&PostParams::default(), &config_map(name))
            .await
            .unwrap();
    }
    server.reset_request_counts();

    maps.delete("owner", &DeleteParams::default()).await.unwrap();
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(count_of(&server, GARBAGE_COLLECTOR, Verb::Delete, "pods"), 2);
    assert_eq!(
        count_of(&server, GARBAGE_COLLECTOR, Verb::Delete, "configmaps"),
        3
    );
    assert_eq!(
        server.write_count(Some("test"), None),
        2,
        "the test's own two deletes"
    );
    assert_eq!(server.write_count(Some(GARBAGE_COLLECTOR), None), 5);
}

#[tokio::test(start_paused = true)]
async fn metrics_text_renders_apiserver_request_total_with_the_real_servers_verbs() {
    let server = server();
    let pods: Api<Pod> = Api::default_namespaced(server.client_as("horolog/0.1.0"));
    pods.create(&PostParams::default(), &pod("p")).await.unwrap();
    pods.create(&PostParams::default(), &pod("q")).await.unwrap();
    pods.list(&ListParams::default()).await.unwrap();
    let text = server.metrics_text();
    assert!(text.starts_with("# HELP apiserver_request_total "), "{text}");
    assert!(
        text.contains("# TYPE apiserver_request_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "apiserver_request_total{verb=\"POST\",group=\"\",resource=\"pods\",subresource=\"\",code=\"201\",client=\"horolog/0.1.0\"} 2\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "apiserver_request_total{verb=\"LIST\",group=\"\",resource=\"pods\",subresource=\"\",code=\"200\",client=\"horolog/0.1.0\"} 1\n"
        ),
        "{text}"
    );
}
