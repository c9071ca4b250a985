//! Benchmarks of the Schedule reconciler at scale, without a cluster:
//!
//! - one pass over 10,000 and 100,000 Schedules, each with exactly one fire time due: compile
//!   the trigger, [`decide`] (plan, JobRun to create, new status) and the status diff that
//!   decides whether to write — everything a reconcile does besides its API calls;
//! - finding one Schedule's JobRuns among 30,000: the run index against a full store scan;
//! - memory held per Schedule by the operator's caches, measured with a counting allocator.
//!
//! Run: `cargo bench --bench reconcile`; results and machine in BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BenchmarkId, Criterion, Throughput};
use horolog::api::{JobRun, Schedule};
use horolog::clock::ManualClock;
use horolog::controller::schedule::decide::{self, Decision, Input, Settings, TaskLookup};
use horolog::controller::trim::{trim_jobrun, trim_schedule};
use horolog::controller::{Context, ControllerConfig, empty_stores, status_diff};
use horolog::pod::{pod_for, template_of};
use horolog_core::plan::CatchUp;
use horolog_core::trigger::Trigger;
use horolog_memserver::ApiServer;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::ResourceExt;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

/// Counts the bytes and allocations live in the process: the bench binary's allocator, so the
/// memory section measures what holding the caches costs, not an estimate from JSON sizes.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_ALLOCATIONS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged; the counters only observe.
// The one unsafe code in the workspace (which denies it): a global allocator cannot be written
// without it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            LIVE_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            LIVE_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes through us).
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        LIVE_ALLOCATIONS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes and allocations live now.
fn live() -> (isize, isize) {
    (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_ALLOCATIONS.load(Ordering::Relaxed),
    )
}

/// How many JobRuns each Schedule keeps (finished runs within the history limits).
const RUNS_PER_SCHEDULE: usize = 3;

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// When every Schedule was created.
fn created() -> DateTime<Utc> {
    t("2026-01-01T00:00:00Z")
}

/// Around when the measured pass runs: each Schedule's pass is just after its next fire time
/// after this instant.
fn pass_base() -> DateTime<Utc> {
    t("2026-03-02T10:00:00Z")
}

/// The trigger of Schedule `i`: a quarter each of every-minute cron with a spread second,
/// 6-field cron every 5 minutes, interval 1s..5m with a spread start, and an hourly cron in
/// Europe/Berlin (a DST zone).
fn trigger_of(i: usize) -> Value {
    let second = i % 60;
    let minute = (i / 60) % 60;
    match i % 4 {
        0 => json!({"cronFields": {"second": second.to_string()}}),
        1 => json!({"cron": format!("{second} {}/5 * * * *", minute % 5)}),
        2 => json!({
            "interval": format!("{}s", 1 + (i * 7) % 300),
            "startTime": (created() + TimeDelta::seconds(second as i64)).to_rfc3339(),
        }),
        _ => json!({"cron": format!("{minute} * * * *"), "timezone": "Europe/Berlin"}),
    }
}

/// Schedule `i` as a watch event delivers it (before its first status): a realistic spec
/// with a pod template, and the annotation `kubectl apply` leaves on what it applies.
fn schedule_json(i: usize) -> Value {
    let name = format!("report-{i:06}");
    let namespace = format!("team-{:02}", i % 50);
    let spec = json!({
        "trigger": trigger_of(i),
        "coalesce": "Latest",
        "misfireGraceTime": "5m",
        "jobTemplate": {
            "metadata": {"labels": {"app.kubernetes.io/part-of": "reports", "team": namespace}},
            "spec": {
                "backoffLimit": 1,
                "resultTTL": "24h",
                "template": {"spec": {
                    "serviceAccountName": "reports",
                    "containers": [{
                        "name": "main",
                        "image": "ghcr.io/example/reports:1.14.2",
                        "command": ["/bin/report", "--format=json", "--since=1h"],
                        "env": [
                            {"name": "REPORT_NAME", "value": name},
                            {"name": "LOG_LEVEL", "value": "info"},
                            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
                        ],
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                    }],
                }},
            },
        },
    });
    let applied = json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "Schedule",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("6f1c2a9e-0000-4000-8000-{i:012}"),
            "resourceVersion": (1_000_000 + i).to_string(),
            "generation": 1,
            "creationTimestamp": created().to_rfc3339(),
            "labels": {"app.kubernetes.io/part-of": "reports"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied.to_string()},
        },
        "spec": spec,
    })
}

