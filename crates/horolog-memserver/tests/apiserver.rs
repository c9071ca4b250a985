//! The in-process API server, driven through a real `kube::Client`, kube-runtime watchers,
//! reflectors, a `Controller` and the event `Recorder`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::{Stream, StreamExt};
use horolog_core::clock::ManualClock;
use horolog_memserver::{ApiServer, ChangeKind, ResourceType};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use serde_json::{Value, json};

/// How long a test waits for something that should already be on its way (tokio time is
/// paused, so this never costs real time; it only turns a hang into a failure).
const PATIENCE: Duration = Duration::from_secs(600);

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .to_utc()
}

/// Two custom resources shaped like horolog's (only the fields these tests read), so the
/// server is tested on custom resources with a status subresource without depending on the
/// operator crate.
mod kinds {
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// A Schedule: any spec; `paused` is read.
    #[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
    #[kube(
        group = "horolog.dev",
        version = "v1alpha1",
        kind = "Schedule",
        namespaced,
        status = "ScheduleStatus"
    )]
    pub struct ScheduleSpec {
        #[serde(default)]
        pub paused: bool,
        #[serde(flatten)]
        pub rest: serde_json::Map<String, serde_json::Value>,
    }

    /// A Schedule's status: `activeCount` is read.
    #[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ScheduleStatus {
        #[serde(default)]
        pub active_count: i32,
    }

    /// A JobRun: `scheduleName` is read.
    #[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
    #[kube(
        group = "horolog.dev",
        version = "v1alpha1",
        kind = "JobRun",
        namespaced,
        status = "JobRunStatus"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct JobRunSpec {
        #[serde(default)]
        pub schedule_name: Option<String>,
        #[serde(flatten)]
        pub rest: serde_json::Map<String, serde_json::Value>,
    }

    /// A JobRun's status: `phase` and `message` are read.
    #[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
    pub struct JobRunStatus {
        #[serde(default)]
        pub phase: Option<String>,
        #[serde(default)]
        pub message: Option<String>,
    }
}

use kinds::{JobRun, Schedule};

/// A server that serves the built-in resources and the two custom resources above.
fn new_server(clock: &ManualClock) -> ApiServer {
    let server = ApiServer::new(Arc::new(clock.clone()));
    server.register(ResourceType::of::<Schedule>().with_status_subresource());
    server.register(ResourceType::of::<JobRun>().with_status_subresource());
    server
}

fn server() -> (ApiServer, ManualClock, Client) {
    let clock = ManualClock::new(start());
    let server = new_server(&clock);
    let client = server.client();
    (server, clock, client)
}

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        },
        "data": {"key": "value"},
    }))
    .unwrap()
}

fn schedule(name: &str) -> Schedule {
    serde_json::from_value(json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": name},
        "spec": {
            "trigger": {"interval": "1m"},
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}},
        },
        "status": {"activeCount": 7},
    }))
    .unwrap()
}

fn jobrun(name: &str, schedule: Option<&str>) -> JobRun {
    serde_json::from_value(json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "JobRun",
        "metadata": {"name": name, "labels": {"horolog.dev/schedule": schedule.unwrap_or("none")}},
        "spec": {
            "scheduleName": schedule,
            "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        },
    }))
    .unwrap()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }))
    .unwrap()
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("stream went quiet")
        .expect("stream ended")
}

#[tokio::test(start_paused = true)]
async fn create_stamps_server_fields_from_the_clock_and_get_returns_the_object() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::namespaced(client, "team");
    let created = maps
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap();
    assert_eq!(created.namespace().as_deref(), Some("team"));
    assert!(created.uid().is_some());
    assert!(created.resource_version().is_some());
    assert_eq!(created.meta().generation, Some(1));
    assert_eq!(
        created.creation_timestamp().unwrap().0.to_string(),
        "2026-03-01T12:00:00Z"
    );
    let fetched = maps.get("a").await.unwrap();
    assert_eq!(fetched, created);
    assert!(api_error(maps.get("missing").await).is_not_found());
}

#[tokio::test(start_paused = true)]
async fn create_unchecked_stores_json_the_types_cannot_read_and_serves_it_as_is() {
    let (server, _, client) = server();
    let stored = server
        .create_unchecked(json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": "odd", "namespace": "team"},
            "spec": {"trigger": {"interval": 7}, "jobTemplate": "not an object"},
        }))
        .unwrap();
    assert_eq!(stored["metadata"]["resourceVersion"], json!("1"));
    let raw: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client, "team", &kube::api::ApiResource::erase::<Schedule>(&()));
    let fetched = raw.get("odd").await.unwrap();
    assert_eq!(fetched.data["spec"]["jobTemplate"], json!("not an object"));
    let unknown =
        server.create_unchecked(json!({"apiVersion": "v9", "kind": "Nothing", "metadata": {"name": "x"}}));
    assert_eq!(unknown.map_err(|e| e.code).err(), Some(400));
}

