"""The KubeRay operator as a real pod on the real node, from the image scripts/images builds of
the Go-built operator: the Deployment the operator module ships (config/manager/manager.yaml:
command, probes, restricted securityContext, resources), in the namespace and with the
ServiceAccount, ClusterRole and CRDs the local cluster already installs from the same module
(cluster/local/operator.py), and the flags the chart's kuberay-operator subchart would give it
(its archive cannot be fetched here)."""
from __future__ import annotations

import copy
import time
from typing import Any

import yaml

from cluster.local import operator
from cluster.local.kubectl import Kubectl
from cluster.node.layout import NODE_LABELS

NAME = "kuberay-operator"


def deployment(image: str) -> dict[str, Any]:
    shipped = yaml.safe_load((operator.module_dir() / "config" / "manager" / "manager.yaml")
                             .read_text())
    deployment = copy.deepcopy(shipped)
    deployment["metadata"]["namespace"] = operator.NAMESPACE
    pod = deployment["spec"]["template"]["spec"]
    pod["serviceAccountName"] = operator.SERVICE_ACCOUNT
    # Only the real node runs containers.
    pod["nodeSelector"] = dict(NODE_LABELS)
    container = next(c for c in pod["containers"] if c["name"] == NAME)
    container["image"] = image
    container["imagePullPolicy"] = "Never"
    # The subchart's defaults: status conditions on, plus RayCronJob (alpha in v1.6.2, off by
    # default) because the chart renders RayCronJobs for scheduled rayJobs.
    container["args"] = [f"--feature-gates=RayClusterStatusConditions=true,{operator.FEATURE_GATES}"]
    return deployment


def deploy(kubectl: Kubectl, image: str) -> None:
    kubectl.apply([deployment(image)])


def wait_ready(kubectl: Kubectl, timeout: float = 180) -> dict[str, Any]:
    """Until the operator's pod is Ready from its real probes; returns the pod."""
    deadline = time.monotonic() + timeout
    while True:
        pods = kubectl.get("pods", "-n", operator.NAMESPACE, "-l",
                           "app.kubernetes.io/component=kuberay-operator")["items"]
        for pod in pods:
            statuses = pod.get("status", {}).get("containerStatuses") or []
            if statuses and all(s.get("ready") for s in statuses):
                return pod
        if time.monotonic() > deadline:
            raise RuntimeError(f"the KubeRay operator pod was not Ready after {timeout:.0f} s: "
                               f"{[p.get('status', {}).get('containerStatuses') for p in pods]}")
        time.sleep(2)
