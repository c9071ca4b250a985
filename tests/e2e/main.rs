//! End-to-end tests against a real Kubernetes API server.
//!
//! # When they run
//!
//! Only when `HOROLOG_E2E_KUBECONFIG` names a kubeconfig file; without it every test prints
//! why it skips and passes. The cluster needs neither a horolog image nor (for most tests)
//! a node:
//!
//! - **Setup** (every test): the CRDs generated from the Rust types (`horolog::crd::crds_yaml()`,
//!   the content of `crds/horolog.yaml`) are server-side applied with field manager
//!   `horolog-e2e` (forced, so the cluster serves this checkout's schema) and waited for until
//!   Established. Each test then gets a fresh namespace `horolog-e2e-<test>` (a leftover of an
//!   earlier run is deleted first), deleted again at the end, pass or fail.
//! - **The operator**: tests that need one start it **in-process** by default:
//!   `controller::run` in a tokio task of the test, with the e2e client, watching only the
//!   test's namespace, stopped at the end of the test. It runs with `horolog run`'s defaults
//!   (`--schedule-status-delay 60s` included) except `--events all` (some checks look for the
//!   per-run Normal Events); a test may change more (`harness::e2e_configured`: the Job
//!   executor test sets `job_executor`), and may stop and start it (the restart test). With
//!   `HOROLOG_E2E_OPERATOR=external` no operator is started and one installed in the cluster
//!   (`helm install horolog charts/horolog`, with `--events all`, and `--job-executor` for
//!   the Job executor test) is expected to act on the test namespaces; the two tests that
//!   need the operator in-process (restart, no Job executor) then skip.
//! - **API-server-only tests** (always meaningful): the examples apply; the schema and CEL
//!   rules reject bad input at apply time with their messages (`cel_rules_…`,
//!   `schema::cel_rules_…`); the schema's defaults (`schema::the_schema_defaults_…`); the
//!   printer columns, declared and rendered as Tables (`printer_columns_are_served`,
//!   `schema::tables_render_…`).
//! - **Operator tests** (no node needed): JobRuns, Pods, status and Events of an interval
//!   Schedule; an invalid cron; run-now; exactly once (`exactly_once::`: a three-day backlog
//!   coalesced, a trigger edit, an operator restart, cancel); the controls (`controls::`:
//!   BufferOne, Terminate, Allow, catchUp Disabled, maxRuns, ttlSecondsAfterFinished); Tasks
//!   (`tasks::`); Calendars (`calendars::`: CalendarNotFound then firing, an excluded fire
//!   time counted and never run, an edit re-planning within seconds); a Backfill's dry run and
//!   the runs it creates (`backfill::`). A run holds its slot from the moment its Pod exists, so the overlap
//!   policies need no node: a Pod that stays Pending holds it as a running one does.
//! - **Pod-completion tests and checks** (`jobruns_run_pods_to_completion`,
//!   `exactly_once::kubectl_wait_…`, `controls::pause_after_failures_…`, the Running part of
//!   the cancel test, the outcome parts of the Task, Job and Backfill tests): run only where pods run
//!   to completion, which a probe Pod finds out once per test process
//!   (`harness::pods_run`, up to 120 s); otherwise they print `skipping …: <why>` and pass
//!   (or take their no-node branch). They pull `busybox:1.37`.
//! - **Job controller** (`executors::the_job_executor_…`): the Job's outcome is checked only
//!   where kube-controller-manager's job controller acts on a probe Job within 60 s
//!   (`harness::job_controller_runs`). `controls::ttl_…` needs the garbage collector (it
//!   waits up to 90 s for it to delete the Schedule's JobRun and that run's Pod).
//!
//! Waits are bounded (500 ms polling, 10–150 s deadlines; no test takes more than about 4
//! minutes); a failing test prints what it saw last and then the namespace's Schedules,
//! JobRuns, Tasks, Jobs, Pods and Events.
//!
//! # Environment
//!
//! - `HOROLOG_E2E_KUBECONFIG`: kubeconfig of the cluster (its current context is used).
//! - `HOROLOG_E2E_OPERATOR`: `in-process` (default) or `external`.
//! - `HOROLOG_E2E_KEEP_NAMESPACE`: set to keep the test namespaces for inspection.
//! - `HOROLOG_E2E_REQUIRE`: set to make a missing `HOROLOG_E2E_KUBECONFIG` a failure instead
//!   of a skip (CI sets it when it runs the suite against the sandbox, `.ci/e2e-sandbox.sh`).
//! - `HOROLOG_E2E_LOG`: log filter of the in-process operator (default `horolog=info`; shown
//!   with a failing test's output, or always with `--nocapture`).
//!
//! The credentials need: CRDs (apply, get), namespaces (get, apply, delete), nodes (list),
//! and in the test namespaces everything the operator's ClusterRole grants, plus pods and
//! batch/v1 jobs (create, delete) for the probes and `patch` on the horolog kinds' status
//! (the Table test writes status values itself).
//!
//! Run: `HOROLOG_E2E_KUBECONFIG=~/.kube/config cargo test --test e2e -- --test-threads=4`
//!
//! Without a cluster, `horolog-dev sandbox --kubelet exec` stands in for one well enough for
//! every test but the CEL messages and the server-rendered Tables (README, "Sandbox").

