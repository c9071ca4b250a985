#!/usr/bin/env bash
# Runs the end-to-end suite (tests/e2e, written for a real cluster) against the sandbox:
# the in-memory API server over loopback HTTP with a kubelet stand-in that runs the pods'
# commands. Without a cluster every e2e test would print "skipping" and pass; here each one
# runs for real, except the checks that only a real API server can make (CEL messages,
# server-rendered Tables, strict schema validation), which are skipped by name below.
#
#   bash .ci/e2e-sandbox.sh        # after `cargo test --all-targets` has built horolog-dev
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
kubeconfig=$work/e2e.kubeconfig
cargo build --locked -q -p horolog-dev --bin horolog-dev
target/debug/horolog-dev sandbox --kubelet exec --listen 127.0.0.1:0 --kubeconfig "$kubeconfig" \
  >"$work/sandbox.log" 2>&1 &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true; wait $sandbox 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
  [ -s "$kubeconfig" ] && break
  kill -0 $sandbox 2>/dev/null || { cat "$work/sandbox.log"; echo "the sandbox did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$kubeconfig" ] || { echo "the sandbox wrote no kubeconfig" >&2; exit 1; }

# Checks that need a real kube-apiserver (it validates schemas and CEL, renders Tables).
real_server_only=(cel_rules printer_columns tables_render an_interval_schedule_fires the_api_server_refuses_what_cannot_run)
skips=()
for name in "${real_server_only[@]}"; do skips+=(--skip "$name"); done

# HOROLOG_E2E_REQUIRE turns "no cluster, skipping" into a failure, so every test counted as
# passed here really ran against the sandbox.
HOROLOG_E2E_REQUIRE=1 HOROLOG_E2E_KUBECONFIG=$kubeconfig \
  cargo test --locked -p horolog --test e2e -- --test-threads=4 "${skips[@]}"
