//! Benchmarks of the in-memory API server's request path (what `horolog-dev sandbox` spends its
//! CPU on under `horolog-dev load`), at the scale of a 10,000-Schedule load test: a store holding
//! 10,000 Schedules, 30,000 JobRuns, 3,000 Pods and 1,000 Events, and six open watches drained
//! after every request, as the operator (Schedules, JobRuns, Pods by `horolog.dev/jobrun`), the
//! load tool (JobRuns, Pods) and the kubelet stand-in (Pods) hold them.
//!
//! Each benchmark times one request kind, including the watch events it makes the server
//! write: create JobRun, merge-patch JobRun `/status` with a resourceVersion precondition,
//! create Pod, create Event, get Pod, delete JobRun (its Pod goes with it by garbage collection).
//! Requests go straight to the server's tower `Service`, without a socket or a client.
//!
//! Run: `cargo bench --bench apiserver -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::Criterion;
use futures::FutureExt;
use horolog_core::clock::ManualClock;
use horolog_memserver::{ApiServer, ResourceType, ResponseBody};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tower::Service;

const NS: &str = "bench";
const SCHEDULES: usize = 10_000;
const JOBRUNS: usize = 30_000;
const PODS: usize = 3_000;
const EVENTS: usize = 1_000;
const JOBRUNS_PATH: &str = "/apis/horolog.dev/v1alpha1/namespaces/bench/jobruns";
const PODS_PATH: &str = "/api/v1/namespaces/bench/pods";

/// A filled server with open watches, driven on a single-threaded runtime.
struct Fixture {
    runtime: Runtime,
    server: ApiServer,
    watches: Vec<ResponseBody>,
    /// The uid of each stored JobRun, by index, for owner references.
    jobrun_uids: Vec<String>,
    /// Makes the names of objects created during a benchmark unique.
    serial: usize,
    /// How long the last request took, from the call to its last watch line (building the
    /// request and reading the response are not counted).
    elapsed: Duration,
}

fn request(method: Method, uri: &str, content_type: &str, body: Option<&Value>) -> Request<Full<Bytes>> {
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(body))
        .expect("a valid request")
}

fn schedule(i: usize) -> Value {
    json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": format!("s-{i}"), "labels": {"horolog.dev/bench": "run-1"}},
        "spec": {
            "trigger": {"cron": {"second": format!("{}", i % 60), "minute": "*"}},
            "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "true"]}],
            }}}},
        },
    })
}

fn jobrun(name: &str, schedule: usize, schedule_uid: &str) -> Value {
    json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "JobRun",
        "metadata": {
            "name": name,
            "labels": {"horolog.dev/schedule": format!("s-{schedule}"), "horolog.dev/bench": "run-1"},
            "ownerReferences": [{
                "apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule", "name": format!("s-{schedule}"),
                "uid": schedule_uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "scheduleName": format!("s-{schedule}"),
            "fireTime": "2026-03-01T12:00:00Z",
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "true"]}],
            }},
        },
    })
}

fn pod(name: &str, jobrun: &str, jobrun_uid: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"horolog.dev/jobrun": jobrun, "horolog.dev/schedule": "s-1", "horolog.dev/bench": "run-1"},
            "annotations": {"horolog.dev/fire-time": "2026-03-01T12:00:00Z"},
            "ownerReferences": [{
                "apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun", "name": jobrun,
                "uid": jobrun_uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "true"]}],
        },
    })
}

fn event(name: &str, jobrun: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2026-03-01T12:00:00.000000Z",
        "action": "Fire",
        "reason": "Fired",
        "note": "fired for 2026-03-01T12:00:00Z",
        "type": "Normal",
        "reportingController": "horolog",
        "reportingInstance": "horolog-0",
        "regarding": {"apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun", "name": jobrun, "namespace": NS},
    })
}

fn uid_of(body: &Bytes) -> String {
    let object: Value = serde_json::from_slice(body).expect("a JSON response");
    object["metadata"]["uid"].as_str().expect("a uid").to_string()
}