mod backfill;
mod calendars;
mod controls;
mod exactly_once;
mod executors;
mod harness;
mod ownership;
mod schema;
mod strict_schema;
mod tasks;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use harness::{Env, Needs, e2e};
use horolog::api::{CANCEL_ANNOTATION, JOBRUN_LABEL, JobRun, JobRunPhase, Schedule};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const SCHEDULE_LABEL: &str = "horolog.dev/schedule";
const RUN_NOW: &str = "horolog.dev/run-now";
const IMAGE: &str = "busybox:1.37";

/// A pod template running busybox with `script`. Its grace period is 1 s: busybox's `sh` as
/// PID 1 ignores SIGTERM, so a deleted Pod would otherwise linger 30 s on a real node.
fn pod_template(script: &str) -> Value {
    json!({"spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", script]}],
    }})
}

/// A Schedule like the examples: busybox writing `ok` to its termination log. `extra` is
/// merged into the spec.
fn schedule(name: &str, trigger: Value, extra: Value) -> Value {
    let mut spec = json!({
        "trigger": trigger,
        "jobTemplate": {"spec": {
            "template": pod_template("echo ok > /dev/termination-log"),
            "activeDeadlineSeconds": 120,
        }},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({"apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule", "metadata": {"name": name}, "spec": spec})
}

/// A Schedule like [`schedule`] whose pods run `script`.
fn schedule_running(name: &str, trigger: Value, script: &str, extra: Value) -> Value {
    let mut object = schedule(name, trigger, extra);
    object["spec"]["jobTemplate"]["spec"]["template"] = pod_template(script);
    object
}

/// `t` as RFC 3339 with seconds, UTC (`2026-01-01T00:00:00Z`).
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Now, to the second (fire times of the tests' triggers are whole seconds).
fn now_secs() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

/// An object's creationTimestamp, to the second as the API server keeps it.
fn created_at(meta: &kube::api::ObjectMeta) -> DateTime<Utc> {
    meta.creation_timestamp
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
        .unwrap_or_else(|| panic!("{:?} has no creationTimestamp", meta.name))
}

/// The Schedule `name` as stored now.
async fn get_schedule(env: &Env, name: &str) -> Schedule {
    env.schedules()
        .get(name)
        .await
        .unwrap_or_else(|err| panic!("get Schedule {name}: {err}"))
}

/// Waits (at most `within`) until the object `name` of `api` satisfies `check`, and returns
/// it; while it does not, `describe` says what it was.
async fn wait_object<K>(
    env: &Env,
    api: Api<K>,
    name: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&K) -> bool,
    describe: impl Fn(&K) -> String,
) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    env.eventually(within, &format!("{name}: {what}"), || async {
        let object = api.get(name).await.map_err(|err| format!("get: {err}"))?;
        if check(&object) {
            Ok(object)
        } else {
            Err(describe(&object))
        }
    })
    .await
}

/// Waits (at most `within`) until the Schedule `name` satisfies `check`, and returns it.
async fn wait_schedule(
    env: &Env,
    name: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&Schedule) -> bool,
) -> Schedule {
    wait_object(env, env.schedules(), name, within, what, check, describe_schedule).await
}

/// `(status, reason)` of the Schedule's Ready condition.
fn ready_of(schedule: &Schedule) -> Option<(String, String)> {
    schedule
        .condition("Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// True once the status describes the Schedule's current spec.
fn observed(schedule: &Schedule) -> bool {
    schedule.metadata.generation.is_some()
        && schedule.status.as_ref().and_then(|s| s.observed_generation) == schedule.metadata.generation
}

/// The Schedule's status, or the default (all counters 0).
fn status_of(schedule: &Schedule) -> horolog::api::ScheduleStatus {
    schedule.status.clone().unwrap_or_default()
}

/// Waits (at most `within`) until the JobRuns of `schedule` satisfy `check`, and returns them.
async fn wait_runs(
    env: &Env,
    schedule: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&[JobRun]) -> bool,
) -> Vec<JobRun> {
    env.eventually(within, &format!("{schedule}: {what}"), || async {
        let runs = runs_of(env, schedule).await;
        if check(&runs) {
            Ok(runs)
        } else {
            Err(describe_runs(&runs))
        }
    })
    .await
}

/// Waits (at most `within`) until the JobRun `name` satisfies `check`, and returns it.
async fn wait_run(
    env: &Env,
    name: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&JobRun) -> bool,
) -> JobRun {
    wait_object(env, env.jobruns(), name, within, what, check, |run| {
        format!("phase {:?}, status {:?}", phase(run), run.status)
    })
    .await
}
/// The JobRuns of `schedule` by fire time (their names sort the same way only while the unix
/// seconds have the same number of digits, which they do until 2286).
fn fire_times(runs: &[JobRun]) -> Vec<DateTime<Utc>> {
    let mut times: Vec<DateTime<Utc>> = runs.iter().filter_map(|r| r.spec.fire_time).collect();
    times.sort();
    times
}

/// Merge-patches the Schedule `name` (spec or metadata).
async fn patch_schedule(env: &Env, name: &str, patch: Value) {
    env.schedules()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|err| panic!("patch Schedule {name} with {patch}: {err}"));
}

/// Sets annotation `horolog.dev/cancel` on the JobRun `name`, as `kubectl annotate` would.
async fn cancel_run(env: &Env, name: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {CANCEL_ANNOTATION: value}}});
    env.jobruns()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|err| panic!("annotate JobRun {name}: {err}"));
}

