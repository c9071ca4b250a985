//! Checks of the Helm chart that need no helm binary (`.ci/helm.sh` runs the real helm):
//! its CRDs are the generated ones, every value is documented and in the schema, and the
//! operator's RBAC stays least-privilege.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The top of the repository (this crate lives in crates/horolog).
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> PathBuf {
    repo().join("charts/horolog")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// File names of the `*.yaml` files directly in `dir`.
fn yaml_files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect()
}

#[test]
fn chart_crds_are_byte_identical_to_the_generated_crds() {
    let generated = repo().join("crds");
    if !generated.is_dir() || yaml_files(&generated).is_empty() {
        println!("skipped: crds/ does not exist yet (generate it with `cargo run -- crds`)");
        return;
    }
    let in_chart = chart().join("crds");
    let fix = "fix: rm charts/horolog/crds/* && cp crds/*.yaml charts/horolog/crds/";
    assert_eq!(
        yaml_files(&in_chart),
        yaml_files(&generated),
        "different CRD files; {fix}"
    );
    for name in yaml_files(&generated) {
        assert!(
            read(&generated.join(&name)) == read(&in_chart.join(&name)),
            "charts/horolog/crds/{name} differs from crds/{name}; {fix}"
        );
    }
}

/// `(line number, indentation, key)` of every mapping key written in block style.
fn block_keys(yaml: &str) -> Vec<(usize, usize, String)> {
    yaml.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') || content.starts_with('-') {
                return None;
            }
            let (key, rest) = content.split_once(':')?;
            let is_key = (rest.is_empty() || rest.starts_with(' '))
                && !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./\"'".contains(c));
            is_key.then(|| {
                (
                    index + 1,
                    line.len() - content.len(),
                    key.trim_matches(['"', '\'']).to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn every_key_in_values_yaml_has_a_comment_line_above_it() {
    let values = read(&chart().join("values.yaml"));
    let lines: Vec<&str> = values.lines().collect();
    let keys = block_keys(&values);
    assert!(
        keys.len() > 30,
        "values.yaml parsed into only {} keys",
        keys.len()
    );
    let undocumented: Vec<String> = keys
        .iter()
        .filter(|(number, _, _)| {
            let above = lines[..number - 1]
                .iter()
                .rev()
                .find(|line| !line.trim().is_empty());
            !above.is_some_and(|line| line.trim_start().starts_with('#'))
        })
        .map(|(number, _, key)| format!("line {number}: {key}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys without a comment line above them: {undocumented:#?}"
    );
}

/// Dotted paths of every key in `value`, descending into mappings only.
fn value_paths(value: &serde_yaml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let serde_yaml::Value::Mapping(mapping) = value {
        for (key, child) in mapping {
            let key = key
                .as_str()
                .unwrap_or_else(|| panic!("non-string key under {prefix:?}"));
            let path = if prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{prefix}.{key}")
            };
            out.insert(path.clone());
            value_paths(child, &path, out);
        }
    }
}

/// Dotted paths of every property the schema declares.
fn schema_paths(schema: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
        for (key, child) in properties {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            out.insert(path.clone());
            schema_paths(child, &path, out);
        }
    }
}

#[test]
fn values_schema_declares_exactly_the_keys_values_yaml_has() {
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read(&chart().join("values.yaml"))).expect("values.yaml is YAML");
    let schema: serde_json::Value =
        serde_json::from_str(&read(&chart().join("values.schema.json"))).expect("values.schema.json is JSON");
    let mut in_values = BTreeSet::new();
    value_paths(&values, "", &mut in_values);
    let mut in_schema = BTreeSet::new();
    schema_paths(&schema, "", &mut in_schema);

    // Free-form maps (labels, resources) have keys in values.yaml the schema cannot list, and
    // the schema may know optional keys values.yaml leaves out (global, resources.claims).
    let free_form = ["resources.requests.", "resources.limits."];
    let missing: Vec<_> = in_values
        .difference(&in_schema)
        .filter(|path| !free_form.iter().any(|p| path.starts_with(p)))
        .collect();
    assert!(
        missing.is_empty(),
        "keys of values.yaml the schema does not declare: {missing:?}"
    );
    let optional = ["global", "resources.claims"];
    let unused: Vec<_> = in_schema
        .difference(&in_values)
        .filter(|path| !optional.contains(&path.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "schema properties with no default in values.yaml: {unused:?}"
    );
}

/// The body of a `{{- define "NAME" -}}` block of `_helpers.tpl`.
fn define_block<'a>(helpers: &'a str, name: &str) -> &'a str {
    let start = format!("{{{{- define \"{name}\" -}}}}");
    let body = helpers
        .split_once(&start)
        .unwrap_or_else(|| panic!("no define {name}"))
        .1;
    body.split_once("{{- end }}")
        .unwrap_or_else(|| panic!("define {name} has no end"))
        .0
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    api_groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
}

