#!/usr/bin/env bash
# Runs every check and test: lint, types, unit tests, then e2e tests on a real
# kube-apiserver + etcd that the test session starts on 127.0.0.1 (or the cluster named by
# JOBGATE_E2E_KUBECONFIG). Installs what it needs: .venv, the package, the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv

echo "== ruff"; .venv/bin/ruff check .; .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== unit"; .venv/bin/pytest -q tests/unit "$@"
if [ -d tests/e2e ] && ls tests/e2e/test_*.py >/dev/null 2>&1; then
  echo "== e2e"
  .venv/bin/pytest -q tests/e2e "$@"
fi