/// The objects of `api` labelled `label=value`, by name.
async fn labelled<K>(api: Api<K>, label: &str, value: &str) -> Vec<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let selector = format!("{label}={value}");
    let mut objects = api
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap_or_else(|err| panic!("listing what is labelled {selector}: {err}"))
        .items;
    objects.sort_by_key(|o| o.name_any());
    objects
}

/// The Pods of the JobRun `run` (label `horolog.dev/jobrun`), by name.
async fn pods_of(env: &Env, run: &str) -> Vec<Pod> {
    labelled(env.pods(), JOBRUN_LABEL, run).await
}

/// Waits until the JobRun `run` has a Pod, and returns it.
async fn wait_pod_of(env: &Env, run: &str, within: Duration) -> Pod {
    env.eventually(within, &format!("a Pod of {run}"), || async {
        pods_of(env, run)
            .await
            .into_iter()
            .next_back()
            .ok_or_else(|| "no Pod".to_string())
    })
    .await
}

/// Waits until no Pod of the JobRun `run` is left.
async fn wait_pods_gone(env: &Env, run: &str, within: Duration) {
    env.eventually(within, &format!("the Pods of {run} to be gone"), || async {
        let pods = pods_of(env, run).await;
        if pods.is_empty() {
            Ok(())
        } else {
            let seen: Vec<String> = pods
                .iter()
                .map(|p| {
                    format!(
                        "{} (phase {:?}, deleting since {:?})",
                        p.name_any(),
                        p.status.as_ref().and_then(|s| s.phase.clone()),
                        p.metadata.deletion_timestamp
                    )
                })
                .collect();
            Err(format!("{seen:?}"))
        }
    })
    .await;
}

/// Waits until every Pod of the JobRun `run` is gone or being deleted (a deletionTimestamp:
/// how long a deleted Pod lingers is its grace period and the node's business), and says
/// which it saw.
async fn wait_pods_deleted(env: &Env, run: &str, within: Duration) -> &'static str {
    env.eventually(within, &format!("the Pods of {run} to be deleted"), || async {
        let pods = pods_of(env, run).await;
        let left: Vec<String> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| {
                format!(
                    "{} (phase {:?})",
                    p.name_any(),
                    p.status.as_ref().and_then(|s| s.phase.clone())
                )
            })
            .collect();
        match (pods.is_empty(), left.is_empty()) {
            (true, _) => Ok("gone"),
            (false, true) => Ok("being deleted"),
            (false, false) => Err(format!("not deleted: {left:?}")),
        }
    })
    .await
}

/// Waits until an Event with `reason` is about the object `name`, and returns it.
async fn wait_event(env: &Env, name: &str, reason: &str, within: Duration) -> Event {
    env.eventually(within, &format!("a {reason} Event on {name}"), || async {
        let events = env.events_of(name).await;
        events
            .iter()
            .find(|e| e.reason.as_deref() == Some(reason))
            .cloned()
            .ok_or_else(|| harness::describe_events(&events))
    })
    .await
}

