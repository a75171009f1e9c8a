"""Test support shipped with jobgate: a local control plane for e2e tests and development."""