fn compile(schedule: &Schedule) -> Trigger {
    Trigger::compile(&schedule.spec.trigger, created())
        .unwrap_or_else(|fault| panic!("benchmark trigger does not compile: {fault}"))
}

/// The decision of one reconcile of `schedule` with its runs at `now`, with the operator's
/// default settings.
fn decide_at(schedule: &Schedule, trigger: &Trigger, runs: &[Arc<JobRun>], now: DateTime<Utc>) -> Decision {
    let settings = Settings {
        catch_up: CatchUp::default(),
        default_grace: None,
        status_delay: TimeDelta::seconds(60),
        stage_ahead: TimeDelta::zero(),
    };
    decide::decide(Input {
        schedule,
        trigger: Ok(trigger),
        runs,
        gone: &std::collections::HashSet::new(),
        task: TaskLookup::NotUsed,
        now,
        interrupted: false,
        settings: &settings,
        calendars_changed_at: None,
    })
}

/// The `k`-th fire time after `from`.
fn fire_after(trigger: &Trigger, from: DateTime<Utc>, k: usize) -> DateTime<Utc> {
    let mut fire = Some(from);
    for _ in 0..k {
        fire = trigger.next_after(fire);
    }
    fire.unwrap_or_else(|| panic!("benchmark trigger ran out of fire times"))
}

/// `run` as the JobRun watch delivers it once its Pod has succeeded.
fn finished(run: &JobRun, uid: usize) -> JobRun {
    let mut value = serde_json::to_value(run).unwrap_or_else(|err| panic!("jobrun to json: {err}"));
    let fire = run.spec.fire_time.unwrap_or_default();
    let name = run.name_any();
    value["metadata"]["uid"] = json!(format!("0b7d4e12-0000-4000-8000-{uid:012}"));
    value["metadata"]["resourceVersion"] = json!((5_000_000 + uid).to_string());
    value["metadata"]["creationTimestamp"] = json!(fire.to_rfc3339());
    value["status"] = json!({
        "phase": "Succeeded",
        "reason": "Completed",
        "message": format!("pod {name}-1 exited 0"),
        "podName": format!("{name}-1"),
        "attempts": 1,
        "startTime": (fire + TimeDelta::seconds(2)).to_rfc3339(),
        "completionTime": (fire + TimeDelta::seconds(9)).to_rfc3339(),
        "duration": "7s",
        "exitCode": 0,
        "result": "{\"rows\": 1284}\n",
    });
    serde_json::from_value(value).unwrap_or_else(|err| panic!("jobrun from json: {err}"))
}

