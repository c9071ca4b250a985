//! The Argo CD health checks in docs/argocd/ run in a real Lua 5.4 interpreter (Argo CD runs
//! gopher-lua, a Lua 5.1; the scripts use nothing newer) against statuses that the real
//! operator writes on the in-memory API server, and against hand-written statuses of the kinds
//! the operator cannot be driven into here. Also: argocd-cm.yaml holds exactly those scripts.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use std::path::PathBuf;

use cluster::Cluster;
use fixtures::*;
use mlua::{Lua, Table, Value as LuaValue};
use serde_json::{Value, json};

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/argocd")
}

fn script(file: &str) -> String {
    std::fs::read_to_string(docs().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A JSON value as Argo CD hands it to Lua: objects and arrays become tables (arrays 1-based).
fn to_lua(lua: &Lua, value: &Value) -> LuaValue {
    match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => LuaValue::Integer(i),
            None => LuaValue::Number(n.as_f64().unwrap()),
        },
        Value::String(s) => LuaValue::String(lua.create_string(s).unwrap()),
        Value::Array(items) => {
            let table = lua.create_table().unwrap();
            for (i, item) in items.iter().enumerate() {
                table.set(i + 1, to_lua(lua, item)).unwrap();
            }
            LuaValue::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table().unwrap();
            for (key, item) in fields {
                table.set(key.as_str(), to_lua(lua, item)).unwrap();
            }
            LuaValue::Table(table)
        }
    }
}

/// (status, message) of the health check `file` for `object`.
fn health(file: &str, object: &Value) -> (String, String) {
    let lua = Lua::new();
    lua.globals().set("obj", to_lua(&lua, object)).unwrap();
    let hs: Table = lua
        .load(script(file))
        .set_name(file)
        .eval()
        .unwrap_or_else(|e| panic!("{file} on {object}: {e}"));
    (hs.get("status").unwrap(), hs.get("message").unwrap())
}

fn status_of(file: &str, object: &Value) -> String {
    health(file, object).0
}

async fn schedule_json(cluster: &Cluster, name: &str) -> Value {
    serde_json::to_value(cluster.schedule(name).await).unwrap()
}

#[tokio::test(start_paused = true)]
async fn schedules_as_the_operator_writes_them() {
    let cluster = Cluster::start().await;
    let check = "health-schedule.lua";
    cluster.apply(every("fine", "1m")).await;
    let mut paused = every("paused", "1m");
    paused.spec.paused = true;
    cluster.apply(paused).await;
    let mut bad = every("bad", "1m");
    bad.spec.trigger.interval = None;
    bad.spec.trigger.cron = Some("61 * * * *".into());
    cluster.apply(bad).await;
    let mut once = every("once", "1m");
    once.spec.max_runs = Some(1);
    cluster.apply(once).await;
    let mut fragile = every("fragile", "1m");
    fragile.spec.pause_after_failures = Some(1);
    cluster.apply(fragile).await;
    cluster.pod_exits("fragile-1767225600-1", 1, "").await;
    cluster.advance(60).await;

    let (status, message) = health(check, &schedule_json(&cluster, "fine").await);
    assert_eq!(status, "Healthy", "{message}");
    let (status, message) = health(check, &schedule_json(&cluster, "paused").await);
    assert_eq!(status, "Suspended", "{message}");
    let (status, message) = health(check, &schedule_json(&cluster, "bad").await);
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("InvalidTrigger: "), "{message}");
    let (status, message) = health(check, &schedule_json(&cluster, "once").await);
    assert_eq!(status, "Healthy");
    assert!(message.starts_with("Finished: "), "{message}");
    let (status, message) = health(check, &schedule_json(&cluster, "fragile").await);
    assert_eq!(
        status, "Degraded",
        "stopped by failures needs a person: {message}"
    );
    assert!(message.starts_with("TooManyFailures: "), "{message}");
}

#[test]
fn a_schedule_the_operator_has_not_seen_yet_is_progressing() {
    let check = "health-schedule.lua";
    let fresh = json!({"metadata": {"name": "a", "generation": 1}});
    assert_eq!(status_of(check, &fresh), "Progressing");
    let stale = json!({"metadata": {"name": "a", "generation": 3}, "status": {
        "observedGeneration": 2,
        "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidTrigger", "message": "x"}]}});
    assert_eq!(
        status_of(check, &stale),
        "Progressing",
        "an edit is not judged by the old status"
    );
}

