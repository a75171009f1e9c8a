#!/usr/bin/env bash
# jobgate benchmarks: B1..B9 against a local control plane, the operator as its own process.
#   bench/run.sh                    # everything, full sizes (~10 min on 2 cores)
#   bench/run.sh B1 B2 --scale 0.2  # some scenarios, job counts scaled down
#   bench/run.sh B2 --profile       # py-spy on the operator during B2
# Prints a table and writes bench/results/bench-<time>.json (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv
export BENCH_COMMAND="bench/run.sh $*"
for arg in "$@"; do
  if [ "$arg" = "--profile" ] && [ ! -x .venv/bin/py-spy ]; then
    .venv/bin/python -m pip install -q py-spy >&2
  fi
done
exec .venv/bin/python -m bench.run "$@"
