"""Versions the chart supports and the harness tests against: one place to change them."""
from __future__ import annotations

# Kubernetes minors validated for every render (oldest supported through newest). Chart.yaml's
# kubeVersion admits all of them; a test keeps the two in step.
SUPPORTED_KUBE_MINORS: tuple[str, ...] = ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36",
                                          "1.37")

# Helm majors the chart renders identically with (helm3 and helm4, built from the Go modules pinned
# in tools/go.mod by bootstrap/go_tools.py).
HELM_MAJORS: tuple[int, ...] = (3, 4)

# Token authentication of Ray clusters needs at least this Ray version (KubeRay validation.go).
MIN_RAY_VERSION_FOR_TOKEN_AUTH: tuple[int, int, int] = (2, 52, 0)
