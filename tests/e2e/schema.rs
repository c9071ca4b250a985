//! What the API server alone does with the CRDs of the second round: the CEL rules of Tasks,
//! Schedule controls, Backfills and JobRuns; the schema's defaults; the printer columns of
//! JobRuns (`-o wide`), Tasks and Backfills as rendered Tables. No operator.

use horolog::api::{
    ALLOW_HAS_NO_LIMIT_MESSAGE, BACKFILL_RANGE_MESSAGE, Backfill, ENV_ARGS_NEED_TASK_MESSAGE,
    JOB_TEMPLATE_XOR_TASK_MESSAGE, TEMPLATE_XOR_TASK_MESSAGE, Task,
};
use serde_json::json;

use super::*;

/// Server-side applies `object` as a dry run (nothing is stored), untyped, so an accepted bad
/// value reads as "accepted" rather than as a decoding error.
async fn dry_run_apply(
    env: &Env,
    resource: &ApiResource,
    object: &Value,
) -> Result<DynamicObject, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &env.ns, resource);
    let params = PatchParams {
        dry_run: true,
        ..PatchParams::apply(harness::MANAGER).force()
    };
    api.patch(&name_of(object), &params, &Patch::Apply(object)).await
}

fn backfill(from: &str, to: &str) -> Value {
    json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "Backfill",
        "metadata": {"name": "probe"},
        "spec": {"scheduleName": "nightly", "from": from, "to": to},
    })
}

fn task_object(spec: Value) -> Value {
    json!({"apiVersion": "horolog.dev/v1alpha1", "kind": "Task", "metadata": {"name": "probe"}, "spec": spec})
}

fn jobrun_object(spec: Value) -> Value {
    json!({"apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun", "metadata": {"name": "probe"}, "spec": spec})
}

/// `schedule()`'s object with `spec` changed by `edit`.
fn schedule_with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut object = schedule("probe", json!({"cron": "0 9 * * *"}), json!({}));
    if let Some(spec) = object["spec"].as_object_mut() {
        edit(spec);
    }
    object
}