#[tokio::test(start_paused = true)]
async fn duplicate_create_is_already_exists() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    maps.create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap();
    let status = api_error(maps.create(&PostParams::default(), &config_map("a", &[])).await);
    assert!(status.is_already_exists(), "{status:?}");
    assert_eq!(status.code, 409);
}

#[tokio::test(start_paused = true)]
async fn generate_name_gives_distinct_names_with_the_prefix() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let mut template = config_map("", &[]);
    template.metadata.name = None;
    template.metadata.generate_name = Some("gen-".into());
    let first = maps
        .create(&PostParams::default(), &template)
        .await
        .unwrap()
        .name_any();
    let second = maps
        .create(&PostParams::default(), &template)
        .await
        .unwrap()
        .name_any();
    assert!(first.starts_with("gen-") && first.len() == 9, "{first}");
    assert_ne!(first, second);
}

#[tokio::test(start_paused = true)]
async fn list_filters_by_namespace_label_and_field_selectors() {
    let (_, _, client) = server();
    let runs: Api<JobRun> = Api::default_namespaced(client.clone());
    for (name, schedule) in [
        ("n-1", Some("nightly")),
        ("n-2", Some("nightly")),
        ("h-1", Some("hourly")),
        ("once", None),
    ] {
        runs.create(&PostParams::default(), &jobrun(name, schedule))
            .await
            .unwrap();
    }
    Api::<JobRun>::namespaced(client.clone(), "other")
        .create(&PostParams::default(), &jobrun("elsewhere", Some("nightly")))
        .await
        .unwrap();
    let names =
        |list: kube::core::ObjectList<JobRun>| list.items.iter().map(|r| r.name_any()).collect::<Vec<_>>();

    let nightly = runs
        .list(&ListParams::default().fields("spec.scheduleName=nightly"))
        .await
        .unwrap();
    assert_eq!(names(nightly), ["n-1", "n-2"]);
    let by_label = runs
        .list(&ListParams::default().labels("horolog.dev/schedule in (hourly,none)"))
        .await
        .unwrap();
    assert_eq!(names(by_label), ["h-1", "once"]);
    let not_nightly = runs
        .list(&ListParams::default().labels("horolog.dev/schedule!=nightly"))
        .await
        .unwrap();
    assert_eq!(names(not_nightly), ["h-1", "once"]);
    let by_name = runs
        .list(&ListParams::default().fields("metadata.name=n-2"))
        .await
        .unwrap();
    assert_eq!(names(by_name), ["n-2"]);
    let everywhere = Api::<JobRun>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(everywhere.items.len(), 5);
    assert!(everywhere.metadata.resource_version.is_some());
    let status = api_error(runs.list(&ListParams::default().labels("a in b")).await);
    assert_eq!(status.code, 400);
}

#[tokio::test(start_paused = true)]
async fn list_pages_with_limit_and_continue() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    for name in ["a", "b", "c"] {
        maps.create(&PostParams::default(), &config_map(name, &[]))
            .await
            .unwrap();
    }
    let first = maps.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().unwrap();
    let second = maps
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|m| m.name_any()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(second.metadata.continue_, None);
}

#[tokio::test(start_paused = true)]
async fn replace_with_a_stale_resource_version_is_conflict() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let original = maps
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap();
    let mut first = original.clone();
    first.data = Some(BTreeMap::from([("key".into(), "first".into())]));
    let replaced = maps.replace("a", &PostParams::default(), &first).await.unwrap();
    assert_ne!(replaced.resource_version(), original.resource_version());

    let mut stale = original.clone();
    stale.data = Some(BTreeMap::from([("key".into(), "stale".into())]));
    let status = api_error(maps.replace("a", &PostParams::default(), &stale).await);
    assert!(status.is_conflict(), "{status:?}");

    // Without a resourceVersion the write is unconditional.
    stale.metadata.resource_version = None;
    let forced = maps.replace("a", &PostParams::default(), &stale).await.unwrap();
    assert_eq!(forced.uid(), original.uid());
    assert_eq!(forced.data.unwrap()["key"], "stale");
}

#[tokio::test(start_paused = true)]
async fn merge_json_and_apply_patches_change_the_object() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    maps.create(
        &PostParams::default(),
        &config_map("a", &[("keep", "1"), ("drop", "1")]),
    )
    .await
    .unwrap();

    let merge = json!({"metadata": {"labels": {"drop": null, "new": "2"}}, "data": {"other": "x"}});
    let merged = maps
        .patch("a", &PatchParams::default(), &Patch::Merge(&merge))
        .await
        .unwrap();
    assert_eq!(
        merged.labels(),
        &BTreeMap::from([("keep".into(), "1".into()), ("new".into(), "2".into())])
    );
    assert_eq!(merged.data.as_ref().unwrap().len(), 2);

    // kube's typed JSON patch needs the json-patch crate; the wire format is plain JSON.
    let ops = json!([
        {"op": "replace", "path": "/data/key", "value": "patched"},
        {"op": "remove", "path": "/data/other"},
    ]);
    let request = http::Request::patch("/api/v1/namespaces/default/configmaps/a")
        .header("content-type", "application/json-patch+json")
        .body(ops.to_string().into_bytes())
        .unwrap();
    let patched: ConfigMap = client.request(request).await.unwrap();
    assert_eq!(
        patched.data.unwrap(),
        BTreeMap::from([("key".into(), "patched".into())])
    );

    let apply =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"applied": "y"}});
    let applied = maps
        .patch("a", &PatchParams::apply("horolog").force(), &Patch::Apply(&apply))
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["applied"], "y");

    // Apply creates an absent object.
    let apply =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fresh"}, "data": {"a": "b"}});
    let created = maps
        .patch("fresh", &PatchParams::apply("horolog"), &Patch::Apply(&apply))
        .await
        .unwrap();
    assert!(created.uid().is_some());
    assert!(
        api_error(
            maps.patch("absent", &PatchParams::default(), &Patch::Merge(&merge))
                .await
        )
        .is_not_found()
    );
}

