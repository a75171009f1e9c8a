#!/usr/bin/env bash
# Runs the jobgate operator in the foreground for development.
#
# Uses the cluster in KUBECONFIG when it answers; otherwise starts a local control plane
# (real etcd + kube-apiserver on 127.0.0.1, see scripts/get-control-plane.sh) in .work/dev.
# Applies the CRD, the namespace and the ConfigMap jobgate-config, then runs
# `python -m jobgate`. Ctrl-C stops the operator and everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv

workdir="$PWD/.work/dev"
started_plane=""
cleanup() {
  if [ -n "$started_plane" ]; then
    echo "stopping the local control plane" >&2
    .venv/bin/python -m jobgate.testing.controlplane down --dir "$workdir" || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${KUBECONFIG:-}" ] && kubectl version --request-timeout=5s >/dev/null 2>&1; then
  echo "using the cluster in KUBECONFIG=$KUBECONFIG" >&2
else
  echo "no reachable cluster in KUBECONFIG: starting a local control plane in $workdir" >&2
  mkdir -p "$workdir"
  .venv/bin/python -m jobgate.testing.controlplane down --dir "$workdir" >/dev/null 2>&1 || true
  .venv/bin/python -m jobgate.testing.controlplane up --dir "$workdir" --detach >&2
  started_plane=1
  export KUBECONFIG="$workdir/kubeconfig"
fi

kubectl apply -f crds/algorithmjobs.yaml
kubectl wait --for=condition=Established --timeout=60s crd/algorithmjobs.jobgate.dev
kubectl apply -f manifests/namespace.yaml
kubectl apply -f manifests/configmap.yaml

port="${JOBGATE_HTTP_PORT:-8000}"
cat >&2 <<MSG

jobgate is starting. In another terminal:
  export KUBECONFIG=$KUBECONFIG
  kubectl apply -f examples/prime-97.yaml
  kubectl wait --for=condition=Complete ajob/prime-97 && kubectl get ajob
  curl -s http://127.0.0.1:$port/jobs/concurrency/status
  kubectl -n jobgate-system patch configmap jobgate-config -p '{"data":{"maxConcurrentJobs":"20"}}'

MSG
.venv/bin/python -m jobgate