/// The Pod of `run` as a real API server returns it after it succeeded: the operator's Pod
/// plus the fields the server defaults and the kubelet reports (managedFields left out).
fn finished_pod(run: &JobRun, uid: usize) -> Pod {
    let template = template_of(run, None).unwrap_or_default();
    let pod = pod_for(run, &template, 1).unwrap_or_else(|err| panic!("pod for benchmark run: {err}"));
    let mut value = serde_json::to_value(&pod).unwrap_or_else(|err| panic!("pod to json: {err}"));
    let fire = run.spec.fire_time.unwrap_or_default();
    let at = |secs: i64| (fire + TimeDelta::seconds(secs)).to_rfc3339();
    value["metadata"]["uid"] = json!(format!("9a3f0c55-0000-4000-8000-{uid:012}"));
    value["metadata"]["resourceVersion"] = json!((9_000_000 + uid).to_string());
    value["metadata"]["creationTimestamp"] = json!(at(0));
    let spec = &mut value["spec"];
    spec["nodeName"] = json!("worker-7");
    spec["dnsPolicy"] = json!("ClusterFirst");
    spec["schedulerName"] = json!("default-scheduler");
    spec["securityContext"] = json!({});
    spec["terminationGracePeriodSeconds"] = json!(30);
    spec["enableServiceLinks"] = json!(true);
    spec["preemptionPolicy"] = json!("PreemptLowerPriority");
    spec["priority"] = json!(0);
    spec["tolerations"] = json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]);
    spec["volumes"] = json!([{"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}]);
    spec["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    spec["containers"][0]["terminationMessagePath"] = json!("/dev/termination-log");
    spec["containers"][0]["terminationMessagePolicy"] = json!("File");
    spec["containers"][0]["volumeMounts"] = json!([{
        "name": "kube-api-access-x7k2p",
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "readOnly": true,
    }]);
    let condition = |type_: &str, status: &str, secs: i64| json!({"type": type_, "status": status, "lastTransitionTime": at(secs), "lastProbeTime": null});
    value["status"] = json!({
        "phase": "Succeeded",
        "hostIP": "10.0.3.17",
        "hostIPs": [{"ip": "10.0.3.17"}],
        "podIP": "10.244.7.41",
        "podIPs": [{"ip": "10.244.7.41"}],
        "qosClass": "Burstable",
        "startTime": at(1),
        "conditions": [
            condition("PodReadyToStartContainers", "False", 9),
            condition("Initialized", "True", 1),
            condition("Ready", "False", 9),
            condition("ContainersReady", "False", 9),
            condition("PodScheduled", "True", 0),
        ],
        "containerStatuses": [{
            "name": "main",
            "image": "ghcr.io/example/reports:1.14.2",
            "imageID": "ghcr.io/example/reports@sha256:4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0",
            "containerID": "containerd://2b8f4c1e9d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c",
            "ready": false,
            "restartCount": 0,
            "started": false,
            "state": {"terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "message": "{\"rows\": 1284}\n",
                "startedAt": at(2),
                "finishedAt": at(9),
                "containerID": "containerd://2b8f4c1e9d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c",
            }},
            "lastState": {},
        }],
    });
    serde_json::from_value(value).unwrap_or_else(|err| panic!("pod from json: {err}"))
}

/// One Schedule in steady state: it has fired three times (three finished JobRuns and Pods),
/// its status says so, and its next fire time falls due at `now`.
struct Fixture {
    schedule: Schedule,
    runs: Vec<Arc<JobRun>>,
    pods: Vec<Pod>,
    now: DateTime<Utc>,
}

fn fixture(i: usize) -> Fixture {
    let mut schedule: Schedule = serde_json::from_value(schedule_json(i))
        .unwrap_or_else(|err| panic!("benchmark schedule from json: {err}"));
    let trigger = compile(&schedule);
    let first = fire_after(&trigger, pass_base(), 1);
    let mut runs = Vec::new();
    let mut fire = first;
    // Three earlier passes, each with one fire time due, leave the status the operator
    // would have written and the JobRuns it would have created.
    for k in 0..RUNS_PER_SCHEDULE {
        let next = fire_after(&trigger, fire, 1);
        let now = next + TimeDelta::milliseconds(100);
        let status = schedule.status.get_or_insert_default();
        status.cursor = Some(fire);
        let decision = decide_at(&schedule, &trigger, &runs, now);
        for run in &decision.create {
            runs.push(Arc::new(finished(run, i * RUNS_PER_SCHEDULE + k)));
        }
        schedule.status = Some(decision.status);
        fire = next;
    }
    let pods = runs
        .iter()
        .enumerate()
        .map(|(k, run)| finished_pod(run, i * RUNS_PER_SCHEDULE + k))
        .collect();
    let now = fire_after(&trigger, fire, 1) + TimeDelta::milliseconds(100);
    Fixture {
        schedule,
        runs,
        pods,
        now,
    }
}

/// One reconcile's pure work: compile, decide, and the diff that decides whether to write.
fn reconcile_pure(f: &Fixture) -> usize {
    let trigger = compile(&f.schedule);
    let decision = decide_at(&f.schedule, &trigger, &f.runs, f.now);
    let old = f.schedule.status.clone().unwrap_or_default();
    let diff = status_diff(&old, &decision.status);
    assert_eq!(decision.create.len(), 1, "exactly one fire time is due");
    decision.create.len() + usize::from(diff.is_some())
}

fn pass(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule pass");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for n in [10_000, 100_000] {
        let fixtures: Vec<Fixture> = (0..n).map(fixture).collect();
        let triggers: Vec<Trigger> = fixtures.iter().map(|f| compile(&f.schedule)).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("compile + decide + diff", n),
            &fixtures,
            |b, fixtures| b.iter(|| fixtures.iter().map(reconcile_pure).sum::<usize>()),
        );
        group.bench_with_input(BenchmarkId::new("decide only", n), &fixtures, |b, fixtures| {
            b.iter(|| {
                fixtures
                    .iter()
                    .zip(&triggers)
                    .map(|(f, t)| decide_at(&f.schedule, t, &f.runs, f.now).create.len())
                    .sum::<usize>()
            })
        });
        group.bench_with_input(BenchmarkId::new("compile only", n), &fixtures, |b, fixtures| {
            b.iter(|| {
                for f in fixtures {
                    black_box(compile(&f.schedule));
                }
            })
        });
    }
    group.finish();
}

/// The operator's watch caches and their indexes, filled the way `controller::run` fills
/// them (index first, then store, per event).
struct Caches {
    ctx: Context,
    schedules: Writer<Schedule>,
    jobruns: Writer<JobRun>,
}

fn caches() -> Caches {
    let clock = Arc::new(ManualClock::new(created()));
    let client = ApiServer::with_crds(clock.clone(), &horolog::crd::crds()).client();
    let (schedule_store, schedules) = reflector::store();
    let (jobrun_store, jobruns) = reflector::store();
    let stores = horolog::controller::Stores {
        schedules: schedule_store,
        jobruns: jobrun_store,
        ..empty_stores()
    };
    let ctx = Context::new(
        client,
        Reporter::from("bench"),
        clock,
        ControllerConfig::default(),
        stores,
    );
    let mut caches = Caches {
        ctx,
        schedules,
        jobruns,
    };
    // As after the first LIST of an empty cluster: the stores are ready and empty.
    let store = caches.ctx.stores.jobruns.clone();
    caches.ctx.runs.apply(&Event::Init, &store);
    caches.ctx.runs.apply(&Event::InitDone, &store);
    caches.jobruns.apply_watcher_event(&Event::Init);
    caches.jobruns.apply_watcher_event(&Event::InitDone);
    caches.schedules.apply_watcher_event(&Event::Init);
    caches.schedules.apply_watcher_event(&Event::InitDone);
    caches.ctx.pods.apply(&Event::Init);
    caches.ctx.pods.apply(&Event::InitDone);
    caches
}

fn add_jobrun(caches: &mut Caches, run: JobRun) {
    let event = Event::Apply(run);
    let store = caches.ctx.stores.jobruns.clone();
    caches.ctx.runs.apply(&event, &store);
    caches.jobruns.apply_watcher_event(&event);
}

/// Finding one Schedule's runs among 10,000 Schedules' (30,000 JobRuns).
fn lookup(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("tokio runtime: {err}"));
    // The kube client spawns its request buffer on the runtime it is created in.
    let _entered = runtime.enter();
    let n = 10_000;
    let mut caches = caches();
    let mut probe = None;
    for i in 0..n {
        let f = fixture(i);
        for run in &f.runs {
            add_jobrun(&mut caches, run.as_ref().clone());
        }
        if i == n / 2 {
            probe = Some(f.schedule);
        }
    }
    let Some(probe) = probe else { return };
    let store: Store<JobRun> = caches.ctx.stores.jobruns.clone();
    let mut group = c.benchmark_group("runs of one schedule among 30,000 JobRuns");
    group.bench_function("run index (Context::runs_of)", |b| {
        b.iter(|| caches.ctx.runs_of(black_box(&probe)).len())
    });
    // What runs_of did before the index: a predicate over the whole store.
    group.bench_function("full store scan", |b| {
        let uid = probe.uid();
        let namespace = probe.namespace();
        b.iter(|| {
            store
                .state_filter(|run| {
                    run.namespace() == namespace
                        && run
                            .owner_references()
                            .iter()
                            .any(|o| Some(&o.uid) == uid.as_ref())
                })
                .len()
        })
    });
    group.finish();
}

