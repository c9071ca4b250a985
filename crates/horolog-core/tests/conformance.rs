//! Conformance with APScheduler 4.0.0a6: every case of tests/conformance/vectors.json (real
//! APScheduler output, see generate.py) must give exactly APScheduler's fire times, unless
//! tests/conformance/deviations.json lists the case with horolog's own expected output and the
//! principled reason (TRIGGERS.md explains each category).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use horolog_core::spec::TriggerSpec;
use horolog_core::trigger::Trigger;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    trigger: serde_json::Value,
    apscheduler: String,
    expected_utc: Vec<String>,
    exhausted: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deviation {
    #[serde(default)]
    horolog_utc: Option<Vec<String>>,
    #[serde(default)]
    horolog_exhausted: Option<bool>,
    #[serde(default)]
    horolog_error: Option<String>,
    why: String,
}

/// What horolog produces for a case: its fire times (as many as APScheduler listed, or as
/// many as the deviation lists) and whether it is exhausted right after them.
enum Outcome {
    Rejected(String),
    Fires { times: Vec<String>, exhausted: bool },
}

fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Normalises Python's `isoformat()`-derived UTC strings to chrono's AutoSi form.
fn norm(s: &str) -> String {
    s.parse::<DateTime<Utc>>()
        .map(fmt)
        .unwrap_or_else(|_| s.to_string())
}

fn run(case: &Case, count: usize) -> Outcome {
    let spec: TriggerSpec = match serde_json::from_value(case.trigger.clone()) {
        Ok(s) => s,
        Err(e) => return Outcome::Rejected(format!("spec does not deserialize: {e}")),
    };
    let default_start = spec.start_time.map(|t| t.to_utc()).unwrap_or_default();
    let trigger = match Trigger::compile(&spec, default_start) {
        Ok(t) => t,
        Err(e) => return Outcome::Rejected(e.to_string()),
    };
    let mut times = Vec::new();
    let mut cursor = None;
    for _ in 0..count {
        match trigger.next_after(cursor) {
            Some(t) => {
                times.push(fmt(t));
                cursor = Some(t);
            }
            None => {
                return Outcome::Fires {
                    times,
                    exhausted: true,
                };
            }
        }
    }
    let exhausted = trigger.next_after(cursor).is_none();
    Outcome::Fires { times, exhausted }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Rejected(e) => format!("rejected: {e}"),
        Outcome::Fires { times, exhausted } => format!("{times:?} exhausted={exhausted}"),
    }
}

#[test]
fn apscheduler_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let vectors: Vectors =
        serde_json::from_str(&std::fs::read_to_string(dir.join("vectors.json")).expect("vectors.json"))
            .expect("vectors.json parses");
    let deviations: BTreeMap<String, Deviation> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("deviations.json")).expect("deviations.json"))
            .expect("deviations.json parses");

    let mut failures = Vec::new();
    let (mut passed, mut deviated) = (0, 0);
    let mut used = std::collections::BTreeSet::new();
    for case in &vectors.cases {
        let expected_times: Vec<String> = case.expected_utc.iter().map(|s| norm(s)).collect();
        if let Some(dev) = deviations.get(&case.name) {
            used.insert(case.name.clone());
            deviated += 1;
            assert!(
                !dev.why.trim().is_empty(),
                "{}: deviation without a why",
                case.name
            );
            let count = dev.horolog_utc.as_ref().map_or(expected_times.len(), Vec::len);
            let got = run(case, count);
            let ok = match (&got, dev) {
                (
                    Outcome::Rejected(e),
                    Deviation {
                        horolog_error: Some(want),
                        ..
                    },
                ) => e.contains(want.as_str()),
                (
                    Outcome::Fires { times, exhausted },
                    Deviation {
                        horolog_utc: Some(want),
                        ..
                    },
                ) => {
                    let want: Vec<String> = want.iter().map(|s| norm(s)).collect();
                    *times == want && dev.horolog_exhausted.is_none_or(|e| e == *exhausted)
                }
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{} (deviation): horolog gives {}",
                    case.name,
                    describe(&got)
                ));
            }
            continue;
        }
        let got = run(case, expected_times.len());
        let ok = match (&got, &case.error) {
            (Outcome::Rejected(_), Some(_)) => true,
            (Outcome::Fires { times, exhausted }, None) => {
                *times == expected_times && (!case.exhausted || *exhausted)
            }
            _ => false,
        };
        // HOROLOG_CONFORMANCE_VERBOSE=1 shows both sides' messages for the rejected cases.
        if let (true, Outcome::Rejected(e), Some(a)) = (
            ok && std::env::var_os("HOROLOG_CONFORMANCE_VERBOSE").is_some(),
            &got,
            &case.error,
        ) {
            println!("{}: apscheduler {a:?}\n    horolog {e}", case.name);
        }
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "{}: {}\n    apscheduler: {}\n    expected:    {:?} exhausted={} error={:?}\n    horolog:     {}",
                case.name,
                case.trigger,
                case.apscheduler,
                expected_times,
                case.exhausted,
                case.error,
                describe(&got)
            ));
        }
    }
    for name in deviations.keys() {
        if !used.contains(name) {
            failures.push(format!(
                "{name}: listed in deviations.json but not in vectors.json"
            ));
        }
    }
    // Written past libtest's capture so every run shows the count, not only failing ones.
    let _ = writeln!(
        std::io::stderr(),
        "conformance: {passed} APScheduler vectors match, {deviated} documented deviations checked, {} mismatches",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