/// (API server) The CEL rules and bounds of the second round reject bad input at apply time
/// with a 422 whose message carries the rule's message (the constants of api/*.rs) — taskRef
/// together with jobTemplate (or neither), env or args without taskRef, concurrencyPolicy
/// Allow with maxRunningJobs, pauseAfterFailures 0, maxRuns 0, a Backfill whose `to` is not
/// after `from`, a JobRun with both template and taskRef (or neither), a Task without a pod
/// template — while the same objects without the fault are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cel_rules_of_tasks_controls_backfills_and_jobruns_reject_bad_input() {
    e2e("cel-next", Needs::ApiServer, |env| async move {
        let schedules = ApiResource::erase::<Schedule>(&());
        let jobruns = ApiResource::erase::<JobRun>(&());
        let tasks = ApiResource::erase::<Task>(&());
        let backfills = ApiResource::erase::<Backfill>(&());
        let template = || json!({"spec": {"template": pod_template("true")}});
        let run_template = pod_template("true");

        let good: Vec<(&str, &ApiResource, Value)> = vec![
            (
                "a Schedule of a Task with env and args",
                &schedules,
                schedule_with(|spec| {
                    spec.remove("jobTemplate");
                    spec.insert("taskRef".into(), json!({"name": "report"}));
                    spec.insert(
                        "env".into(),
                        json!([{"name": "SOURCE", "value": "s3://incoming"}]),
                    );
                    spec.insert("args".into(), json!(["--batch-size", "1000"]));
                }),
            ),
            (
                "concurrencyPolicy Allow without maxRunningJobs, pauseAfterFailures 1, maxRuns 1",
                &schedules,
                schedule_with(|spec| {
                    spec.insert("concurrencyPolicy".into(), json!("Allow"));
                    spec.insert("pauseAfterFailures".into(), json!(1));
                    spec.insert("maxRuns".into(), json!(1));
                }),
            ),
            (
                "a Backfill of one day",
                &backfills,
                backfill("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
            ),
            (
                "a JobRun of a Task",
                &jobruns,
                jobrun_object(json!({"taskRef": {"name": "report"}})),
            ),
            (
                "a JobRun with a template",
                &jobruns,
                jobrun_object(json!({"template": run_template})),
            ),
            (
                "a Task with a pod template",
                &tasks,
                task_object(json!({"jobTemplate": template(), "maxRunningJobs": 2})),
            ),
        ];
        for (what, resource, object) in &good {
            if let Err(err) = dry_run_apply(&env, resource, object).await {
                panic!("{what} was rejected: {err}");
            }
        }

        let cases: Vec<(&str, &ApiResource, Value, Vec<&str>)> = vec![
            (
                "taskRef together with jobTemplate",
                &schedules,
                schedule_with(|spec| {
                    spec.insert("taskRef".into(), json!({"name": "report"}));
                }),
                vec![JOB_TEMPLATE_XOR_TASK_MESSAGE],
            ),
            (
                "neither taskRef nor jobTemplate",
                &schedules,
                schedule_with(|spec| {
                    spec.remove("jobTemplate");
                }),
                vec![JOB_TEMPLATE_XOR_TASK_MESSAGE],
            ),
            (
                "env without taskRef",
                &schedules,
                schedule_with(|spec| {
                    spec.insert("env".into(), json!([{"name": "SOURCE", "value": "x"}]));
                }),
                vec![ENV_ARGS_NEED_TASK_MESSAGE],
            ),
            (
                "args without taskRef",
                &schedules,
                schedule_with(|spec| {
                    spec.insert("args".into(), json!(["--all"]));
                }),
                vec![ENV_ARGS_NEED_TASK_MESSAGE],
            ),
            (
                "concurrencyPolicy Allow with maxRunningJobs",
                &schedules,
                schedule_with(|spec| {
                    spec.insert("concurrencyPolicy".into(), json!("Allow"));
                    spec.insert("maxRunningJobs".into(), json!(2));
                }),
                vec![ALLOW_HAS_NO_LIMIT_MESSAGE],
            ),
            (
                "pauseAfterFailures 0",
                &schedules,
                schedule_with(|spec| {
                    spec.insert("pauseAfterFailures".into(), json!(0));
                }),
                vec!["spec.pauseAfterFailures", "greater than or equal to 1"],
            ),
            (
                "maxRuns 0",
                &schedules,
                schedule_with(|spec| {
                    spec.insert("maxRuns".into(), json!(0));
                }),
                vec!["spec.maxRuns", "greater than or equal to 1"],
            ),
            (
                "a Backfill whose to equals from",
                &backfills,
                backfill("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
                vec![BACKFILL_RANGE_MESSAGE],
            ),
            (
                "a Backfill whose to is before from",
                &backfills,
                backfill("2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"),
                vec![BACKFILL_RANGE_MESSAGE],
            ),
            (
                "a JobRun with both template and taskRef",
                &jobruns,
                jobrun_object(json!({"template": pod_template("true"), "taskRef": {"name": "report"}})),
                vec![TEMPLATE_XOR_TASK_MESSAGE],
            ),
            (
                "a JobRun with neither template nor taskRef",
                &jobruns,
                jobrun_object(json!({"backoffLimit": 1})),
                vec![TEMPLATE_XOR_TASK_MESSAGE],
            ),
            (
                "a Task without a pod template",
                &tasks,
                task_object(json!({"jobTemplate": {"spec": {"backoffLimit": 1}}})),
                vec!["jobTemplate.spec.template is required"],
            ),
        ];
        let mut failures = Vec::new();
        for (what, resource, object, expected) in cases {
            let result = dry_run_apply(&env, resource, &object).await;
            failures.extend(rejection_failure(what, result, &expected));
        }
        assert_rejected_as_expected(&failures);
    })
    .await;
}

/// (API server) The schema's defaults: a Schedule created without timezone, paused and
/// coalesce reads back with `spec.trigger.timezone: UTC`, `spec.paused: false` and
/// `spec.coalesce: Latest`; a JobRun reads back with `status.phase: Scheduled` although nothing
/// wrote its status (the CRD defaults it; no operator runs in this test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_defaults_what_users_leave_out() {
    e2e("defaults", Needs::ApiServer, |env| async move {
        let schedules: Api<DynamicObject> =
            Api::namespaced_with(env.client.clone(), &env.ns, &ApiResource::erase::<Schedule>(&()));
        let bare = schedule("bare", json!({"cron": "0 9 * * *"}), json!({}));
        assert!(bare["spec"].get("paused").is_none() && bare["spec"]["trigger"].get("timezone").is_none());
        let object: DynamicObject =
            serde_json::from_value(bare).unwrap_or_else(|err| panic!("Schedule bare: {err}"));
        schedules
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|err| panic!("create Schedule bare: {err}"));
        let stored = schedules
            .get("bare")
            .await
            .unwrap_or_else(|err| panic!("get Schedule bare: {err}"));
        let spec = &stored.data["spec"];
        assert_eq!(spec["trigger"]["timezone"], json!("UTC"), "{spec}");
        assert_eq!(spec["paused"], json!(false), "{spec}");
        assert_eq!(spec["coalesce"], json!("Latest"), "{spec}");

        let jobruns: Api<DynamicObject> =
            Api::namespaced_with(env.client.clone(), &env.ns, &ApiResource::erase::<JobRun>(&()));
        let object: DynamicObject = serde_json::from_value(one_off("fresh", "true"))
            .unwrap_or_else(|err| panic!("JobRun fresh: {err}"));
        jobruns
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|err| panic!("create JobRun fresh: {err}"));
        let stored = jobruns
            .get("fresh")
            .await
            .unwrap_or_else(|err| panic!("get JobRun fresh: {err}"));
        assert_eq!(
            stored.data["status"],
            json!({"phase": "Scheduled"}),
            "read back: {}",
            stored.data
        );
        let typed = env
            .jobruns()
            .get("fresh")
            .await
            .unwrap_or_else(|err| panic!("get JobRun fresh: {err}"));
        assert_eq!(phase(&typed), Some(JobRunPhase::Scheduled));
    })
    .await;
}

