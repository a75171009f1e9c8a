"""jobgate: a Kubernetes operator that runs algorithm jobs under a concurrency limit."""