#[tokio::test(start_paused = true)]
async fn status_subresource_isolates_status_and_generation_follows_spec() {
    let (_, _, client) = server();
    let schedules: Api<Schedule> = Api::default_namespaced(client);
    let created = schedules
        .create(&PostParams::default(), &schedule("s"))
        .await
        .unwrap();
    assert_eq!(
        created.status, None,
        "create ignores status when status is a subresource"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let status = json!({"status": {"activeCount": 2}});
    let with_status = schedules
        .patch_status("s", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(with_status.status.as_ref().unwrap().active_count, 2);
    assert_eq!(with_status.metadata.generation, Some(1));

    // A write to the object ignores .status; a spec change bumps the generation.
    let main = json!({"spec": {"paused": true}, "status": {"activeCount": 99}});
    let paused = schedules
        .patch("s", &PatchParams::default(), &Patch::Merge(&main))
        .await
        .unwrap();
    assert!(paused.spec.paused);
    assert_eq!(paused.status.as_ref().unwrap().active_count, 2);
    assert_eq!(paused.metadata.generation, Some(2));

    // Metadata changes do not bump the generation.
    let labels = json!({"metadata": {"labels": {"team": "x"}}});
    let labelled = schedules
        .patch("s", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));

    // A status write ignores everything but .status.
    let sneaky = json!({"spec": {"paused": false}, "status": {"activeCount": 3}});
    let after = schedules
        .patch_status("s", &PatchParams::default(), &Patch::Merge(&sneaky))
        .await
        .unwrap();
    assert!(after.spec.paused);
    assert_eq!(after.status.unwrap().active_count, 3);
    assert_eq!(after.metadata.generation, Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_write_that_changes_nothing_keeps_the_resource_version() {
    let (_, _, client) = server();
    let schedules: Api<Schedule> = Api::default_namespaced(client);
    schedules
        .create(&PostParams::default(), &schedule("s"))
        .await
        .unwrap();
    let status =
        json!({"apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule", "status": {"activeCount": 1}});
    let params = PatchParams::apply("horolog").force();
    let first = schedules
        .patch_status("s", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    let second = schedules
        .patch_status("s", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(first.resource_version(), second.resource_version());
}

#[tokio::test(start_paused = true)]
async fn server_side_apply_removes_status_fields_the_manager_no_longer_sets() {
    let (_, _, client) = server();
    let runs: Api<JobRun> = Api::default_namespaced(client);
    runs.create(&PostParams::default(), &jobrun("r", None))
        .await
        .unwrap();
    let params = PatchParams::apply("horolog");
    let status =
        |status: Value| json!({"apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun", "status": status});
    let waiting = status(json!({"phase": "Waiting", "message": "no free slot"}));
    runs.patch_status("r", &params, &Patch::Apply(&waiting))
        .await
        .unwrap();
    let running = status(json!({"phase": "Running"}));
    let run = runs
        .patch_status("r", &params, &Patch::Apply(&running))
        .await
        .unwrap();
    let status = run.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.message, None);
    assert!(
        api_error(
            runs.patch_status("r", &PatchParams::default(), &Patch::Apply(&running))
                .await
        )
        .is_invalid()
    );
}

#[tokio::test(start_paused = true)]
async fn pods_start_pending_and_tests_move_them_through_status() {
    let (_, _, client) = server();
    let pods: Api<Pod> = Api::default_namespaced(client);
    let created = pods.create(&PostParams::default(), &pod("p")).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    let running = json!({"status": {"phase": "Running"}});
    let moved = pods
        .patch_status("p", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .unwrap();
    assert_eq!(moved.status.unwrap().phase.as_deref(), Some("Running"));
}

#[tokio::test(start_paused = true)]
async fn delete_waits_for_finalizers_then_removes() {
    let (_, clock, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let mut held = config_map("held", &[]);
    held.metadata.finalizers = Some(vec!["horolog.dev/cleanup".into()]);
    maps.create(&PostParams::default(), &held).await.unwrap();
    clock.advance(TimeDelta::seconds(30));

    let deleting = maps
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        deleting.metadata.deletion_timestamp.unwrap().0.to_string(),
        "2026-03-01T12:00:30Z"
    );
    assert!(maps.get("held").await.is_ok(), "kept while it has finalizers");

    let release = json!({"metadata": {"finalizers": null}});
    maps.patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    assert!(api_error(maps.get("held").await).is_not_found());
    assert!(api_error(maps.delete("held", &DeleteParams::default()).await).is_not_found());
}

#[tokio::test(start_paused = true)]
async fn deleting_an_owner_collects_its_dependents_in_cascade() {
    let (_, _, client) = server();
    let schedules: Api<Schedule> = Api::default_namespaced(client.clone());
    let runs: Api<JobRun> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let maps: Api<ConfigMap> = Api::default_namespaced(client);

    let owner = schedules
        .create(&PostParams::default(), &schedule("s"))
        .await
        .unwrap();
    let other_owner = maps
        .create(&PostParams::default(), &config_map("other", &[]))
        .await
        .unwrap();
    let mut run = jobrun("r", Some("s"));
    run.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
    let run = runs.create(&PostParams::default(), &run).await.unwrap();
    let mut child = pod("r-pod");
    child.metadata.owner_references = Some(vec![run.controller_owner_ref(&()).unwrap()]);
    pods.create(&PostParams::default(), &child).await.unwrap();
    let mut shared = pod("shared");
    shared.metadata.owner_references = Some(vec![
        run.owner_ref(&()).unwrap(),
        other_owner.owner_ref(&()).unwrap(),
    ]);
    pods.create(&PostParams::default(), &shared).await.unwrap();

    schedules.delete("s", &DeleteParams::default()).await.unwrap();
    assert!(api_error(runs.get("r").await).is_not_found());
    assert!(api_error(pods.get("r-pod").await).is_not_found());
    let survivor = pods.get("shared").await.unwrap();
    let owners: Vec<_> = survivor
        .owner_references()
        .iter()
        .map(|o| o.name.clone())
        .collect();
    assert_eq!(
        owners,
        ["other"],
        "a dependent with a live owner only loses the dead reference"
    );
}

#[tokio::test(start_paused = true)]
async fn orphan_propagation_keeps_dependents() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client);
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await
        .unwrap();
    let mut child = pod("child");
    child.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
    pods.create(&PostParams::default(), &child).await.unwrap();
    maps.delete("owner", &DeleteParams::orphan()).await.unwrap();
    assert!(pods.get("child").await.unwrap().owner_references().is_empty());
}

#[tokio::test(start_paused = true)]
async fn deleting_a_namespace_deletes_what_is_in_it_and_nothing_else() {
    let (_, _, client) = server();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in ["doomed", "kept"] {
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), name);
        maps.create(&PostParams::default(), &config_map("a", &[]))
            .await
            .unwrap();
        let runs: Api<JobRun> = Api::namespaced(client.clone(), name);
        runs.create(&PostParams::default(), &jobrun("r", None))
            .await
            .unwrap();
    }
    namespaces
        .delete("doomed", &DeleteParams::background())
        .await
        .unwrap();

    let doomed_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let doomed_runs: Api<JobRun> = Api::namespaced(client.clone(), "doomed");
    assert!(doomed_maps.get_opt("a").await.unwrap().is_none());
    assert!(doomed_runs.get_opt("r").await.unwrap().is_none());
    assert!(namespaces.get_opt("doomed").await.unwrap().is_none());
    let kept_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "kept");
    let kept_runs: Api<JobRun> = Api::namespaced(client.clone(), "kept");
    assert!(kept_maps.get_opt("a").await.unwrap().is_some());
    assert!(kept_runs.get_opt("r").await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn watch_from_a_resource_version_sees_added_modified_deleted_in_order() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let before = maps
        .create(&PostParams::default(), &config_map("before", &[]))
        .await
        .unwrap();
    let from = before.resource_version().unwrap();
    // These happen before the watch starts: it must replay them from history.
    maps.create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap();
    let change = json!({"data": {"key": "changed"}});
    maps.patch("a", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    let mut events = maps.watch(&WatchParams::default(), &from).await.unwrap().boxed();
    maps.delete("a", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        match next(&mut events).await.unwrap() {
            WatchEvent::Added(m) => seen.push(("ADDED", m.name_any())),
            WatchEvent::Modified(m) => seen.push(("MODIFIED", m.name_any())),
            WatchEvent::Deleted(m) => seen.push(("DELETED", m.name_any())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "a".into()),
            ("MODIFIED", "a".into()),
            ("DELETED", "a".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn watch_with_a_selector_sees_objects_enter_and_leave_it() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let mut events = maps
        .watch(&WatchParams::default().labels("app=web"), "0")
        .await
        .unwrap()
        .boxed();
    maps.create(&PostParams::default(), &config_map("a", &[("app", "db")]))
        .await
        .unwrap();
    let relabel = |app: &str| json!({"metadata": {"labels": {"app": app}}});
    maps.patch("a", &PatchParams::default(), &Patch::Merge(&relabel("web")))
        .await
        .unwrap();
    maps.patch("a", &PatchParams::default(), &Patch::Merge(&relabel("db")))
        .await
        .unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), WatchEvent::Added(_)));
    assert!(matches!(next(&mut events).await.unwrap(), WatchEvent::Deleted(_)));
}

#[tokio::test(start_paused = true)]
async fn idle_watches_get_bookmarks_and_end_at_their_timeout() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let params = WatchParams::default().timeout(150);
    let mut events = maps.watch(&params, "0").await.unwrap().boxed();
    let mut bookmarks = 0;
    while let Some(event) = tokio::time::timeout(PATIENCE, events.next()).await.unwrap() {
        assert!(matches!(event.unwrap(), WatchEvent::Bookmark(_)));
        bookmarks += 1;
    }
    assert_eq!(bookmarks, 2, "one a minute for 150 seconds");
}

#[tokio::test(start_paused = true)]
async fn watch_from_a_version_older_than_the_history_gets_410_in_the_stream() {
    let clock = ManualClock::new(start());
    let server = ApiServer::with_history_limit(Arc::new(clock), 2);
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    let first = maps
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap();
    for name in ["b", "c", "d"] {
        maps.create(&PostParams::default(), &config_map(name, &[]))
            .await
            .unwrap();
    }
    let mut events = maps
        .watch(&WatchParams::default(), &first.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    match next(&mut events).await.unwrap() {
        WatchEvent::Error(status) => assert_eq!(status.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn errors_are_status_objects() {
    let (_, _, client) = server();
    let request = |method: &str, path: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    let unknown = client
        .request_text(request("GET", "/apis/nope.dev/v1/namespaces/x/things", ""))
        .await;
    assert!(api_error(unknown).is_not_found());
    let bad_json = client
        .request_text(request("POST", "/api/v1/namespaces/x/configmaps", "{not json"))
        .await;
    assert_eq!(api_error(bad_json).code, 400);
    let wrong_scope = client.request_text(request("GET", "/api/v1/pods/p", "")).await;
    assert_eq!(api_error(wrong_scope).code, 404);
}

#[tokio::test(start_paused = true)]
async fn a_reflector_store_converges_and_follows_later_changes() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    maps.create(&PostParams::default(), &config_map("early", &[]))
        .await
        .unwrap();
    let (reader, writer) = reflector::store();
    let mut applied = reflector(writer, watcher(maps.clone(), watcher::Config::default()))
        .applied_objects()
        .boxed();
    // The store swaps in the initial list once it is complete, after this first object.
    assert_eq!(next(&mut applied).await.unwrap().name_any(), "early");

    maps.create(&PostParams::default(), &config_map("late", &[]))
        .await
        .unwrap();
    assert_eq!(next(&mut applied).await.unwrap().name_any(), "late");
    let change = json!({"data": {"key": "new"}});
    maps.patch("early", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    let updated = next(&mut applied).await.unwrap();
    assert_eq!(updated.data.unwrap()["key"], "new");
    assert_eq!(reader.state().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_list_watcher_gets_the_initial_state_then_changes() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    maps.create(&PostParams::default(), &config_map("early", &[]))
        .await
        .unwrap();
    let config = watcher::Config::default().streaming_lists();
    let mut events = watcher(maps.clone(), config).boxed();
    assert!(matches!(next(&mut events).await.unwrap(), watcher::Event::Init));
    assert!(
        matches!(next(&mut events).await.unwrap(), watcher::Event::InitApply(m) if m.name_any() == "early")
    );
    assert!(matches!(
        next(&mut events).await.unwrap(),
        watcher::Event::InitDone
    ));
    maps.create(&PostParams::default(), &config_map("late", &[]))
        .await
        .unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), watcher::Event::Apply(m) if m.name_any() == "late"));
}

#[tokio::test(start_paused = true)]
async fn a_watcher_relists_after_its_history_is_gone_and_survives_watch_timeouts() {
    let clock = ManualClock::new(start());
    let server = ApiServer::with_history_limit(Arc::new(clock), 1);
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().timeout(30);
    let stream = reflector(writer, watcher(maps.clone(), config)).applied_objects();
    let mut applied = stream.boxed();
    maps.create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap();
    assert_eq!(next(&mut applied).await.unwrap().name_any(), "a");
    // Several watch timeouts pass; the watcher reconnects from its bookmark each time.
    tokio::time::sleep(Duration::from_secs(200)).await;
    maps.create(&PostParams::default(), &config_map("b", &[]))
        .await
        .unwrap();
    assert_eq!(next(&mut applied).await.unwrap().name_any(), "b");
    assert_eq!(reader.state().len(), 2);
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

#[tokio::test(start_paused = true)]
async fn a_controller_reconciles_on_create_and_on_a_child_change() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let (reconciled, mut reconciles) = tokio::sync::mpsc::unbounded_channel::<String>();

    struct Ctx {
        client: Client,
        reconciled: tokio::sync::mpsc::UnboundedSender<String>,
    }
    async fn reconcile(map: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &map.namespace().unwrap());
        let mut child = pod(&format!("{}-pod", map.name_any()));
        child.metadata.owner_references = Some(vec![map.controller_owner_ref(&()).unwrap()]);
        match pods.create(&PostParams::default(), &child).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(error) => return Err(error.into()),
        }
        let _ = ctx.reconciled.send(map.name_any());
        Ok(Action::await_change())
    }
    fn error_policy(_: Arc<ConfigMap>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
        Action::requeue(Duration::from_secs(1))
    }

    let controller = Controller::new(maps.clone(), watcher::Config::default())
        .owns(pods.clone(), watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(Ctx { client, reconciled }))
        .for_each(|_| async {});
    tokio::spawn(controller);

    maps.create(&PostParams::default(), &config_map("m", &[]))
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, reconciles.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, "m");
    assert!(pods.get("m-pod").await.is_ok());
    // Drain the reconcile the pod's own creation triggers.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), reconciles.recv()).await {}

    let running = json!({"status": {"phase": "Running"}});
    pods.patch_status("m-pod", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .unwrap();
    let again = tokio::time::timeout(PATIENCE, reconciles.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, "m", "a change to an owned Pod reconciles its owner");
}

#[tokio::test(start_paused = true)]
async fn the_event_recorder_publishes_events() {
    let (server, _, client) = server();
    let schedules: Api<Schedule> = Api::default_namespaced(client.clone());
    let owner = schedules
        .create(&PostParams::default(), &schedule("s"))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "horolog".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "Fired".into(),
        note: Some("fired at noon".into()),
        action: "Fire".into(),
        secondary: None,
    };
    recorder.publish(&event, &owner.object_ref(&())).await.unwrap();
    recorder.publish(&event, &owner.object_ref(&())).await.unwrap();
    let events: Vec<Value> = server
        .snapshot()
        .into_iter()
        .filter(|o| o["apiVersion"] == "events.k8s.io/v1")
        .collect();
    assert_eq!(events.len(), 1, "the second publish patches the series");
    assert_eq!(events[0]["series"]["count"], 2);
    assert_eq!(events[0]["reason"], "Fired");
}