fn version_of(body: &Bytes) -> String {
    let object: Value = serde_json::from_slice(body).expect("a JSON response");
    object["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_string()
}

/// The server, also serving resources shaped like horolog's Schedules and JobRuns.
fn with_horolog_kinds(server: ApiServer) -> ApiServer {
    for (plural, kind) in [("schedules", "Schedule"), ("jobruns", "JobRun")] {
        server.register(ResourceType {
            group: "horolog.dev".into(),
            version: "v1alpha1".into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced: true,
            status_subresource: true,
            schema: None,
        });
    }
    server
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let clock = ManualClock::new(chrono::DateTime::UNIX_EPOCH);
        let mut fixture = Fixture {
            runtime,
            server: with_horolog_kinds(ApiServer::new(Arc::new(clock))),
            watches: Vec::new(),
            jobrun_uids: Vec::new(),
            serial: 0,
            elapsed: Duration::ZERO,
        };
        let schedule_uids: Vec<String> = (0..SCHEDULES)
            .map(|i| {
                let path = "/apis/horolog.dev/v1alpha1/namespaces/bench/schedules";
                uid_of(&fixture.send_ok(Method::POST, path, Some(&schedule(i))))
            })
            .collect();
        fixture.jobrun_uids = (0..JOBRUNS)
            .map(|i| {
                let body = jobrun(&format!("r-{i}"), i % SCHEDULES, &schedule_uids[i % SCHEDULES]);
                uid_of(&fixture.send_ok(Method::POST, JOBRUNS_PATH, Some(&body)))
            })
            .collect();
        for i in 0..PODS {
            let body = pod(
                &format!("r-{i}-1"),
                &format!("r-{i}"),
                &fixture.jobrun_uids[i].clone(),
            );
            fixture.send_ok(Method::POST, PODS_PATH, Some(&body));
        }
        for i in 0..EVENTS {
            let body = event(&format!("r-{i}.1"), &format!("r-{i}"));
            fixture.send_ok(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/bench/events",
                Some(&body),
            );
        }
        let version = fixture.server.resource_version();
        let watch = |path: &str, selector: &str| {
            format!(
                "{path}?watch=true&resourceVersion={version}&allowWatchBookmarks=true&timeoutSeconds=3600{selector}"
            )
        };
        for uri in [
            watch("/apis/horolog.dev/v1alpha1/schedules", ""),
            watch("/apis/horolog.dev/v1alpha1/jobruns", ""),
            watch("/api/v1/pods", "&labelSelector=horolog.dev%2Fjobrun"),
            watch(JOBRUNS_PATH, "&labelSelector=horolog.dev%2Fbench%3Drun-1"),
            watch(PODS_PATH, "&labelSelector=horolog.dev%2Fbench%3Drun-1"),
            watch("/api/v1/pods", ""),
        ] {
            let mut server = fixture.server.clone();
            let response = fixture
                .runtime
                .block_on(server.call(request(Method::GET, &uri, "application/json", None)))
                .expect("no faults are set");
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            fixture.watches.push(response.into_body());
        }
        fixture
    }

    /// Sends one request, reads its response, and lets every watch write what it caused.
    fn send(
        &mut self,
        method: Method,
        uri: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Bytes) {
        let request = request(method, uri, content_type, body);
        let mut server = self.server.clone();
        let watches = &mut self.watches;
        let (status, body, elapsed) = self.runtime.block_on(tokio::task::unconstrained(async move {
            let start = Instant::now();
            let response = server.call(request).await.expect("no faults are set");
            let status = response.status();
            let body = response.into_body().collect().await.map(|c| c.to_bytes());
            let body = body.unwrap_or_else(|never| match never {});
            for watch in watches.iter_mut() {
                while let Some(Some(frame)) = watch.frame().now_or_never() {
                    black_box(frame.ok());
                }
            }
            (status, body, start.elapsed())
        }));
        self.elapsed = elapsed;
        (status, body)
    }

    fn send_ok(&mut self, method: Method, uri: &str, body: Option<&Value>) -> Bytes {
        let (status, body) = self.send(method, uri, "application/json", body);
        assert!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    fn next_name(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}-{}", self.serial)
    }
}