/// `"group/resource" -> verbs` of a rule list.
fn permissions(rules: &[Rule]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                out.entry(format!("{group}/{resource}"))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

#[test]
fn operator_role_grants_exactly_the_documented_permissions_without_wildcards_or_secrets() {
    let helpers = read(&chart().join("templates/_helpers.tpl"));
    let block = define_block(&helpers, "horolog.rules");
    assert!(
        !block.contains("{{"),
        "the rules are plain YAML, so this test reads what Kubernetes gets"
    );
    let rules: Vec<Rule> = serde_yaml::from_str(block).expect("the rules are a YAML list");
    for rule in &rules {
        let every = rule
            .api_groups
            .iter()
            .chain(&rule.resources)
            .chain(&rule.verbs)
            .chain(&rule.resource_names);
        for item in every {
            assert!(!item.contains('*'), "wildcard in {rule:?}");
            assert!(!item.contains("secret"), "secrets in {rule:?}");
        }
    }

    let verbs = |list: &[&str]| list.iter().map(|v| v.to_string()).collect::<BTreeSet<_>>();
    let expected = BTreeMap::from([
        (
            "horolog.dev/schedules".to_owned(),
            verbs(&["get", "list", "watch"]),
        ),
        (
            "horolog.dev/jobruns".to_owned(),
            verbs(&["get", "list", "watch", "create", "delete"]),
        ),
        (
            "horolog.dev/schedules/status".to_owned(),
            verbs(&["patch", "update"]),
        ),
        (
            "horolog.dev/jobruns/status".to_owned(),
            verbs(&["patch", "update"]),
        ),
        (
            "/pods".to_owned(),
            verbs(&["get", "list", "watch", "create", "delete"]),
        ),
        ("events.k8s.io/events".to_owned(), verbs(&["create"])),
        ("/events".to_owned(), verbs(&["create"])),
    ]);
    assert_eq!(
        permissions(&rules),
        expected,
        "a new permission needs a comment in _helpers.tpl and here"
    );
}

#[test]
fn rbac_templates_have_no_wildcards_and_leases_stay_in_the_release_namespace() {
    let rbac = read(&chart().join("templates/rbac.yaml"));
    let helpers = read(&chart().join("templates/_helpers.tpl"));
    for (name, text) in [("rbac.yaml", &rbac), ("_helpers.tpl", &helpers)] {
        for line in text.lines().filter(|line| !line.trim_start().starts_with('#')) {
            assert!(
                !line.contains("\"*\"") && !line.contains("'*'") && !line.contains("[*]"),
                "{name}: {line}"
            );
            assert!(!line.contains("secrets"), "{name}: {line}");
        }
    }
    // Leases only through the leader-election Role, which is namespaced to the release.
    assert!(!define_block(&helpers, "horolog.rules").contains("leases"));
    let lease_role = rbac
        .split("leader-election")
        .nth(1)
        .expect("a leader-election Role");
    assert!(lease_role.contains("namespace: {{ .Release.Namespace }}"));
    assert!(
        lease_role.contains("resourceNames:"),
        "get/update limited to the operator's own Lease"
    );
}

/// The flags of `horolog run` the Deployment passes: the CLI must accept exactly these.
const RUN_FLAGS: [&str; 13] = [
    "--log-level=",
    "--log-format=",
    "--namespaces=",
    "--concurrency=",
    "--kube-qps=",
    "--kube-burst=",
    "--leader-election=",
    "--leader-election-namespace=$(POD_NAMESPACE)",
    "--lease-name=",
    "--lease-duration=",
    "--renew-deadline=",
    "--retry-period=",
    "--metrics-addr=0.0.0.0:",
];

#[test]
fn deployment_passes_every_run_flag_and_the_downward_api_env() {
    let deployment = read(&chart().join("templates/deployment.yaml"));
    for flag in RUN_FLAGS {
        assert!(
            deployment.contains(&format!("- {flag}")),
            "deployment.yaml does not pass {flag}"
        );
    }
    for env in ["POD_NAME", "POD_NAMESPACE"] {
        assert!(
            deployment.contains(&format!("name: {env}")),
            "deployment.yaml lacks env {env}"
        );
    }
    for probe in ["path: /healthz", "path: /readyz"] {
        assert!(deployment.contains(probe), "deployment.yaml lacks probe {probe}");
    }
}
