//! A scale smoke test of the controllers: 2,000 Schedules on the in-process API server for three
//! virtual minutes (tokio paused time). Every fire time must produce exactly one JobRun, the
//! writes per JobRun must stay a small constant, and nothing may LIST per reconcile.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use horolog::api::{JobRun, Schedule};
use horolog::clock::TokioClock;
use horolog::controller::{self, ControllerConfig};
use horolog_memserver::ApiServer;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// How many Schedules; each fires every minute, at a second of the minute of its own.
const SCHEDULES: usize = 2_000;
/// The namespace of everything.
const NS: &str = "default";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// Schedule `i`: every 60s from `t0 + 60s + (i mod 60)s`, so the fires spread over the minute.
fn schedule(i: usize) -> Schedule {
    let start = t0() + TimeDelta::seconds(60 + (i % 60) as i64);
    serde_json::from_value(json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": format!("s{i:04}"), "namespace": NS},
        "spec": {
            "trigger": {"interval": "60s", "startTime": start.to_rfc3339()},
            "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
            }}}},
        },
    }))
    .unwrap_or_else(|err| panic!("schedule {i}: {err}"))
}

/// Requests by kind, e.g. `POST jobruns`, `PATCH schedules/status`, `LIST jobruns`, `WATCH pods`.
type Requests = Arc<Mutex<BTreeMap<String, usize>>>;

/// What a request does to what: the verb (LIST and WATCH told apart from GET) and the resource
/// with its subresource.
fn request_kind(method: &http::Method, uri: &http::Uri) -> String {
    let segments: Vec<&str> = uri.path().split('/').collect();
    let Some(at) = segments.iter().position(|s| *s == "namespaces") else {
        return format!("{method} {}", uri.path());
    };
    let resource = segments.get(at + 2).copied().unwrap_or("namespaces");
    let named = segments.get(at + 3).is_some();
    let verb = match (method.as_str(), named) {
        ("GET", false) if uri.query().is_some_and(|q| q.contains("watch=true")) => "WATCH",
        ("GET", false) => "LIST",
        (verb, _) => verb,
    };
    match segments.get(at + 4) {
        Some(subresource) => format!("{verb} {resource}/{subresource}"),
        None => format!("{verb} {resource}"),
    }
}

/// A client of `server` that counts its requests by [`request_kind`].
fn counting_client(server: ApiServer) -> (Client, Requests) {
    let requests: Requests = Arc::default();
    let log = requests.clone();
    let service = tower::ServiceBuilder::new()
        .map_request(move |request: http::Request<kube::client::Body>| {
            let kind = request_kind(request.method(), request.uri());
            *log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(kind)
                .or_default() += 1;
            request
        })
        .service(server);
    (Client::new(service, NS), requests)
}

fn count(requests: &BTreeMap<String, usize>, verbs: &[&str]) -> usize {
    requests
        .iter()
        .filter(|(kind, _)| verbs.iter().any(|verb| kind.starts_with(&format!("{verb} "))))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(start_paused = true)]
async fn two_thousand_minute_schedules_fire_each_fire_time_once_with_bounded_writes() {
    let wall = Instant::now();
    let clock = TokioClock::starting_at(t0());
    let server = ApiServer::with_crds(Arc::new(clock.clone()), &horolog::crd::crds());
    let setup = server.client();
    let schedules: Api<Schedule> = Api::namespaced(setup.clone(), NS);
    for i in 0..SCHEDULES {
        schedules
            .create(&PostParams::default(), &schedule(i))
            .await
            .unwrap_or_else(|err| panic!("create schedule {i}: {err}"));
    }

    let (client, requests) = counting_client(server.clone());
    let config = ControllerConfig::default().in_namespace(NS);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(controller::run(client, config, Arc::new(clock.clone()), async {
        let _ = stopped.await;
    }));
    // Fire times at 60+s, 120+s and 180+s for s in 0..60: all three are due by t0 + 239s,
    // the fourth (240+s) is not for s > 0, and s = 0 has not been reached either.
    tokio::time::sleep(Duration::from_secs(239)).await;
    // Let the last fires' JobRuns, Pods and statuses land.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    let _ = operator.await;

    let runs: Vec<JobRun> = Api::<JobRun>::namespaced(setup.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|err| panic!("list jobruns: {err}"))
        .items;
    let mut fires: HashMap<String, Vec<i64>> = HashMap::new();
    let mut worst_delay = TimeDelta::zero();
    for run in &runs {
        let fire = run
            .spec
            .fire_time
            .unwrap_or_else(|| panic!("{} has no fire time", run.name_any()));
        let schedule = run.spec.schedule_name.clone().unwrap_or_default();
        fires
            .entry(schedule)
            .or_default()
            .push((fire - t0()).num_seconds());
        let created = run
            .creation_timestamp()
            .map(|t| t.0.as_second())
            .unwrap_or_default();
        worst_delay = worst_delay.max(TimeDelta::seconds(created - fire.timestamp()));
    }
    for i in 0..SCHEDULES {
        let name = format!("s{i:04}");
        let second = (i % 60) as i64;
        let mut got = fires.remove(&name).unwrap_or_default();
        got.sort_unstable();
        assert_eq!(
            got,
            vec![60 + second, 120 + second, 180 + second],
            "{name}: one JobRun per fire time, none missed, none twice"
        );
    }
    assert!(
        fires.is_empty(),
        "JobRuns of unknown Schedules: {:?}",
        fires.keys()
    );
    let missed: i64 = schedules
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|err| panic!("list schedules: {err}"))
        .items
        .iter()
        .map(|s| s.status.as_ref().map_or(0, |status| status.missed_fire_times))
        .sum();
    assert_eq!(missed, 0, "no Schedule counted a missed fire time");

    let requests = requests.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let writes = count(&requests, &["POST", "PUT", "PATCH", "DELETE"]);
    let lists = count(&requests, &["LIST"]);
    let per_run = writes as f64 / runs.len() as f64;
    eprintln!(
        "{SCHEDULES} schedules, {} JobRuns in {:.1?} wall; worst creation delay {}s (virtual); \
         {writes} writes ({per_run:.2} per JobRun), {lists} LISTs; by kind: {requests:#?}",
        runs.len(),
        wall.elapsed(),
        worst_delay.num_seconds(),
    );
    assert!(
        worst_delay <= TimeDelta::seconds(1),
        "JobRuns created late: {worst_delay}"
    );
    // Per fire: the JobRun, its Pod (created in the same reconcile) and the Schedule's status;
    // no Events (--events warnings), and no JobRun status (its Pod never runs here: there is
    // no kubelet). Plus one status write per Schedule on its first pass.
    assert!(
        writes <= 3 * runs.len() + SCHEDULES,
        "{writes} writes for {} JobRuns: {requests:#?}",
        runs.len()
    );
    // Reconciles read the caches, never LIST. The LISTs are the CRD checks at start (5) and
    // the watchers' initial LISTs (JobRuns, Pods, Tasks, Backfills, Calendars, and Schedules
    // in pages of 500).
    let bound = 5 + 5 + SCHEDULES.div_ceil(500);
    assert!(lists <= bound, "{lists} LISTs: {requests:#?}");
}