/// Times `iters` calls of `request`, each with its own fresh index.
fn timed(fixture: &mut Fixture, iters: u64, mut request: impl FnMut(&mut Fixture) -> Duration) -> Duration {
    (0..iters).map(|_| request(fixture)).sum()
}

fn requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("apiserver");

    let mut fixture = Fixture::new();
    group.bench_function("create JobRun", |b| {
        b.iter_custom(|iters| {
            timed(&mut fixture, iters, |f| {
                let name = f.next_name("new");
                let body = jobrun(&name, 1, "00000000-0000-4000-8000-000000000001");
                f.send_ok(Method::POST, JOBRUNS_PATH, Some(&body));
                f.elapsed
            })
        })
    });

    let mut fixture = Fixture::new();
    group.bench_function("merge-patch JobRun status", |b| {
        let mut versions: Vec<Option<String>> = vec![None; 1000];
        b.iter_custom(|iters| {
            timed(&mut fixture, iters, |f| {
                f.serial += 1;
                let i = f.serial % versions.len();
                let uri = format!("{JOBRUNS_PATH}/r-{i}/status");
                let version = match versions[i].take() {
                    Some(version) => version,
                    None => version_of(&f.send_ok(Method::GET, &uri, None)),
                };
                let patch = json!({
                    "metadata": {"resourceVersion": version},
                    "status": {"phase": "Running", "podName": format!("r-{i}-1"), "attempts": 1,
                               "message": format!("attempt {}", f.serial)},
                });
                let (status, body) =
                    f.send(Method::PATCH, &uri, "application/merge-patch+json", Some(&patch));
                let elapsed = f.elapsed;
                assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
                versions[i] = Some(version_of(&body));
                elapsed
            })
        })
    });

    let mut fixture = Fixture::new();
    group.bench_function("create Pod", |b| {
        b.iter_custom(|iters| {
            timed(&mut fixture, iters, |f| {
                let name = f.next_name("pod");
                let i = f.serial % JOBRUNS;
                let body = pod(&name, &format!("r-{i}"), &f.jobrun_uids[i].clone());
                f.send_ok(Method::POST, PODS_PATH, Some(&body));
                f.elapsed
            })
        })
    });

    let mut fixture = Fixture::new();
    group.bench_function("create Event", |b| {
        b.iter_custom(|iters| {
            timed(&mut fixture, iters, |f| {
                let name = f.next_name("event");
                let body = event(&name, "r-1");
                f.send_ok(
                    Method::POST,
                    "/apis/events.k8s.io/v1/namespaces/bench/events",
                    Some(&body),
                );
                f.elapsed
            })
        })
    });

    group.bench_function("get Pod", |b| {
        b.iter_custom(|iters| {
            timed(&mut fixture, iters, |f| {
                f.serial += 1;
                let uri = format!("{PODS_PATH}/r-{}-1", f.serial % PODS);
                f.send_ok(Method::GET, &uri, None);
                f.elapsed
            })
        })
    });

    group.bench_function("delete JobRun and its Pod", |b| {
        b.iter_custom(|iters| {
            timed(&mut fixture, iters, |f| {
                let name = f.next_name("doomed");
                let created = f.send_ok(Method::POST, JOBRUNS_PATH, Some(&jobrun(&name, 1, "none")));
                let pod_body = pod(&format!("{name}-1"), &name, &uid_of(&created));
                f.send_ok(Method::POST, PODS_PATH, Some(&pod_body));
                let uri = format!("{JOBRUNS_PATH}/{name}");
                let options = json!({"propagationPolicy": "Background"});
                f.send_ok(Method::DELETE, &uri, Some(&options));
                f.elapsed
            })
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    requests(&mut criterion);
    criterion.final_summary();
}