/// The names of a Table's columns and the priority of each.
fn columns_of(table: &Value) -> Vec<(String, i64)> {
    table["columnDefinitions"]
        .as_array()
        .unwrap_or_else(|| panic!("not a Table: {table}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// The cell of `column` in the Table's first row.
fn cell<'a>(table: &'a Value, column: &str) -> &'a Value {
    let index = columns_of(table)
        .iter()
        .position(|(name, _)| name == column)
        .unwrap_or_else(|| panic!("no column {column}: {table}"));
    &table["rows"][0]["cells"][index]
}

/// Checks the Table's columns (Name first) against `declared`, and the cells in `cells`.
fn check_table(kind: &str, table: &Value, declared: &[(&str, i32)], cells: &[(&str, Value)]) {
    let mut expected = vec![("Name".to_string(), 0)];
    expected.extend(declared.iter().map(|(n, p)| (n.to_string(), i64::from(*p))));
    assert_eq!(
        columns_of(table),
        expected,
        "{kind} Table columns (name, priority)"
    );
    for (column, value) in cells {
        assert_eq!(cell(table, column), value, "{kind} column {column}: {table}");
    }
}

/// Merge-patches the status subresource of `plural/name` (standing in for the operator).
async fn patch_status<K>(api: &Api<K>, name: &str, status: Value)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .unwrap_or_else(|err| panic!("patch the status of {name}: {err}"));
}

/// (API server) The server renders the columns of JobRuns (POD, ATTEMPTS and REASON only
/// with `-o wide`: priority 1), Tasks (EXECUTOR, MAX RUNNING, RUNNING, SCHEDULES, AGE) and
/// Backfills (SCHEDULE, FROM, TO, PHASE, FIRE TIMES, CREATED, AGE) from the objects' fields;
/// the test writes the status values the operator would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_render_the_columns_of_jobruns_tasks_and_backfills() {
    e2e("tables", Needs::ApiServer, |env| async move {
        let post = PostParams::default();
        let run: JobRun = serde_json::from_value(one_off("wide", "true"))
            .unwrap_or_else(|err| panic!("JobRun wide: {err}"));
        env.jobruns()
            .create(&post, &run)
            .await
            .unwrap_or_else(|err| panic!("create JobRun wide: {err}"));
        patch_status(
            &env.jobruns(),
            "wide",
            json!({"phase": "Running", "podName": "wide-2", "attempts": 2, "reason": "Retrying"}),
        )
        .await;
        let jobrun_table = table(&env, "jobruns", "wide").await;
        check_table(
            "JobRun",
            &jobrun_table,
            &JOBRUN_COLUMNS,
            &[
                ("Name", json!("wide")),
                ("Phase", json!("Running")),
                ("Pod", json!("wide-2")),
                ("Attempts", json!(2)),
                ("Reason", json!("Retrying")),
            ],
        );

        let task: Task = serde_json::from_value(task_object(json!({
            "jobTemplate": {"spec": {"template": pod_template("true"), "executor": "Job"}},
            "maxRunningJobs": 2,
        })))
        .unwrap_or_else(|err| panic!("Task probe: {err}"));
        env.tasks()
            .create(&post, &task)
            .await
            .unwrap_or_else(|err| panic!("create Task probe: {err}"));
        patch_status(&env.tasks(), "probe", json!({"runningJobs": 1, "schedules": 3})).await;
        let task_table = table(&env, "tasks", "probe").await;
        check_table(
            "Task",
            &task_table,
            &TASK_COLUMNS,
            &[
                ("Executor", json!("Job")),
                ("Max Running", json!(2)),
                ("Running", json!(1)),
                ("Schedules", json!(3)),
            ],
        );

        let backfill: Backfill =
            serde_json::from_value(backfill("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"))
                .unwrap_or_else(|err| panic!("Backfill probe: {err}"));
        env.backfills()
            .create(&post, &backfill)
            .await
            .unwrap_or_else(|err| panic!("create Backfill probe: {err}"));
        patch_status(
            &env.backfills(),
            "probe",
            json!({"phase": "Running", "fireTimes": 31, "created": 4}),
        )
        .await;
        let backfill_table = table(&env, "backfills", "probe").await;
        check_table(
            "Backfill",
            &backfill_table,
            &BACKFILL_COLUMNS,
            &[
                ("Schedule", json!("nightly")),
                ("From", json!("2026-01-01T00:00:00Z")),
                ("To", json!("2026-02-01T00:00:00Z")),
                ("Phase", json!("Running")),
                ("Fire Times", json!(31)),
                ("Created", json!(4)),
            ],
        );
    })
    .await;
}
