//! Local mode end to end: manifests run as real processes on this host, in real (short) time.
//! Every wait is on a condition of the saved state, bounded by a timeout; no test sleeps to
//! synchronise (the one sleep in the restart test is the downtime being tested).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use horolog::api::{JobRun, JobRunPhase, Schedule};
use horolog::clock::SystemClock;
use horolog_local::{LocalError, LocalOptions, PodRunner, run_local_until};
use horolog_memserver::ApiServer;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any one condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// The table and notes local mode prints, shared with the test.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("horolog-local-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A Schedule manifest running `script` with `sh -c`.
fn schedule(name: &str, spec: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: horolog.dev/v1alpha1
kind: Schedule
metadata: {{name: {name}}}
spec:
{spec}
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: main
              image: busybox:1.37
              command: ["sh", "-c", {script:?}]
"#
    )
}

/// A one-off JobRun manifest with `container` (YAML flow mapping) and extra `spec` lines.
fn jobrun(name: &str, spec: &str, container: &str) -> String {
    format!(
        r#"
apiVersion: horolog.dev/v1alpha1
kind: JobRun
metadata: {{name: {name}}}
spec:
{spec}
  template:
    spec:
      containers:
        - {container}
"#
    )
}

/// Local mode running in the background.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), LocalError>>,
    out: Output,
}

fn start(manifests: &Path, state: &Path) -> Running {
    let out = Output::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = LocalOptions::new(manifests)
        .with_state(state)
        .with_output(out.clone());
    let task = tokio::spawn(run_local_until(options, async {
        let _ = stopped.await;
    }));
    Running { stop, task, out }
}

impl Running {
    /// Stops local mode, checks it ended without error, and returns what it printed.
    async fn finish(self) -> String {
        let _ = self.stop.send(());
        let ended = tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("local mode stops in time")
            .expect("local mode does not panic");
        let text = self.out.text();
        if let Err(err) = ended {
            panic!("local mode failed: {err}\n{text}");
        }
        text
    }
}

/// The objects of `kind` in the state file (empty while it is not written yet).
fn saved<T: serde::de::DeserializeOwned>(state: &Path, kind: &str) -> Vec<T> {
    let Ok(text) = std::fs::read_to_string(state) else {
        return Vec::new();
    };
    let Ok(list) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["kind"] == kind)
        .filter_map(|item| serde_json::from_value(item.clone()).ok())
        .collect()
}

/// The saved JobRuns, by fire time.
fn saved_runs(state: &Path) -> Vec<JobRun> {
    let mut runs: Vec<JobRun> = saved(state, "JobRun");
    runs.sort_by_key(|run| (run.spec.fire_time, run.name_any()));
    runs
}

