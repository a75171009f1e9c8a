"""e2e fixtures (see harness.py): control plane, namespace, operator processes."""

from harness import kube, kubeconfig, start_operator

__all__ = ["kube", "kubeconfig", "start_operator"]
