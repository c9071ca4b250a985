//! Tasks on a real cluster: one job template and one concurrency limit shared by several
//! Schedules, a Schedule waiting for its Task, env and args per Schedule. The scenarios of
//! crates/horolog/tests/tasks.rs, on the wall clock.

use std::time::Duration;

use horolog::api::{TASK_LABEL, Task};
use kube::ResourceExt;
use kube::api::PostParams;
use serde_json::json;

use super::*;

/// A Task running busybox with `script` (and `env` on its container), with the given shared
/// limit.
fn task(name: &str, script: &str, env: Value, max_running: Option<i32>) -> Value {
    let mut template = pod_template(script);
    template["spec"]["containers"][0]["env"] = env;
    let mut spec = json!({"jobTemplate": {"spec": {"template": template, "activeDeadlineSeconds": 120}}});
    if let Some(limit) = max_running {
        spec["maxRunningJobs"] = json!(limit);
    }
    json!({"apiVersion": "horolog.dev/v1alpha1", "kind": "Task", "metadata": {"name": name}, "spec": spec})
}

/// A Schedule every `interval` that runs Task `task`; `extra` is merged into its spec.
fn using(name: &str, interval: &str, task: &str, extra: Value) -> Value {
    let mut object = schedule(name, json!({"interval": interval}), extra);
    if let Some(spec) = object["spec"].as_object_mut() {
        spec.remove("jobTemplate");
        spec.insert("taskRef".into(), json!({"name": task}));
    }
    object
}

async fn create_task(env: &Env, object: &Value) -> Task {
    let task: Task = serde_json::from_value(object.clone()).unwrap_or_else(|err| panic!("Task: {err}"));
    env.tasks()
        .create(&PostParams::default(), &task)
        .await
        .unwrap_or_else(|err| panic!("create Task {}: {err}", task.name_any()))
}

/// The Pods of the Task's runs (label `horolog.dev/task`) not finished and not being deleted.
async fn live_pods_of_task(env: &Env, task: &str) -> Vec<String> {
    labelled(env.pods(), TASK_LABEL, task)
        .await
        .into_iter()
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
            p.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
        })
        .map(|p| p.name_any())
        .collect()
}