/// Waits until the saved JobRuns satisfy `condition`; fails with `what` and the output.
async fn runs_when(
    state: &Path,
    local: &Running,
    what: &str,
    condition: impl Fn(&[JobRun]) -> bool,
) -> Vec<JobRun> {
    let wait = async {
        loop {
            let runs = saved_runs(state);
            if condition(&runs) {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    match tokio::time::timeout(PATIENCE, wait).await {
        Ok(runs) => runs,
        Err(_) => panic!(
            "timed out waiting for {what}; runs: {:#?}\noutput:\n{}",
            saved_runs(state)
                .iter()
                .map(|r| (r.name_any(), r.status.clone()))
                .collect::<Vec<_>>(),
            local.out.text()
        ),
    }
}

fn phase(run: &JobRun) -> JobRunPhase {
    run.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

fn named<'a>(runs: &'a [JobRun], name: &str) -> Option<&'a JobRun> {
    runs.iter().find(|r| r.name_any() == name)
}

fn finished(runs: &[JobRun], name: &str) -> bool {
    named(runs, name).is_some_and(|r| phase(r).is_finished())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_schedule_runs_its_command_and_records_the_termination_message_as_result() {
    let dir = scratch("interval");
    let manifest = dir.join("every-second.yaml");
    std::fs::write(
        &manifest,
        schedule(
            "every-second",
            "  trigger: {interval: 1s}\n  successfulRunsHistoryLimit: 10",
            "echo ok > /dev/termination-log",
        ),
    )
    .expect("write manifest");
    let state = dir.join("state.json");
    let local = start(&manifest, &state);

    let runs = runs_when(&state, &local, "two succeeded runs", |runs| {
        runs.iter().filter(|r| phase(r) == JobRunPhase::Succeeded).count() >= 2
    })
    .await;
    let output = local.finish().await;

    for run in runs.iter().filter(|r| phase(r) == JobRunPhase::Succeeded) {
        let status = run.status.clone().unwrap_or_default();
        assert_eq!(status.result.as_deref(), Some("ok"), "{}", run.name_any());
        assert_eq!(status.exit_code, Some(0));
        assert!(status.start_time.is_some() && status.completion_time.is_some());
        let fire = run.spec.fire_time.expect("scheduled runs have a fire time");
        assert_eq!(run.name_any(), format!("every-second-{}", fire.timestamp()));
    }
    assert!(output.contains("WARNING: local mode runs each pod's command directly on this host"));
    assert!(output.contains(horolog_local::HEADER), "{output}");
    let succeeded_line = output
        .lines()
        .find(|l| l.contains(" Succeeded "))
        .unwrap_or_else(|| panic!("a Succeeded line in\n{output}"));
    assert!(succeeded_line.starts_with("every-second-"), "{succeeded_line}");
    assert!(
        succeeded_line.trim_end().ends_with(" 0     ok"),
        "{succeeded_line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_off_runs_report_exit_codes_results_env_and_why_they_cannot_run() {
    let dir = scratch("one-off");
    let manifest = dir.join("runs.yaml");
    let documents = [
        jobrun(
            "fails",
            "",
            r#"{name: main, image: busybox, command: [sh, -c, "echo oops > /dev/termination-log; exit 3"]}"#,
        ),
        jobrun(
            "greets",
            "",
            r#"{name: main, image: busybox, env: [{name: GREETING, value: hi}], command: [sh, -c, 'echo "$GREETING" > "$HOROLOG_TERMINATION_LOG"']}"#,
        ),
        jobrun("no-command", "", "{name: main, image: busybox}"),
        jobrun(
            "no-such-program",
            "",
            "{name: main, image: busybox, command: [/nonexistent/horolog-test-program]}",
        ),
    ];
    std::fs::write(&manifest, documents.join("---\n")).expect("write manifest");
    let state = dir.join("state.json");
    let local = start(&manifest, &state);

    let runs = runs_when(&state, &local, "all four runs finished", |runs| {
        ["fails", "greets", "no-command", "no-such-program"]
            .iter()
            .all(|name| finished(runs, name))
    })
    .await;
    local.finish().await;

    let status = |name: &str| {
        named(&runs, name)
            .and_then(|r| r.status.clone())
            .unwrap_or_default()
    };
    let fails = status("fails");
    assert_eq!(fails.phase, Some(JobRunPhase::Failed));
    assert_eq!(fails.exit_code, Some(3));
    assert_eq!(fails.result.as_deref(), Some("oops"));

    let greets = status("greets");
    assert_eq!(greets.phase, Some(JobRunPhase::Succeeded));
    assert_eq!(greets.result.as_deref(), Some("hi"));

    let no_command = status("no-command");
    assert_eq!(no_command.phase, Some(JobRunPhase::Failed));
    assert_eq!(no_command.reason.as_deref(), Some("CommandRequired"));
    let message = no_command.message.unwrap_or_default();
    assert!(
        message.contains("local mode needs an explicit command"),
        "{message}"
    );

    let missing = status("no-such-program");
    assert_eq!(missing.phase, Some(JobRunPhase::Failed));
    assert_eq!(missing.reason.as_deref(), Some("StartError"));
    let message = missing.message.unwrap_or_default();
    assert!(message.contains("horolog-test-program"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_seconds_kills_a_long_command_and_fails_the_run_with_deadline_exceeded() {
    let dir = scratch("deadline");
    let manifest = dir.join("slow.yaml");
    std::fs::write(
        &manifest,
        jobrun(
            "slow",
            "  activeDeadlineSeconds: 1",
            "{name: main, image: busybox, command: [sleep, '30']}",
        ),
    )
    .expect("write manifest");
    let state = dir.join("state.json");
    let started = std::time::Instant::now();
    let local = start(&manifest, &state);

    let runs = runs_when(&state, &local, "the slow run finished", |runs| {
        finished(runs, "slow")
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped by the deadline, not by sleep's end"
    );
    local.finish().await;

    let status = named(&runs, "slow")
        .and_then(|r| r.status.clone())
        .unwrap_or_default();
    assert_eq!(status.phase, Some(JobRunPhase::Failed));
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(status.exit_code, Some(128 + 15), "ended by SIGTERM");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_from_the_state_file_neither_repeats_nor_loses_fire_times() {
    let dir = scratch("restart");
    let manifest = dir.join("tick.yaml");
    std::fs::write(
        &manifest,
        schedule(
            "tick",
            "  trigger: {interval: 1s}\n  coalesce: All\n  successfulRunsHistoryLimit: 100\n  failedRunsHistoryLimit: 100",
            "echo tick > /dev/termination-log",
        ),
    )
    .expect("write manifest");
    let state = dir.join("state.json");

    let local = start(&manifest, &state);
    let first = runs_when(&state, &local, "three succeeded runs", |runs| {
        runs.iter().filter(|r| phase(r) == JobRunPhase::Succeeded).count() >= 3
    })
    .await;
    local.finish().await;
    let first = saved_runs(&state)
        .into_iter()
        .filter(|r| first.iter().any(|f| f.uid() == r.uid()));
    let first: Vec<JobRun> = first.collect();

    // The downtime under test: fire times pass while nothing runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let local = start(&manifest, &state);
    let last_before = first.iter().filter_map(|r| r.spec.fire_time).max();
    runs_when(&state, &local, "three more succeeded runs", |runs| {
        runs.iter()
            .filter(|r| r.spec.fire_time > last_before && phase(r) == JobRunPhase::Succeeded)
            .count()
            >= 3
    })
    .await;
    let output = local.finish().await;
    assert!(output.contains("state loaded from"), "{output}");

    let runs = saved_runs(&state);
    for before in &first {
        let after = named(&runs, &before.name_any()).expect("runs of the first session are kept");
        assert_eq!(after.uid(), before.uid(), "the same run, not a new one");
    }
    let fire_times: Vec<DateTime<Utc>> = runs.iter().filter_map(|r| r.spec.fire_time).collect();
    assert_eq!(fire_times.len(), runs.len());
    for pair in fire_times.windows(2) {
        assert_eq!(
            (pair[1] - pair[0]).num_milliseconds(),
            1000,
            "contiguous, unique fire times: {fire_times:?}"
        );
    }
    for run in &runs {
        let fire = run.spec.fire_time.unwrap_or_default();
        assert_eq!(run.name_any(), format!("tick-{}", fire.timestamp()));
    }
    let schedules: Vec<Schedule> = saved(&state, "Schedule");
    let last_fire = schedules
        .first()
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.last_fire_time);
    assert_eq!(
        last_fire,
        fire_times.last().copied(),
        "lastFireTime is the newest run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_runs_locally_and_the_ones_due_at_creation_succeed() {
    let dir = scratch("examples");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let state = dir.join("state.json");
    let local = start(&examples, &state);

    // Due at creation: intervals fire at their start, run-now and the one-off JobRun at once.
    let due_now = ["every-30s", "coalesce-all", "run-now"];
    runs_when(&state, &local, "a succeeded run of each", |runs| {
        let succeeded = |schedule: &str| {
            runs.iter().any(|r| {
                r.spec.schedule_name.as_deref() == Some(schedule) && phase(r) == JobRunPhase::Succeeded
            })
        };
        // examples/backfill.yaml: the five minutes from 2026-01-01T00:00Z of every-minute.
        let backfilled = (0..5).all(|minute| {
            named(runs, &format!("every-minute-{}", 1_767_225_600 + 60 * minute))
                .is_some_and(|r| phase(r) == JobRunPhase::Succeeded)
        });
        due_now.iter().all(|s| succeeded(s))
            && named(runs, "one-off").is_some_and(|r| phase(r) == JobRunPhase::Succeeded)
            && backfilled
    })
    .await;
    // The `sleep 45` examples are running now; stopping must end them, not wait for them.
    let output = local.finish().await;

    let runs = saved_runs(&state);
    let one_off = named(&runs, "one-off").and_then(|r| r.status.clone());
    assert_eq!(one_off.and_then(|s| s.result).as_deref(), Some("one-off done"));
    assert!(
        !output.contains("warning: Schedule"),
        "every example is Ready:\n{output}"
    );
    for run in &runs {
        assert_ne!(
            phase(run),
            JobRunPhase::Running,
            "stopping records the interrupted runs: {}",
            run.name_any()
        );
    }
    let pods: Vec<Pod> = saved(&state, "Pod");
    for pod in pods {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        assert!(
            matches!(phase.as_str(), "Succeeded" | "Failed"),
            "no pod is left running after stop: {} {phase}",
            pod.name_any()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn manifests_without_schedules_or_jobruns_are_refused() {
    let dir = scratch("refused");
    let manifest = dir.join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .expect("write");
    let options = LocalOptions::new(&manifest).with_output(Output::default());
    let result = run_local_until(options, async {}).await;
    assert!(matches!(result, Err(LocalError::NothingToRun(_))), "{result:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_manifest_error_stops_local_mode_with_its_message() {
    let dir = scratch("bad-manifest");
    let manifest = dir.join("bad.yaml");
    std::fs::write(&manifest, schedule("bad", "  trigger: {interval: 5x}", "true")).expect("write");
    let options = LocalOptions::new(&manifest).with_output(Output::default());
    let err = run_local_until(options, async {})
        .await
        .expect_err("a bad duration is an error");
    let shown = err.to_string();
    assert!(
        shown.contains("spec.trigger.interval") && shown.contains("5x"),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pod_kills_its_process() {
    let dir = scratch("delete-pod");
    let pid_file = dir.join("pid");
    let server = ApiServer::with_crds(Arc::new(SystemClock), &horolog::crd::crds());
    let client = server.client();
    let (stop, stopped) = oneshot::channel::<()>();
    let executor = tokio::spawn(
        PodRunner::new(client.clone(), Arc::new(SystemClock), dir.join("work")).run(async {
            let _ = stopped.await;
        }),
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "sleeper", "namespace": "default"},
        "spec": {"containers": [{
            "name": "main", "image": "busybox",
            "command": ["sh", "-c", format!("echo $$ > {}; exec sleep 30", pid_file.display())],
        }]},
    }))
    .expect("a pod");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");

    let pid = tokio::time::timeout(PATIENCE, async {
        loop {
            let running = pods
                .get("sleeper")
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.phase)
                .is_some_and(|phase| phase == "Running");
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok());
            if let (true, Some(pid)) = (running, pid) {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the pod runs");

    pods.delete("sleeper", &DeleteParams::default())
        .await
        .expect("delete pod");
    let alive = |pid: u32| {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    tokio::time::timeout(PATIENCE, async {
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the process is gone soon after its pod");
    let _ = stop.send(());
    let _ = tokio::time::timeout(PATIENCE, executor).await;
    let _ = std::fs::remove_dir_all(&dir);
}