#[tokio::test(start_paused = true)]
async fn export_and_import_round_trip_the_state() {
    let (server, clock, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let original = maps
        .create(&PostParams::default(), &config_map("a", &[("x", "y")]))
        .await
        .unwrap();
    let saved = server.export();

    let crds = [Schedule::crd(), JobRun::crd()];
    let restored = ApiServer::import(Arc::new(clock), &crds, &saved).unwrap();
    assert_eq!(restored.snapshot(), server.snapshot());
    let maps: Api<ConfigMap> = Api::default_namespaced(restored.client());
    assert_eq!(maps.get("a").await.unwrap(), original);
    let next = maps
        .create(&PostParams::default(), &config_map("b", &[]))
        .await
        .unwrap();
    let version = |m: &ConfigMap| m.resource_version().unwrap().parse::<u64>().unwrap();
    assert!(
        version(&next) > version(&original),
        "resource versions continue after an import"
    );
    assert_ne!(next.uid(), original.uid());
}

#[tokio::test(start_paused = true)]
async fn change_subscribers_see_every_write() {
    let (server, _, client) = server();
    let mut changes = server.subscribe_changes();
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(&PostParams::default(), &pod("p")).await.unwrap();
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let created = changes.recv().await.unwrap();
    assert_eq!(
        (created.kind, created.resource.plural.as_str()),
        (ChangeKind::Added, "pods")
    );
    assert_eq!(changes.recv().await.unwrap().kind, ChangeKind::Deleted);
}

/// A hand-written CRD whose schema declares defaults at the root's `spec` and `status`, in a
/// nested object, in array items and in a map's values.
fn widget_crd() -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition
{
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "default": {},
                            "properties": {
                                "size": {"type": "string", "default": "small"},
                                "paused": {"type": "boolean"},
                                "limits": {"type": "object", "properties": {
                                    "retries": {"type": "integer", "default": 3},
                                }},
                                "ports": {"type": "array", "items": {"type": "object", "properties": {
                                    "port": {"type": "integer"},
                                    "protocol": {"type": "string", "default": "TCP"},
                                }}},
                                "weights": {"type": "object", "additionalProperties": {
                                    "type": "object",
                                    "properties": {"weight": {"type": "integer", "default": 1}},
                                }},
                            },
                        },
                        "status": {
                            "type": "object",
                            "default": {"phase": "Pending"},
                            "properties": {
                                "phase": {"type": "string"},
                                "ready": {"type": "integer", "default": 0},
                            },
                        },
                    },
                }},
            }],
        },
    }))
    .unwrap()
}