#[tokio::test(start_paused = true)]
async fn jobruns_as_the_operator_writes_them() {
    let cluster = Cluster::start().await;
    let check = "health-jobrun.lua";
    cluster.apply(every("done", "1m")).await;
    let run = |name: &'static str| {
        let cluster = &cluster;
        async move { serde_json::to_value(cluster.run(name).await.unwrap()).unwrap() }
    };
    assert_eq!(status_of(check, &run("done-1767225600").await), "Progressing");
    cluster.pod_exits("done-1767225600-1", 0, "").await;
    cluster.advance(60).await;
    cluster.pod_exits("done-1767225660-1", 2, "").await;
    assert_eq!(status_of(check, &run("done-1767225600").await), "Healthy");
    let (status, message) = health(check, &run("done-1767225660").await);
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("Failed"), "{message}");
}

#[test]
fn jobrun_phases() {
    let check = "health-jobrun.lua";
    for (phase, want) in [
        ("Scheduled", "Progressing"),
        ("Pending", "Progressing"),
        ("Waiting", "Progressing"),
        ("Running", "Progressing"),
        ("Succeeded", "Healthy"),
        ("Skipped", "Healthy"),
        ("Cancelled", "Healthy"),
        ("Failed", "Degraded"),
        ("Missed", "Degraded"),
    ] {
        let run =
            json!({"metadata": {"name": "r"}, "status": {"phase": phase, "reason": "Why", "message": "m"}});
        assert_eq!(status_of(check, &run), want, "{phase}");
    }
    assert_eq!(
        status_of(check, &json!({"metadata": {"name": "r"}})),
        "Progressing"
    );
}

#[test]
fn backfill_phases() {
    let check = "health-backfill.lua";
    for (phase, want) in [
        ("Pending", "Progressing"),
        ("Running", "Progressing"),
        ("Complete", "Healthy"),
        ("Failed", "Degraded"),
    ] {
        let backfill = json!({"metadata": {"name": "b"}, "status": {"phase": phase, "message": "m"}});
        assert_eq!(status_of(check, &backfill), want, "{phase}");
    }
}

#[test]
fn tasks_and_calendars_follow_their_ready_condition() {
    let check = "health-ready.lua";
    let with = |status: &str, reason: &str| {
        json!({"metadata": {"name": "t", "generation": 2}, "status": {"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": "m"}]}})
    };
    assert_eq!(status_of(check, &with("True", "Valid")), "Healthy");
    for reason in [
        "InvalidTemplate",
        "InvalidCalendar",
        "CalendarCycle",
        "CalendarNotFound",
    ] {
        let (status, message) = health(check, &with("False", reason));
        assert_eq!(status, "Degraded", "{reason}");
        assert!(message.starts_with(reason), "{message}");
    }
    assert_eq!(
        status_of(check, &json!({"metadata": {"name": "t"}})),
        "Progressing"
    );
}

/// argocd-cm.yaml is what users paste: each key must hold exactly its script.
#[test]
fn the_argocd_cm_snippet_holds_the_tested_scripts() {
    let text = script("argocd-cm.yaml");
    let cm: Value = serde_yaml::from_str(&text).unwrap();
    let data = cm["data"].as_object().unwrap();
    for (kind, file) in [
        ("Schedule", "health-schedule.lua"),
        ("JobRun", "health-jobrun.lua"),
        ("Task", "health-ready.lua"),
        ("Backfill", "health-backfill.lua"),
        ("Calendar", "health-ready.lua"),
    ] {
        let key = format!("resource.customizations.health.horolog.dev_{kind}");
        let embedded = data.get(&key).and_then(Value::as_str);
        assert_eq!(
            embedded.map(str::trim_end),
            Some(script(file).trim_end()),
            "{key} in argocd-cm.yaml is not {file}: regenerate it"
        );
    }
    assert_eq!(data.len(), 5, "one key per kind");
}