/// Prints the bytes the operator's caches hold per Schedule, part by part.
fn memory() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("tokio runtime: {err}"));
    let _entered = runtime.enter();
    let n = 10_000;
    let fixtures: Vec<Fixture> = (0..n).map(fixture).collect();
    let mut caches = caches();
    let mut triggers: Vec<Trigger> = Vec::with_capacity(n);
    let mut rows = Vec::new();
    let mut measure = |part: &str, fill: &mut dyn FnMut()| {
        let (bytes, allocations) = live();
        fill();
        let (bytes_after, allocations_after) = live();
        rows.push((
            part.to_string(),
            (bytes_after - bytes) as f64 / n as f64,
            (allocations_after - allocations) as f64 / n as f64,
        ));
    };
    measure("Schedule (with status) in the store", &mut || {
        for f in &fixtures {
            // A watch event carries a freshly decoded object; the store keeps a clone.
            caches
                .schedules
                .apply_watcher_event(&Event::Apply(trimmed(f.schedule.clone(), trim_schedule)));
        }
    });
    measure("3 JobRuns in the store + run index", &mut || {
        for f in &fixtures {
            for run in &f.runs {
                add_jobrun(&mut caches, trimmed(run.as_ref().clone(), trim_jobrun));
            }
        }
    });
    measure("3 finished Pods in the Pod index", &mut || {
        for f in &fixtures {
            for pod in &f.pods {
                caches.ctx.pods.apply(&Event::Apply(pod.clone()));
            }
        }
    });
    measure("compiled Trigger (if cached)", &mut || {
        triggers.extend(fixtures.iter().map(|f| compile(&f.schedule)));
    });
    let (schedule_json, run_json, pod_json) = fixtures.iter().fold((0, 0, 0), |(s, r, p), f| {
        let size = |v: Value| v.to_string().len();
        (
            s + size(serde_json::to_value(&f.schedule).unwrap_or_default()),
            r + f
                .runs
                .iter()
                .map(|run| size(serde_json::to_value(run.as_ref()).unwrap_or_default()))
                .sum::<usize>(),
            p + f
                .pods
                .iter()
                .map(|pod| size(serde_json::to_value(pod).unwrap_or_default()))
                .sum::<usize>(),
        )
    });
    println!(
        "memory held per Schedule ({n} Schedules, trimmed as controller::trim trims them; live bytes requested from the allocator):"
    );
    let mut total = (0.0, 0.0);
    for (part, bytes, allocations) in &rows {
        println!("  {part:<42} {bytes:>9.0} B in {allocations:>6.1} allocations");
        if !part.starts_with(' ') {
            total = (total.0 + bytes, total.1 + allocations);
        }
    }
    println!(
        "  {:<42} {:>9.0} B in {:>6.1} allocations",
        "total (the rows not indented)", total.0, total.1
    );
    println!(
        "  (inline struct sizes: Pod {} B, PodSpec {} B, Container {} B, JobRun {} B, Schedule {} B)",
        std::mem::size_of::<Pod>(),
        std::mem::size_of::<PodSpec>(),
        std::mem::size_of::<Container>(),
        std::mem::size_of::<JobRun>(),
        std::mem::size_of::<Schedule>()
    );
    println!(
        "  (JSON sizes for comparison: Schedule {} B, 3 JobRuns {} B, 3 Pods {} B)",
        schedule_json / n,
        run_json / n,
        pod_json / n
    );
    black_box((&caches.ctx, &triggers));
}

fn main() {
    memory();
    let mut criterion = Criterion::default().configure_from_args();
    pass(&mut criterion);
    lookup(&mut criterion);
    criterion.final_summary();
}

/// `object` as the operator's watch stream hands it to the store: trimmed.
fn trimmed<K>(mut object: K, trim: fn(&mut K)) -> K {
    trim(&mut object);
    object
}