fn widgets(client: Client) -> Api<kube::api::DynamicObject> {
    let resource = kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    Api::default_namespaced_with(client, &resource)
}

fn widget(name: &str, spec: Value) -> kube::api::DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
        "status": {"phase": "Done"},
    }))
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn crd_schema_defaults_fill_missing_fields_and_the_status_of_a_fresh_object() {
    let clock = ManualClock::new(start());
    let server = ApiServer::with_crds(Arc::new(clock), &[widget_crd()]);
    let widgets = widgets(server.client());
    let spec = json!({
        "limits": {},
        "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}],
        "weights": {"a": {}, "b": {"weight": 7}},
    });
    let created = widgets
        .create(&PostParams::default(), &widget("w", spec))
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"],
        json!({
            "size": "small",
            "limits": {"retries": 3},
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "weights": {"a": {"weight": 1}, "b": {"weight": 7}},
        })
    );
    assert_eq!(
        created.data["status"],
        json!({"phase": "Pending", "ready": 0}),
        "the sent status is dropped, then defaulted, as a real server shows a fresh object"
    );
    assert_eq!(widgets.get("w").await.unwrap().data, created.data);

    let bare = widgets
        .create(&PostParams::default(), &widget("bare", Value::Null))
        .await
        .unwrap();
    assert_eq!(
        bare.data["spec"],
        json!({"size": "small"}),
        "a null spec gets its default"
    );

    let resize = json!({"spec": {"size": null, "limits": null}});
    let patched = widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&resize))
        .await
        .unwrap();
    assert_eq!(
        patched.data["spec"]["size"], "small",
        "a removed field is defaulted again"
    );
    assert_eq!(
        patched.data["spec"].get("limits"),
        None,
        "no default, so it stays removed"
    );
    let status = json!({"status": {"phase": "Running"}});
    let running = widgets
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(running.data["status"], json!({"phase": "Running", "ready": 0}));
    let mut replaced = running.clone();
    replaced.data["spec"] = json!({"size": "large"});
    let replaced = widgets
        .replace("w", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(replaced.data["spec"], json!({"size": "large"}));
}