/// (operator; with a node that runs pods, also runs that finish) A Task with maxRunningJobs 1
/// shared by two Schedules (4 s intervals, pods of 3 s): sampled every 500 ms for 30 s, never
/// more than one live Pod and one Running JobRun among all their runs; Task status counts 2
/// Schedules and at most 1 running job. With a node, runs of both Schedules succeed one after
/// the other; without, the first run holds the slot and every other run waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_limit_is_shared_by_all_its_schedules() {
    e2e("task-shared", Needs::Operator, |env| async move {
        let pods_run = harness::pods_run(&env).await;
        create_task(
            &env,
            &task(
                "report",
                "sleep 3; echo done > /dev/termination-log",
                json!([]),
                Some(1),
            ),
        )
        .await;
        let history = json!({"successfulRunsHistoryLimit": 100, "failedRunsHistoryLimit": 100});
        for name in ["a", "b"] {
            apply_schedule(&env, &using(name, "4s", "report", history.clone())).await;
        }
        let mut violations = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            let live = live_pods_of_task(&env, "report").await;
            let mut runs = runs_of(&env, "a").await;
            runs.extend(runs_of(&env, "b").await);
            let running: Vec<String> = runs
                .iter()
                .filter(|r| phase(r) == Some(JobRunPhase::Running))
                .map(|r| r.name_any())
                .collect();
            if live.len() > 1 || running.len() > 1 {
                violations.push(format!("live Pods {live:?}, Running runs {running:?}"));
            }
            let task = env.tasks().get("report").await.ok().and_then(|t| t.status);
            if let Some(status) = &task
                && status.running_jobs > 1
            {
                violations.push(format!("Task status {status:?}"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        for name in ["a", "b"] {
            patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
        }
        assert!(
            violations.is_empty(),
            "two runs of Task report ran at once: {violations:#?}"
        );
        env.eventually(Duration::from_secs(60), "Task status.schedules 2", || async {
            let status = env
                .tasks()
                .get("report")
                .await
                .map_err(|err| format!("get: {err}"))?
                .status
                .unwrap_or_default();
            if status.schedules == 2 {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        })
        .await;
        let (a, b) = (runs_of(&env, "a").await, runs_of(&env, "b").await);
        for run in a.iter().chain(&b) {
            assert_eq!(
                run.labels().get(TASK_LABEL).map(String::as_str),
                Some("report"),
                "{} label {TASK_LABEL}",
                run.name_any()
            );
        }
        match pods_run {
            Ok(_) => {
                let succeeded =
                    |runs: &[JobRun]| runs.iter().any(|r| phase(r) == Some(JobRunPhase::Succeeded));
                assert!(
                    succeeded(&a) && succeeded(&b),
                    "both Schedules get their turn: a {}, b {}",
                    describe_runs(&a),
                    describe_runs(&b)
                );
            }
            Err(why) => {
                println!("task-shared: {why}; checking that one run holds the slot and the others wait");
                env.eventually(
                    Duration::from_secs(30),
                    "one run holding the slot, every other Waiting",
                    || async {
                        let mut runs = runs_of(&env, "a").await;
                        runs.extend(runs_of(&env, "b").await);
                        let started = runs
                            .iter()
                            .filter(|r| phase(r) != Some(JobRunPhase::Waiting))
                            .count();
                        if started == 1 {
                            Ok(())
                        } else {
                            Err(describe_runs(&runs))
                        }
                    },
                )
                .await;
            }
        }
    })
    .await;
}

/// (operator) A Schedule whose Task does not exist is Ready=False reason TaskNotFound with an
/// Event, and fires nothing; when the Task is created it becomes Ready and runs the fire time
/// that passed meanwhile (its creation time), labelled with the Task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_whose_task_is_missing_waits_and_fires_when_it_appears() {
    e2e("task-missing", Needs::Operator, |env| async move {
        let name = "early";
        let applied = apply_schedule(&env, &using(name, "1h", "later", json!({}))).await;
        let created = created_at(&applied.metadata);
        let schedule = wait_schedule(
            &env,
            name,
            Duration::from_secs(60),
            "Ready=False TaskNotFound",
            |s| ready_of(s) == Some(("False".into(), "TaskNotFound".into())),
        )
        .await;
        let message = schedule
            .condition("Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        assert!(
            message.contains("later"),
            "the Ready message names the Task: {message:?}"
        );
        wait_event(&env, name, "TaskNotFound", Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let runs = runs_of(&env, name).await;
        assert!(
            runs.is_empty(),
            "fired without its Task: {}",
            describe_runs(&runs)
        );

        create_task(
            &env,
            &task("later", "echo ok > /dev/termination-log", json!([]), None),
        )
        .await;
        wait_schedule(&env, name, Duration::from_secs(60), "Ready=True", |s| {
            ready_of(s).is_some_and(|(status, _)| status == "True")
        })
        .await;
        let runs = wait_runs(&env, name, Duration::from_secs(60), "a run", |runs| {
            !runs.is_empty()
        })
        .await;
        assert_eq!(
            fire_times(&runs),
            vec![created],
            "the fire time that passed meanwhile (the creation time) runs"
        );
        let run = runs[0].name_any();
        assert_eq!(
            runs[0].labels().get(TASK_LABEL).map(String::as_str),
            Some("later"),
            "{run}"
        );
        wait_pod_of(&env, &run, Duration::from_secs(30)).await;
    })
    .await;
}

/// (operator; the result with a node that runs pods) A Schedule of a Task adds its env to the
/// Task's container (replacing the Task's own SOURCE, keeping its other variables) and
/// replaces the first container's args; the Pod also gets HOROLOG_SCHEDULE, HOROLOG_JOBRUN,
/// HOROLOG_FIRE_TIME and HOROLOG_ATTEMPT and the Task label. Where pods run, the process sees
/// them: its result is `s3://incoming --batch-size 1000 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_and_args_of_a_schedule_reach_the_pod() {
    e2e("task-env", Needs::Operator, |env| async move {
        let script = r#"echo "$SOURCE $0 $1 $HOROLOG_ATTEMPT" > /dev/termination-log"#;
        let task_env = json!([{"name": "SOURCE", "value": "default"}, {"name": "KEEP", "value": "yes"}]);
        create_task(&env, &task("report", script, task_env, None)).await;
        let name = "incoming";
        let extra = json!({
            "env": [{"name": "SOURCE", "value": "s3://incoming"}],
            "args": ["--batch-size", "1000"],
        });
        apply_schedule(&env, &using(name, "1h", "report", extra)).await;
        let runs = wait_runs(&env, name, Duration::from_secs(60), "a run", |runs| {
            !runs.is_empty()
        })
        .await;
        let run = runs[0].name_any();
        let fire = runs[0]
            .spec
            .fire_time
            .unwrap_or_else(|| panic!("{run} has no fireTime"));
        let pod = wait_pod_of(&env, &run, Duration::from_secs(30)).await;
        assert_eq!(
            pod.labels().get(TASK_LABEL).map(String::as_str),
            Some("report"),
            "{} label {TASK_LABEL}",
            pod.name_any()
        );
        let container = pod.spec.clone().unwrap_or_default().containers.remove(0);
        let vars: Vec<(String, String)> = container
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.value.unwrap_or_default()))
            .collect();
        let values = |name: &str| -> Vec<&str> {
            vars.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(values("SOURCE"), ["s3://incoming"], "{vars:?}");
        assert_eq!(values("KEEP"), ["yes"], "{vars:?}");
        assert_eq!(values("HOROLOG_SCHEDULE"), [name], "{vars:?}");
        assert_eq!(values("HOROLOG_JOBRUN"), [run.as_str()], "{vars:?}");
        assert_eq!(values("HOROLOG_ATTEMPT"), ["1"], "{vars:?}");
        let fire_env = values("HOROLOG_FIRE_TIME");
        let parsed = fire_env
            .first()
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.to_utc());
        assert_eq!(parsed, Some(fire), "HOROLOG_FIRE_TIME {fire_env:?}");
        assert_eq!(
            container.args,
            Some(vec!["--batch-size".to_string(), "1000".to_string()]),
            "args"
        );
        if !pods_run_or_skip(&env, "the result of the Task's pod").await {
            return;
        }
        let done = finished_run(&env, &run).await;
        let status = done.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(JobRunPhase::Succeeded), "{status:?}");
        assert_eq!(
            status.result.as_deref().map(str::trim),
            Some("s3://incoming --batch-size 1000 1"),
            "{status:?}"
        );
    })
    .await;
}