/// The condition `type_` of a JobRun as `(status, reason)`.
fn run_condition(run: &JobRun, type_: &str) -> Option<(String, String)> {
    run.status
        .as_ref()
        .and_then(|s| horolog::api::find_condition(&s.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Prints why a check that needs pods to run is skipped, and says whether to go on.
async fn pods_run_or_skip(env: &Env, what: &str) -> bool {
    match harness::pods_run(env).await {
        Ok(_) => true,
        Err(why) => {
            println!("skipping {what}: {why}");
            false
        }
    }
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("object without metadata.name: {object}"))
        .to_string()
}

/// Server-side applies a Schedule (strict field validation: unknown fields are errors).
async fn apply_schedule(env: &Env, object: &Value) -> Schedule {
    let name = name_of(object);
    env.schedules()
        .patch(
            &name,
            &PatchParams::apply(harness::MANAGER).force().validation_strict(),
            &Patch::Apply(object),
        )
        .await
        .unwrap_or_else(|err| panic!("apply Schedule {name}: {err}"))
}

/// The JobRuns labelled as runs of `schedule`, by name.
async fn runs_of(env: &Env, schedule: &str) -> Vec<JobRun> {
    labelled(env.jobruns(), SCHEDULE_LABEL, schedule).await
}

fn phase(run: &JobRun) -> Option<JobRunPhase> {
    run.status.as_ref().and_then(|s| s.phase)
}

fn describe_runs(runs: &[JobRun]) -> String {
    let runs: Vec<String> = runs
        .iter()
        .map(|r| format!("{} ({:?})", r.name_any(), phase(r)))
        .collect();
    format!("JobRuns {runs:?}")
}

fn describe_schedule(schedule: &Schedule) -> String {
    let status = schedule.status.clone().unwrap_or_default();
    let conditions: Vec<String> = status
        .conditions
        .iter()
        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect();
    format!(
        "Schedule {}: conditions {conditions:?}, next {:?}, last {:?}, upcoming {:?}",
        schedule.name_any(),
        status.next_fire_time,
        status.last_fire_time,
        status.upcoming_fire_times
    )
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Every YAML document of every file of examples/, with its file name, in file order.
fn example_documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap_or_else(|err| panic!("reading examples/: {err}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut documents = Vec::new();
    for path in files {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {file}: {err}"));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = <Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|err| panic!("{file} is not valid YAML: {err}"));
            if !value.is_null() {
                documents.push((file.clone(), value));
            }
        }
    }
    documents
}

/// The horolog resource of a manifest's `kind`.
fn resource_of(kind: &str) -> Option<ApiResource> {
    match kind {
        "Schedule" => Some(ApiResource::erase::<Schedule>(&())),
        "JobRun" => Some(ApiResource::erase::<JobRun>(&())),
        "Task" => Some(ApiResource::erase::<horolog::api::Task>(&())),
        "Backfill" => Some(ApiResource::erase::<horolog::api::Backfill>(&())),
        "Calendar" => Some(ApiResource::erase::<horolog::api::Calendar>(&())),
        _ => None,
    }
}

/// Not an e2e test: checks offline that the harness can read what it applies (the generated
/// CRDs and every example), so a broken harness shows up without a cluster too.
#[test]
fn the_harness_reads_the_generated_crds_and_the_examples() {
    let crds = harness::generated_crds();
    let names: Vec<String> = crds.iter().map(|c| c.name_any()).collect();
    assert_eq!(
        names,
        [
            "schedules.horolog.dev",
            "jobruns.horolog.dev",
            "tasks.horolog.dev",
            "backfills.horolog.dev",
            "calendars.horolog.dev"
        ]
    );
    let documents = example_documents();
    assert!(
        documents.len() >= 10,
        "examples/ has only {} documents",
        documents.len()
    );
    for (file, doc) in &documents {
        assert_eq!(doc["apiVersion"], "horolog.dev/v1alpha1", "{file}");
        let kind = doc["kind"].as_str().unwrap_or_default();
        assert!(resource_of(kind).is_some(), "{file}: unexpected kind {kind:?}");
        assert!(doc["metadata"]["name"].is_string(), "{file}: no metadata.name");
    }
    // The objects the tests build are what the Rust types accept.
    let built = schedule("s", json!({"interval": "2s"}), json!({"paused": true}));
    let built: Schedule = serde_json::from_value(built).unwrap_or_else(|err| panic!("schedule(): {err}"));
    assert!(built.spec.paused);
    let run: JobRun =
        serde_json::from_value(one_off("r", "exit 3")).unwrap_or_else(|err| panic!("one_off(): {err}"));
    assert_eq!(run.spec.schedule_name, None);
}

/// (API server) Every document of examples/ is accepted by the real structural schema and CEL
/// rules, applied server-side with strict field validation (an unknown or misspelt field,
/// which the schema would otherwise prune silently, is an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_applies() {
    e2e("examples", Needs::ApiServer, |env| async move {
        let params = PatchParams::apply(harness::MANAGER).force().validation_strict();
        let mut failures = Vec::new();
        let mut applied = 0;
        for (file, doc) in example_documents() {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let Some(resource) = resource_of(&kind) else {
                failures.push(format!("{file}: unexpected kind {kind:?}"));
                continue;
            };
            let name = name_of(&doc);
            let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &env.ns, &resource);
            match api.patch(&name, &params, &Patch::Apply(&doc)).await {
                Ok(object) => {
                    applied += 1;
                    // What was applied is what is stored (nothing pruned, nothing renamed).
                    for (field, wanted) in doc["spec"].as_object().into_iter().flatten() {
                        let stored = object.data["spec"].get(field);
                        if stored.is_none() {
                            failures.push(format!("{file}: spec.{field} is not stored"));
                        } else if field == "paused" && stored != Some(wanted) {
                            failures.push(format!("{file}: spec.paused stored as {stored:?}"));
                        }
                    }
                }
                Err(err) => failures.push(format!("{file}: {kind} {name} rejected: {err}")),
            }
        }
        assert!(
            failures.is_empty(),
            "{} example documents failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        println!("{applied} example documents applied");
    })
    .await;
}

/// (API server) The schema and its CEL rules reject bad input at apply time — a 422 whose
/// message says what is wrong — while the same Schedule without the fault is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cel_rules_reject_bad_input_at_apply_time() {
    e2e("cel", Needs::ApiServer, |env| async move {
        let dry_run = PatchParams {
            dry_run: true,
            ..PatchParams::apply(harness::MANAGER).force()
        };
        // Untyped, so an accepted bad value reads as "accepted", not as a decoding error.
        let probes: Api<DynamicObject> =
            Api::namespaced_with(env.client.clone(), &env.ns, &ApiResource::erase::<Schedule>(&()));
        let base = schedule("probe", json!({"cron": "0 9 * * *"}), json!({}));
        probes
            .patch("probe", &dry_run, &Patch::Apply(&base))
            .await
            .unwrap_or_else(|err| panic!("the valid base Schedule was rejected: {err}"));

        let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
            (
                "two trigger kinds at once",
                json!({"cron": "* * * * *", "interval": "1m"}),
                json!({}),
                vec![
                    "spec.trigger",
                    "exactly one of cron, cronFields, interval, date, calendarInterval, anyOf, allOf",
                ],
            ),
            (
                "endTime before startTime",
                json!({"interval": "1h", "startTime": "2027-01-01T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}),
                json!({}),
                vec!["spec.trigger", "endTime must be after startTime"],
            ),
            (
                "an anyOf member with two kinds",
                json!({"anyOf": [{"cron": "0 * * * *", "interval": "20m"}, {"interval": "1h"}]}),
                json!({}),
                vec![
                    "spec.trigger.anyOf[0]",
                    "each anyOf/allOf member sets exactly one of cron, cronFields, interval, date, calendarInterval",
                ],
            ),
            (
                "maxRunningJobs 0",
                json!({"interval": "1m"}),
                json!({"maxRunningJobs": 0}),
                vec!["spec.maxRunningJobs", "greater than or equal to 1"],
            ),
            (
                "an unknown coalesce value",
                json!({"interval": "1m"}),
                json!({"coalesce": "Sometimes"}),
                vec!["spec.coalesce", "Unsupported value", "\"Sometimes\"", "\"Earliest\""],
            ),
            (
                "a malformed duration",
                json!({"interval": "5x"}),
                json!({}),
                vec!["spec.trigger.interval", "\"5x\"", "should match"],
            ),
            (
                "a calendarInterval with all periods 0",
                json!({"calendarInterval": {"years": 0, "months": 0, "weeks": 0, "days": 0, "hour": 9}}),
                json!({}),
                vec!["calendarInterval needs at least one of years, months, weeks, days greater than 0"],
            ),
        ];
        let mut failures = Vec::new();
        for (what, trigger, extra, expected) in cases {
            let bad = schedule("probe", trigger, extra);
            let result = probes.patch("probe", &dry_run, &Patch::Apply(&bad)).await;
            failures.extend(rejection_failure(what, result, &expected));
        }
        assert_rejected_as_expected(&failures);
    })
    .await;
}

/// Why `result` is not the 422 `expected` describes (every text in its message), if it is not.
fn rejection_failure<T>(what: &str, result: kube::Result<T>, expected: &[&str]) -> Vec<String> {
    let status = match result {
        Ok(_) => return vec![format!("{what}: accepted, expected a 422")],
        Err(kube::Error::Api(status)) => status,
        Err(err) => return vec![format!("{what}: not an API error: {err}")],
    };
    let mut failures = Vec::new();
    if status.code != 422 {
        failures.push(format!(
            "{what}: HTTP {} ({}), expected 422: {}",
            status.code, status.reason, status.message
        ));
    }
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|text| !status.message.contains(text))
        .collect();
    if !missing.is_empty() {
        failures.push(format!(
            "{what}: the message lacks {missing:?}: {}",
            status.message
        ));
    }
    failures
}

/// Fails the test with every collected [`rejection_failure`].
fn assert_rejected_as_expected(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} bad inputs not rejected as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The printer columns of API.md, in order, as the CRDs declare them (`kubectl get` shows
/// them upper-cased), each with its priority: 1 = only with `-o wide`.
const SCHEDULE_COLUMNS: [(&str, i32); 10] = [
    ("Trigger", 0),
    ("Timezone", 0),
    ("Next Fire", 0),
    ("Last Fire", 0),
    ("Active", 0),
    ("Paused", 0),
    ("Ready", 0),
    ("Reason", 1),
    ("Last Run", 1),
    ("Age", 0),
];
const JOBRUN_COLUMNS: [(&str, i32); 10] = [
    ("Schedule", 0),
    ("Phase", 0),
    ("Fire Time", 0),
    ("Started", 0),
    ("Duration", 0),
    ("Exit", 0),
    ("Pod", 1),
    ("Attempts", 1),
    ("Reason", 1),
    ("Age", 0),
];
const TASK_COLUMNS: [(&str, i32); 5] = [
    ("Executor", 0),
    ("Max Running", 0),
    ("Running", 0),
    ("Schedules", 0),
    ("Age", 0),
];
const BACKFILL_COLUMNS: [(&str, i32); 7] = [
    ("Schedule", 0),
    ("From", 0),
    ("To", 0),
    ("Phase", 0),
    ("Fire Times", 0),
    ("Created", 0),
    ("Age", 0),
];

/// (API server) The CRDs the cluster serves declare `kubectl get`'s columns of API.md (with
/// `-o wide`'s at priority 1), and the server renders them: a Schedule fetched as a Table has
/// those columns and its values. (schema::tables_render_the_columns_of_every_kind does the
/// same for JobRuns, Tasks and Backfills.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printer_columns_are_served() {
    e2e("columns", Needs::ApiServer, |env| async move {
        for (crd, expected) in [
            ("schedules.horolog.dev", &SCHEDULE_COLUMNS[..]),
            ("jobruns.horolog.dev", &JOBRUN_COLUMNS[..]),
            ("tasks.horolog.dev", &TASK_COLUMNS[..]),
            ("backfills.horolog.dev", &BACKFILL_COLUMNS[..]),
        ] {
            let served = env
                .crds()
                .get(crd)
                .await
                .unwrap_or_else(|err| panic!("reading CRD {crd}: {err}"));
            let version = served
                .spec
                .versions
                .iter()
                .find(|v| v.name == "v1alpha1")
                .unwrap_or_else(|| panic!("CRD {crd} has no v1alpha1"));
            let columns: Vec<(String, i32)> = version
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), c.priority.unwrap_or(0)))
                .collect();
            let expected: Vec<(String, i32)> = expected.iter().map(|(n, p)| (n.to_string(), *p)).collect();
            assert_eq!(columns, expected, "printer columns (name, priority) of {crd}");
        }

        // The server-side Table `kubectl get` asks for.
        let paused = schedule(
            "table",
            json!({"cron": "0 9 * * mon-fri", "timezone": "Europe/Berlin"}),
            json!({"paused": true}),
        );
        apply_schedule(&env, &paused).await;
        let table = table(&env, "schedules", "table").await;
        let names: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .unwrap_or_else(|| panic!("not a Table: {table}"))
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let mut expected = vec!["Name"];
        expected.extend(SCHEDULE_COLUMNS.map(|(name, _)| name));
        assert_eq!(names, expected, "Table columns");
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[0], "table", "Name cell: {table}");
        assert_eq!(cells[2], "Europe/Berlin", "Timezone cell: {table}");
        assert_eq!(cells[6], true, "Paused cell: {table}");
    })
    .await;
}