#[tokio::test(start_paused = true)]
async fn a_crd_created_through_the_api_is_established_and_defaults_its_objects() {
    let (_, _, client) = server();
    let crds: Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = Api::all(client.clone());
    let crd = crds.create(&PostParams::default(), &widget_crd()).await.unwrap();
    let status = crd.status.expect("a CRD's status");
    let established = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Established")
        .expect("an Established condition");
    assert_eq!(
        established.status, "True",
        "served at once, so Established at once"
    );
    assert_eq!(
        status.accepted_names.map(|n| n.plural),
        Some(widget_crd().spec.names.plural)
    );
    let created = widgets(client)
        .create(&PostParams::default(), &widget("w", json!({})))
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["size"], "small");
    assert_eq!(created.data["status"]["phase"], "Pending");
}

#[tokio::test(start_paused = true)]
async fn jobs_and_cronjobs_are_stored_with_a_status_subresource() {
    use k8s_openapi::api::batch::v1::{CronJob, Job};
    let (server, _, client) = server();
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox"}],
        }}},
        "status": {"active": 1},
    }))
    .unwrap();
    let created = jobs.create(&PostParams::default(), &job).await.unwrap();
    assert_eq!(created.status, None, "a create drops the status");
    let succeeded = json!({"status": {"succeeded": 1}});
    let done = jobs
        .patch_status("j", &PatchParams::default(), &Patch::Merge(&succeeded))
        .await
        .unwrap();
    assert_eq!(done.status.unwrap().succeeded, Some(1));
    assert_eq!(
        done.metadata.generation,
        Some(1),
        "a status write is not a spec change"
    );

    let cronjobs: Api<CronJob> = Api::default_namespaced(client);
    let cronjob: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox"}],
        }}}}},
    }))
    .unwrap();
    cronjobs.create(&PostParams::default(), &cronjob).await.unwrap();
    let listed = cronjobs.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        server.snapshot().iter().all(|o| o["kind"] != "Pod"),
        "no controller: a Job makes no Pods"
    );
}

