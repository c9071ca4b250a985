//! What one cached object costs the operator's memory, in bytes requested from the allocator:
//! a Schedule, the run it stages (or starts) from it, and a finished run, each decoded from
//! JSON as a watch event delivers it and trimmed as the watch streams trim it
//! (`controller::trim`) before the reflector store keeps it in an `Arc`. At 10,000 Schedules
//! every byte here is 10 KB of the operator's heap per cached object of the kind.
//!
//! Its own test binary: the counting allocator sees the whole process, so nothing else may run
//! beside the one test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use horolog::api::{JobRun, Schedule};
use horolog::controller::trim::{trim_jobrun, trim_schedule};
use serde_json::json;

/// Counts the bytes live in the process.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged; the counter only observes.
// A global allocator cannot be written without unsafe code (as in benches/reconcile.rs).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes through us).
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
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

/// The bytes that `make` leaves live (what it returns, and anything it keeps elsewhere).
fn held<T>(make: impl FnOnce() -> T) -> (T, isize) {
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let value = make();
    (value, LIVE_BYTES.load(Ordering::Relaxed) - before)
}

fn fire_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap()
}

/// A Schedule as the API server returns it: a realistic pod template, a status.
fn schedule_json() -> String {
    json!({
        "apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule",
        "metadata": {"name": "report-000001", "namespace": "team-01",
                     "uid": "6f1c2a9e-0000-4000-8000-000000000001", "resourceVersion": "1000001",
                     "generation": 1, "creationTimestamp": "2026-12-01T00:00:00Z",
                     "labels": {"app.kubernetes.io/part-of": "reports"}},
        "spec": {
            "trigger": {"cron": "* * * * *"},
            "misfireGraceTime": "5m",
            "jobTemplate": {
                "metadata": {"labels": {"app.kubernetes.io/part-of": "reports", "team": "team-01"}},
                "spec": {"backoffLimit": 1, "resultTTL": "24h", "template": {"spec": {
                    "serviceAccountName": "reports",
                    "containers": [{
                        "name": "main",
                        "image": "ghcr.io/example/reports:1.14.2",
                        "command": ["/bin/report", "--format=json", "--since=1h"],
                        "env": [
                            {"name": "LOG_LEVEL", "value": "info"},
                            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
                        ],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    }],
                }}},
            },
        },
        "status": {"observedGeneration": 1, "nextFireTime": "2026-12-07T12:01:00Z",
                   "lastFireTime": "2026-12-07T12:00:00Z", "firedCount": 100,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled",
                                   "message": "next run at 2026-12-07T12:01:00Z",
                                   "lastTransitionTime": "2026-12-01T00:00:00Z"}]},
    })
    .to_string()
}

/// The run `schedule` creates for its fire time, as the API server returns it with `status`.
fn run_json(schedule: &Schedule, status: serde_json::Value) -> String {
    let run = horolog::names::jobrun_for(
        schedule,
        None,
        "report-000001-29000000".into(),
        fire_time(),
        TimeDelta::zero(),
        None,
    );
    let mut value = serde_json::to_value(&run).unwrap();
    value["metadata"]["uid"] = json!("0b7d4c1e-0000-4000-8000-000000000001");
    value["metadata"]["resourceVersion"] = json!("2000001");
    value["metadata"]["creationTimestamp"] = json!("2026-12-07T11:59:30Z");
    value["status"] = status;
    value.to_string()
}

#[test]
fn a_staged_run_adds_no_second_pod_template_to_the_cache() {
    let schedule_text = schedule_json();
    let (schedule, schedule_bytes) = held(|| {
        let mut schedule: Schedule = serde_json::from_str(&schedule_text).unwrap();
        trim_schedule(&mut schedule);
        Arc::new(schedule)
    });
    // A staged run (phase Scheduled; pending and waiting ones likewise) keeps its pod template:
    // its Pod is made from it at the fire time. The same template, other image: not shared.
    let pending_text = run_json(&schedule, json!({"phase": "Scheduled"}));
    let other_text = pending_text.replace("reports:1.14.2", "reports:1.15.0");
    let (pending, pending_bytes) = held(|| {
        let mut run: JobRun = serde_json::from_str(&pending_text).unwrap();
        trim_jobrun(&mut run);
        Arc::new(run)
    });
    let (other, unshared_bytes) = held(|| {
        let mut run: JobRun = serde_json::from_str(&other_text).unwrap();
        trim_jobrun(&mut run);
        Arc::new(run)
    });
    let finished_text = run_json(
        &schedule,
        json!({"phase": "Succeeded", "reason": "Completed", "attempts": 1,
               "podName": "report-000001-29000000-1", "startTime": "2026-12-07T12:00:01Z",
               "completionTime": "2026-12-07T12:00:02Z", "duration": "1s", "exitCode": 0,
               "conditions": [{"type": "Complete", "status": "True", "reason": "Completed",
                               "message": "exit code 0", "lastTransitionTime": "2026-12-07T12:00:02Z"}]}),
    );
    let (finished, finished_bytes) = held(|| {
        let mut run: JobRun = serde_json::from_str(&finished_text).unwrap();
        trim_jobrun(&mut run);
        Arc::new(run)
    });
    println!(
        "cached bytes: Schedule {schedule_bytes} B, unstarted run sharing its template {pending_bytes} B, \
         unstarted run with a template of its own {unshared_bytes} B, finished run {finished_bytes} B \
         (inline: JobRun {} B, Schedule {} B)",
        std::mem::size_of::<JobRun>(),
        std::mem::size_of::<Schedule>()
    );
    assert!(
        pending_bytes * 2 < unshared_bytes,
        "a run whose template is its Schedule's holds no copy of it: {pending_bytes} B shared, {unshared_bytes} B not"
    );
    // Before the template was boxed a JobRun was 2,512 bytes inline, before any field was set
    // (then this one held 3,759 B); 1,991 B since.
    assert!(
        finished_bytes < 2_400,
        "a finished run keeps only what the reconcilers read: {finished_bytes} B"
    );
    assert!(
        pending.spec.run.template
            == other.spec.run.template.clone().map(|t| {
                let mut t = (*t).clone();
                if let Some(c) = t.spec.as_mut().and_then(|s| s.containers.first_mut()) {
                    c.image = Some("ghcr.io/example/reports:1.14.2".into());
                }
                Arc::new(t)
            }),
        "the two runs differ only in the image"
    );
    drop((schedule, pending, other, finished));
}
