#!/usr/bin/env bash
# Runs every check and test: lint, types, unit tests, then the e2e tests on a real
# kube-apiserver + etcd that the test session starts on 127.0.0.1 (or on the cluster named
# by JOBGATE_E2E_KUBECONFIG), then the same e2e path a user with their own cluster takes.
# Installs what it needs: .venv with the project, and the control-plane binaries.
# Extra arguments go to every pytest run (e.g. -x, -k name).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv
ensure_promtool

echo "== ruff"; .venv/bin/ruff check .; .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== unit"; .venv/bin/pytest -q tests/unit "$@"

if [ -n "${JOBGATE_E2E_KUBECONFIG:-}" ]; then
  echo "== e2e on the cluster in JOBGATE_E2E_KUBECONFIG=$JOBGATE_E2E_KUBECONFIG"
  .venv/bin/pytest -q tests/e2e "$@"
  exit 0
fi

echo "== control plane binaries"
./scripts/get-control-plane.sh   # builds once (minutes), then cached
echo "== e2e on a local control plane"
.venv/bin/pytest -q tests/e2e "$@"

# The path of a user who already has a cluster: start a control plane by hand, hand its
# kubeconfig in as if it were someone else's cluster, and check the suite cleans up after
# itself (its namespaces deleted, and the CRD it installed removed).
echo "== e2e against an existing cluster (JOBGATE_E2E_KUBECONFIG)"
plane="$(mktemp -d)"
trap '.venv/bin/python -m jobgate.testing.controlplane down --dir "$plane" >/dev/null; rm -rf "$plane"' EXIT
.venv/bin/python -m jobgate.testing.controlplane up --dir "$plane" --detach
JOBGATE_E2E_KUBECONFIG="$plane/kubeconfig" .venv/bin/pytest -q tests/e2e/test_foundation.py "$@"
for _ in $(seq 60); do  # the CRD's deletion finishes in the apiserver shortly after
  leftover="$(kubectl --kubeconfig "$plane/kubeconfig" get crd -o name | grep -c jobgate.dev || true)"
  [ "$leftover" = 0 ] && break
  sleep 0.5
done
active="$(kubectl --kubeconfig "$plane/kubeconfig" get ns --no-headers | grep '^e2e-' | grep -vc Terminating || true)"
if [ "$leftover" != 0 ] || [ "$active" != 0 ]; then
  echo "the e2e suite left things behind on an existing cluster: crds=$leftover namespaces=$active" >&2
  exit 1
fi
echo "existing-cluster run cleaned up after itself"