/// (operator) An `interval: 2s` Schedule gets JobRuns named `<schedule>-<unix seconds>` of
/// their spec.fireTime, owned by and labelled with the Schedule, each with a Pod it owns
/// (restartPolicy Never); the Schedule's status has its fire times and Ready=True, and a
/// Fired Event. Pods may stay Pending (no node needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_schedule_fires_jobruns_with_pods() {
    e2e("interval", Needs::Operator, |env| async move {
        let name = "every-2s";
        let applied = apply_schedule(&env, &schedule(name, json!({"interval": "2s"}), json!({}))).await;
        let uid = applied
            .uid()
            .unwrap_or_else(|| panic!("applied Schedule has no uid"));
        let created = applied
            .metadata
            .creation_timestamp
            .clone()
            .map(|t| t.0.as_second())
            .unwrap_or_else(|| panic!("applied Schedule has no creationTimestamp"));

        let runs = env
            .eventually(Duration::from_secs(60), "two JobRuns of every-2s", || async {
                let runs = runs_of(&env, name).await;
                if runs.len() >= 2 {
                    Ok(runs)
                } else {
                    Err(describe_runs(&runs))
                }
            })
            .await;
        let mut fire_times = BTreeSet::new();
        for run in &runs {
            let run_name = run.name_any();
            let fire = run
                .spec
                .fire_time
                .unwrap_or_else(|| panic!("{run_name} has no spec.fireTime"));
            assert_eq!(
                run_name,
                format!("{name}-{}", fire.timestamp()),
                "name of the run for {fire}"
            );
            let since_creation = fire.timestamp_millis() - created * 1000;
            assert!(
                since_creation >= 0,
                "{run_name} fires at {fire}, before the Schedule's creation (unix {created})"
            );
            assert_eq!(
                since_creation % 2000,
                0,
                "{run_name}: {fire} is not the creation time (unix {created}) + k·2s"
            );
            assert!(fire_times.insert(fire), "two runs for {fire}");
            assert_eq!(
                run.spec.schedule_name.as_deref(),
                Some(name),
                "{run_name} spec.scheduleName"
            );
            assert_eq!(
                run.labels().get(SCHEDULE_LABEL).map(String::as_str),
                Some(name),
                "{run_name} label {SCHEDULE_LABEL}"
            );
            let owner = run
                .owner_references()
                .iter()
                .find(|o| o.kind == "Schedule")
                .unwrap_or_else(|| panic!("{run_name} has no Schedule owner: {:?}", run.owner_references()));
            assert_eq!(
                (owner.name.as_str(), owner.uid.as_str()),
                (name, uid.as_str()),
                "{run_name} owner"
            );
            assert_eq!(owner.api_version, "horolog.dev/v1alpha1");
        }

        let status = env
            .eventually(
                Duration::from_secs(60),
                "every-2s to be Ready with fire times",
                || async {
                    let schedule = env
                        .schedules()
                        .get(name)
                        .await
                        .map_err(|err| format!("get: {err}"))?;
                    let status = schedule.status.clone().unwrap_or_default();
                    let ready = status
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True");
                    let complete = status.next_fire_time.is_some()
                        && status.last_fire_time.is_some()
                        && !status.upcoming_fire_times.is_empty();
                    if ready && complete {
                        Ok(status)
                    } else {
                        Err(describe_schedule(&schedule))
                    }
                },
            )
            .await;
        let (next, last) = (status.next_fire_time, status.last_fire_time);
        assert!(
            next > last,
            "nextFireTime {next:?} is not after lastFireTime {last:?}"
        );
        let upcoming = &status.upcoming_fire_times;
        assert_eq!(upcoming.len(), 5, "upcomingFireTimes {upcoming:?}");
        assert!(
            upcoming.windows(2).all(|w| w[0] < w[1]),
            "upcomingFireTimes not increasing: {upcoming:?}"
        );
        assert!(
            last.is_some_and(|last| upcoming[0] > last),
            "upcomingFireTimes {upcoming:?} do not start after lastFireTime {last:?}"
        );
        assert!(
            status.trigger.as_deref().is_some_and(|t| !t.is_empty()),
            "status.trigger"
        );

        // A Pod per JobRun, owned by it, never restarted in place.
        for run in &runs {
            let run_name = run.name_any();
            let run_uid = run.uid().unwrap_or_default();
            let pod = env
                .eventually(
                    Duration::from_secs(60),
                    &format!("the Pod of {run_name}"),
                    || async {
                        let pods = env
                            .pods()
                            .list(&ListParams::default())
                            .await
                            .map_err(|err| format!("list pods: {err}"))?
                            .items;
                        let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
                        pods.into_iter()
                            .find(|p| {
                                p.owner_references()
                                    .iter()
                                    .any(|o| o.kind == "JobRun" && o.name == run_name && o.uid == run_uid)
                            })
                            .ok_or_else(|| format!("pods {names:?}, none owned by {run_name}"))
                    },
                )
                .await;
            let restart = pod.spec.as_ref().and_then(|s| s.restart_policy.clone());
            assert_eq!(
                restart.as_deref(),
                Some("Never"),
                "restartPolicy of {}",
                pod.name_any()
            );
            let pod_name = env
                .eventually(
                    Duration::from_secs(60),
                    &format!("{run_name} status.podName"),
                    || async {
                        let run = env
                            .jobruns()
                            .get(&run_name)
                            .await
                            .map_err(|err| format!("get: {err}"))?;
                        run.status
                            .and_then(|s| s.pod_name)
                            .ok_or_else(|| "no podName".to_string())
                    },
                )
                .await;
            assert_eq!(pod_name, pod.name_any(), "{run_name} status.podName");
        }

        let events = env
            .eventually(Duration::from_secs(60), "a Fired Event on every-2s", || async {
                let events = env.events_of(name).await;
                if events.iter().any(|e| e.reason.as_deref() == Some("Fired")) {
                    Ok(events)
                } else {
                    Err(harness::describe_events(&events))
                }
            })
            .await;
        assert!(
            events.iter().all(|e| e.type_.as_deref() != Some("Warning")),
            "Warning Events on a valid Schedule: {}",
            harness::describe_events(&events)
        );

        // `kubectl get schedules` shows it Ready, with its trigger.
        let table = schedule_table(&env, name).await;
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[7], "True", "READY column: {table}");
        assert!(
            cells[1].as_str().is_some_and(|t| !t.is_empty()),
            "TRIGGER column: {table}"
        );
    })
    .await;
}

