#!/usr/bin/env bash
# End to end on a real cluster: create a kind cluster, build and load the operator image,
# deploy manifests/ (CRDs included), check that the deployed operator runs a job, then run
# the e2e suite against that cluster. Needs docker, kind and kubectl on PATH.
#
# Unverified on this project's own CI, which has no Docker engine; shellcheck checks it
# (tests/e2e/test_manifests.py).
#
#   scripts/kind-e2e.sh [pytest args]        # e.g. scripts/kind-e2e.sh -k foundation
#
# KIND_CLUSTER_NAME (default jobgate-e2e), KIND_NODE_IMAGE (default: kind's own), and
# KEEP_CLUSTER=1 to leave the cluster running afterwards (delete it with
# `kind delete cluster --name jobgate-e2e`).
set -euo pipefail
cd "$(dirname "$0")/.."

cluster="${KIND_CLUSTER_NAME:-jobgate-e2e}"
image="jobgate:latest"
workdir="$(mktemp -d)"
kubeconfig="$workdir/kubeconfig"

for tool in docker kind kubectl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "kind-e2e: $tool is not on PATH; install it first" >&2
    exit 2
  fi
done

# On any exit: show the operator's state when something failed, then delete the cluster
# (unless KEEP_CLUSTER=1) and the temporary kubeconfig.
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ] && [ -s "$kubeconfig" ]; then
    echo "kind-e2e: failed ($status); operator state follows" >&2
    kubectl --kubeconfig "$kubeconfig" -n jobgate-system get deploy,pods,events >&2 || true
    kubectl --kubeconfig "$kubeconfig" -n jobgate-system logs deploy/jobgate \
      --all-containers --prefix --tail=100 >&2 || true
  fi
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    echo "kind-e2e: cluster $cluster kept; kubeconfig: kind get kubeconfig --name $cluster" >&2
  else
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  rm -rf "$workdir"
  return "$status"
}
trap cleanup EXIT

# 1. Create the cluster from kind/cluster.yaml. Its kubeconfig goes to a file of our own, so
#    the user's ~/.kube/config and current context are left alone.
create_args=(--name "$cluster" --config kind/cluster.yaml --kubeconfig "$kubeconfig" --wait 180s)
if [ -n "${KIND_NODE_IMAGE:-}" ]; then
  create_args+=(--image "$KIND_NODE_IMAGE")
fi
kind create cluster "${create_args[@]}"
export KUBECONFIG="$kubeconfig"

# 2. Build the image from the Dockerfile and load it onto every node: the Deployment uses
#    jobgate:latest with imagePullPolicy IfNotPresent, so nothing is pulled from a registry.
docker build --tag "$image" .
kind load docker-image "$image" --name "$cluster"

# 3. Deploy everything (the AlgorithmJob CRD included), then wait for the rollout: a
#    standby replica is ready too (it is healthy and can take over), so this returns.
kubectl apply -k manifests/
kubectl wait --for=condition=Established --timeout=60s crd/algorithmjobs.jobgate.dev
kubectl -n jobgate-system rollout status deployment/jobgate --timeout=180s

# 4. Smoke test of the deployed operator (its image, RBAC and settings): one job, end to end.
kubectl create namespace jobgate-smoke
kubectl -n jobgate-smoke apply -f - <<'YAML'
apiVersion: jobgate.dev/v1alpha1
kind: AlgorithmJob
metadata: {name: prime-97}
spec: {algorithm: PrimeChecker, params: {number: 97}}
YAML
kubectl -n jobgate-smoke wait --for=condition=Complete --timeout=120s ajob/prime-97
is_prime="$(kubectl -n jobgate-smoke get ajob prime-97 -o jsonpath='{.status.result.isPrime}')"
if [ "$is_prime" != true ]; then
  echo "kind-e2e: the deployed operator answered isPrime=$is_prime for 97" >&2
  exit 1
fi

# 5. The e2e suite starts an operator of its own per test. The deployed one watches every
#    namespace and would take the tests' jobs too, so scale it to zero first; then run the
#    suite against this cluster (the harness starts no local control plane when
#    JOBGATE_E2E_KUBECONFIG is set).
kubectl -n jobgate-system scale deployment/jobgate --replicas=0
for _ in $(seq 60); do
  pods="$(kubectl -n jobgate-system get pods --selector=app.kubernetes.io/name=jobgate -o name)"
  [ -z "$pods" ] && break
  sleep 2
done
if [ -n "$pods" ]; then
  echo "kind-e2e: the deployed operator's pods did not stop: $pods" >&2
  exit 1
fi
JOBGATE_E2E_KUBECONFIG="$kubeconfig" ./scripts/test.sh "$@"