fn scheduled_pod(name: &str, grace: Option<i64>) -> Pod {
    let mut pod = pod(name);
    let spec = pod.spec.as_mut().unwrap();
    spec.node_name = Some("node-1".into());
    spec.termination_grace_period_seconds = grace;
    pod
}

fn deletion_of(pod: &Pod) -> (Option<String>, Option<i64>) {
    (
        pod.metadata.deletion_timestamp.as_ref().map(|t| t.0.to_string()),
        pod.metadata.deletion_grace_period_seconds,
    )
}

#[tokio::test(start_paused = true)]
async fn deleting_a_scheduled_pod_waits_for_a_delete_with_grace_zero() {
    let (_, clock, client) = server();
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(&PostParams::default(), &scheduled_pod("p", None))
        .await
        .unwrap();
    clock.advance(TimeDelta::seconds(10));

    let deleting = pods
        .delete("p", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the pod is kept");
    assert_eq!(
        deletion_of(&deleting),
        (Some("2026-03-01T12:00:40Z".into()), Some(30)),
        "due at now + the default 30 s"
    );
    let running = json!({"status": {"phase": "Running"}});
    pods.patch_status("p", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .unwrap();
    assert!(
        pods.get("p").await.is_ok(),
        "a status write does not end the grace period"
    );

    let shorter = pods
        .delete("p", &DeleteParams::default().grace_period(5))
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        deletion_of(&shorter),
        (Some("2026-03-01T12:00:15Z".into()), Some(5)),
        "a later delete may shorten the grace period"
    );
    let longer = pods
        .delete("p", &DeleteParams::default().grace_period(60))
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(deletion_of(&longer), deletion_of(&shorter), "but not lengthen it");

    let confirmed = pods
        .delete("p", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(confirmed.is_left(), "the last state comes back");
    assert!(api_error(pods.get("p").await).is_not_found());
}

#[tokio::test(start_paused = true)]
async fn pod_grace_periods_come_from_the_delete_then_the_pod_and_finished_pods_go_at_once() {
    let (_, _, client) = server();
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(&PostParams::default(), &scheduled_pod("own", Some(5)))
        .await
        .unwrap();
    let deleting = pods
        .delete("own", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(deleting.metadata.deletion_grace_period_seconds, Some(5));

    pods.create(&PostParams::default(), &scheduled_pod("asked", Some(5)))
        .await
        .unwrap();
    let deleting = pods
        .delete("asked", &DeleteParams::default().grace_period(2))
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(deleting.metadata.deletion_grace_period_seconds, Some(2));

    pods.create(&PostParams::default(), &scheduled_pod("done", None))
        .await
        .unwrap();
    let succeeded = json!({"status": {"phase": "Succeeded"}});
    pods.patch_status("done", &PatchParams::default(), &Patch::Merge(&succeeded))
        .await
        .unwrap();
    pods.delete("done", &DeleteParams::default()).await.unwrap();
    assert!(api_error(pods.get("done").await).is_not_found());

    pods.create(&PostParams::default(), &pod("unscheduled"))
        .await
        .unwrap();
    pods.delete("unscheduled", &DeleteParams::default())
        .await
        .unwrap();
    assert!(api_error(pods.get("unscheduled").await).is_not_found());
}

#[tokio::test(start_paused = true)]
async fn garbage_collection_deletes_a_scheduled_pod_gracefully() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client);
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await
        .unwrap();
    let mut child = scheduled_pod("child", Some(10));
    child.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
    pods.create(&PostParams::default(), &child).await.unwrap();

    maps.delete("owner", &DeleteParams::default()).await.unwrap();
    let deleting = pods.get("child").await.unwrap();
    assert_eq!(deleting.metadata.deletion_grace_period_seconds, Some(10));
    pods.delete("child", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(api_error(pods.get("child").await).is_not_found());
}

#[tokio::test(start_paused = true)]
async fn a_delete_with_a_failed_precondition_is_a_conflict_and_deletes_nothing() {
    let (_, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let first = maps
        .create(&PostParams::default(), &config_map("named", &[]))
        .await
        .unwrap();
    maps.delete("named", &DeleteParams::default()).await.unwrap();
    let again = maps
        .create(&PostParams::default(), &config_map("named", &[]))
        .await
        .unwrap();
    let with = |uid: Option<String>, version: Option<String>| DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid,
            resource_version: version,
        }),
        ..DeleteParams::default()
    };
    let stale_uid = api_error(maps.delete("named", &with(first.uid(), None)).await);
    assert_eq!((stale_uid.code, stale_uid.reason.as_str()), (409, "Conflict"));
    assert!(
        stale_uid
            .message
            .contains("Precondition failed: UID in precondition"),
        "{}",
        stale_uid.message
    );
    let stale_version = api_error(maps.delete("named", &with(None, Some("1".into()))).await);
    assert_eq!(stale_version.code, 409);
    assert!(
        stale_version
            .message
            .contains("ResourceVersion in precondition: 1")
    );
    assert_eq!(maps.get("named").await.unwrap().uid(), again.uid(), "still there");
    maps.delete("named", &with(again.uid(), again.resource_version()))
        .await
        .unwrap();
    assert!(api_error(maps.get("named").await).is_not_found());
}

#[tokio::test(start_paused = true)]
async fn held_garbage_collection_leaves_dependents_until_released() {
    let (server, _, client) = server();
    let maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client);
    for (owner, child) in [("owner", "child"), ("orphaner", "orphan")] {
        let owner = maps
            .create(&PostParams::default(), &config_map(owner, &[]))
            .await
            .unwrap();
        let mut child = pod(child);
        child.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
        pods.create(&PostParams::default(), &child).await.unwrap();
    }
    server.hold_garbage_collection();
    maps.delete("owner", &DeleteParams::background()).await.unwrap();
    maps.delete("orphaner", &DeleteParams::orphan()).await.unwrap();
    assert!(api_error(maps.get("owner").await).is_not_found());
    assert_eq!(pods.get("child").await.unwrap().owner_references().len(), 1);
    assert_eq!(pods.get("orphan").await.unwrap().owner_references().len(), 1);
    server.release_garbage_collection();
    assert!(pods.get("orphan").await.unwrap().owner_references().is_empty());
    let child = pods.get("child").await;
    assert!(
        child.as_ref().is_err()
            || child
                .as_ref()
                .is_ok_and(|p| p.metadata.deletion_timestamp.is_some()),
        "collected: {child:?}"
    );
}