/// The Schedule `name` as the Table `kubectl get` asks for.
async fn schedule_table(env: &Env, name: &str) -> Value {
    table(env, "schedules", name).await
}

/// The horolog object `plural/name` as the Table `kubectl get` asks for (every column, with
/// its priority: `-o wide` shows those of priority 1 too).
async fn table(env: &Env, plural: &str, name: &str) -> Value {
    let request = http::Request::get(format!(
        "/apis/horolog.dev/v1alpha1/namespaces/{}/{plural}/{name}",
        env.ns
    ))
    .header(
        http::header::ACCEPT,
        "application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    .body(Vec::new())
    .unwrap_or_else(|err| panic!("building the Table request: {err}"));
    env.client
        .request(request)
        .await
        .unwrap_or_else(|err| panic!("GET {plural}/{name} as a Table: {err}"))
}

/// (operator) A cron the schema cannot catch (`61 * * * *`) is accepted by the API server and
/// reported: Ready=False with reason InvalidTrigger, and a Warning Event quoting the value.
/// Nothing fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_cron_is_reported_on_ready_and_in_an_event() {
    e2e("invalid-cron", Needs::Operator, |env| async move {
        let name = "bad-minute";
        apply_schedule(&env, &schedule(name, json!({"cron": "61 * * * *"}), json!({}))).await;
        let ready = env
            .eventually(Duration::from_secs(60), "Ready=False on bad-minute", || async {
                let schedule = env
                    .schedules()
                    .get(name)
                    .await
                    .map_err(|err| format!("get: {err}"))?;
                schedule
                    .status
                    .as_ref()
                    .and_then(|s| {
                        s.conditions
                            .iter()
                            .find(|c| c.type_ == "Ready" && c.status == "False")
                            .cloned()
                    })
                    .ok_or_else(|| describe_schedule(&schedule))
            })
            .await;
        assert_eq!(ready.reason, "InvalidTrigger", "Ready condition: {ready:?}");
        assert!(
            ready.message.contains("61"),
            "the Ready message does not quote the value: {ready:?}"
        );
        let event = env
            .eventually(Duration::from_secs(60), "an InvalidTrigger Event", || async {
                let events = env.events_of(name).await;
                events
                    .iter()
                    .find(|e| e.reason.as_deref() == Some("InvalidTrigger"))
                    .cloned()
                    .ok_or_else(|| harness::describe_events(&events))
            })
            .await;
        assert_eq!(event.type_.as_deref(), Some("Warning"), "{event:?}");
        let note = event.note.clone().unwrap_or_default();
        assert!(
            note.contains("61 * * * *") || note.contains("\"61\""),
            "the Event does not quote the value: {note:?}"
        );
        let schedule = env
            .schedules()
            .get(name)
            .await
            .unwrap_or_else(|err| panic!("get {name}: {err}"));
        let status = schedule.status.clone().unwrap_or_default();
        assert!(
            status.next_fire_time.is_none() && status.upcoming_fire_times.is_empty(),
            "an invalid trigger has no fire times: {}",
            describe_schedule(&schedule)
        );
        assert!(runs_of(&env, name).await.is_empty(), "an invalid Schedule fired");
    })
    .await;
}

