"""A Kubernetes cluster with the platform on it: `make up` / `make down` (platform_up.py: a kind
cluster, or the cluster KUBECONFIG names; install, readiness through harness.readiness, helm
test). Standard library only at import time, so `preflight` runs before the virtualenv exists."""