/// Waits until `schedule` has `count` JobRuns, then a few seconds more, and returns them: a
/// count that grows meanwhile fails.
async fn settled_runs(env: &Env, schedule: &str, count: usize) -> Vec<JobRun> {
    env.eventually(
        Duration::from_secs(60),
        &format!("{count} JobRun(s) of {schedule}"),
        || async {
            let runs = runs_of(env, schedule).await;
            if runs.len() >= count {
                Ok(())
            } else {
                Err(describe_runs(&runs))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs = runs_of(env, schedule).await;
    assert_eq!(runs.len(), count, "{schedule}: {}", describe_runs(&runs));
    runs
}

/// (operator) `horolog.dev/run-now` fires a paused Schedule exactly once per value: one
/// JobRun for the first value (also after the Schedule is touched again), a second one for a
/// new value, and none from the trigger while paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_fires_a_paused_schedule_once_per_value() {
    e2e("run-now", Needs::Operator, |env| async move {
        let name = "manual";
        let mut paused = schedule(name, json!({"interval": "1s"}), json!({"paused": true}));
        paused["metadata"]["annotations"] = json!({RUN_NOW: "first"});
        apply_schedule(&env, &paused).await;
        let runs = settled_runs(&env, name, 1).await;
        let first = runs[0].name_any();
        assert!(
            first.starts_with(&format!("{name}-now-")),
            "the run-now JobRun is named {first}, expected {name}-now-<hash>"
        );

        // Another reconcile with the same value (a label change) creates nothing new.
        paused["metadata"]["labels"] = json!({"touched": "yes"});
        apply_schedule(&env, &paused).await;
        let runs = settled_runs(&env, name, 1).await;
        assert_eq!(runs[0].name_any(), first);

        paused["metadata"]["annotations"] = json!({RUN_NOW: "second"});
        apply_schedule(&env, &paused).await;
        let runs = settled_runs(&env, name, 2).await;
        assert!(
            runs.iter()
                .all(|r| r.name_any().starts_with(&format!("{name}-now-"))),
            "a paused Schedule fired from its trigger: {}",
            describe_runs(&runs)
        );
    })
    .await;
}

/// A one-off JobRun running `script` in busybox.
fn one_off(name: &str, script: &str) -> Value {
    json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "JobRun",
        "metadata": {"name": name},
        "spec": {"template": pod_template(script), "backoffLimit": 0, "activeDeadlineSeconds": 120},
    })
}

/// Waits (up to 120 s: the image may need pulling) until JobRun `name` is finished.
async fn finished_run(env: &Env, name: &str) -> JobRun {
    env.eventually(Duration::from_secs(120), &format!("{name} to finish"), || async {
        let run = env
            .jobruns()
            .get(name)
            .await
            .map_err(|err| format!("get: {err}"))?;
        match phase(&run) {
            Some(JobRunPhase::Succeeded | JobRunPhase::Failed) => Ok(run),
            other => Err(format!("phase {other:?}, status {:?}", run.status)),
        }
    })
    .await
}

/// (operator + node) Pods run to completion: a busybox run writing `ok` to its termination
/// log Succeeds with result "ok", exit code 0, start and completion times, and PodCreated and
/// Succeeded Events; `exit 3` Fails with exit code 3. Skipped (passing) without a schedulable
/// node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobruns_run_pods_to_completion() {
    e2e("pods", Needs::Operator, |env| async move {
        match harness::pods_run(&env).await {
            Ok(on) => println!("pods run ({on}); running pod-completion checks"),
            Err(why) => {
                println!("skipping pod-completion checks: {why}");
                return;
            }
        }
        let post = PostParams::default();
        for (name, script) in [
            ("succeeds", "echo ok > /dev/termination-log"),
            ("fails", "exit 3"),
        ] {
            let run: JobRun = serde_json::from_value(one_off(name, script))
                .unwrap_or_else(|err| panic!("JobRun {name}: {err}"));
            env.jobruns()
                .create(&post, &run)
                .await
                .unwrap_or_else(|err| panic!("create JobRun {name}: {err}"));
        }

        let ok = finished_run(&env, "succeeds").await;
        let status = ok.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(JobRunPhase::Succeeded), "succeeds: {status:?}");
        assert_eq!(
            status.result.as_deref().map(str::trim),
            Some("ok"),
            "succeeds: {status:?}"
        );
        assert_eq!(status.exit_code, Some(0), "succeeds: {status:?}");
        let (start, end) = (status.start_time, status.completion_time);
        assert!(
            start.is_some() && end.is_some(),
            "succeeds: start/completion {start:?} {end:?}"
        );
        assert!(
            start <= end,
            "succeeds: started {start:?} after completing {end:?}"
        );
        let events = env
            .eventually(
                Duration::from_secs(60),
                "PodCreated and Succeeded Events",
                || async {
                    let events = env.events_of("succeeds").await;
                    let has = |reason: &str| events.iter().any(|e| e.reason.as_deref() == Some(reason));
                    if has("PodCreated") && has("Succeeded") {
                        Ok(events)
                    } else {
                        Err(harness::describe_events(&events))
                    }
                },
            )
            .await;
        assert!(
            events.iter().all(|e| e.type_.as_deref() != Some("Warning")),
            "Warning Events on a successful run: {}",
            harness::describe_events(&events)
        );

        let failed = finished_run(&env, "fails").await;
        let status = failed.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(JobRunPhase::Failed), "fails: {status:?}");
        assert_eq!(status.exit_code, Some(3), "fails: {status:?}");
        assert!(
            status.completion_time.is_some(),
            "fails: no completionTime: {status:?}"
        );
        env.eventually(Duration::from_secs(60), "a Failed Event", || async {
            let events = env.events_of("fails").await;
            if events.iter().any(|e| e.reason.as_deref() == Some("Failed")) {
                Ok(())
            } else {
                Err(harness::describe_events(&events))
            }
        })
        .await;
    })
    .await;
}
