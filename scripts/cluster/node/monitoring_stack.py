"""The monitoring stack on the local cluster's real node (`make up MONITORING=1`,
tests/node/test_monitoring_live.py): the real prometheus-operator v0.93.0 (its CRDs, RBAC and
Deployment as its Go module ships them in example/, read from Go's module cache, never copied
into this project) reconciling a `Prometheus` that selects the chart's PodMonitors and
PrometheusRule the way kube-prometheus-stack does (label `release: <monitoring.prometheusStack.
release>`), in the namespace the chart's NetworkPolicies let scrape (`monitoring`, pods labelled
`app.kubernetes.io/name: prometheus`: the operator labels its Prometheus pods so).

Everything runs as containers on the real node from images built here (images/monitoring.py);
Prometheus is reached from the host through a forward (node.expose) to a ClusterIP Service.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bootstrap import go_tools
from cluster.local.kubectl import Kubectl
from cluster.local.release import restricted_namespace
from cluster.node import node
from cluster.node.layout import NODE_LABELS, NodeLayout
from images.build import Built

REPO = Path(__file__).resolve().parents[3]
# The chart's monitoring on, for this stack (make up MONITORING=1, the live test).
MONITORING_VALUES = REPO / "values" / "local" / "monitoring.yaml"
OPERATOR_TOOLS_DIR = REPO / "tools" / "monitoring" / "prometheus-operator"
OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
KSM_TOOLS_DIR = REPO / "tools" / "monitoring" / "kube-state-metrics"
KSM_MODULE = "k8s.io/kube-state-metrics/v2"
NAMESPACE = "monitoring"
OPERATOR = "prometheus-operator"
PROMETHEUS = "ray-platform"
# What the chart's PodMonitors and PrometheusRule carry by default
# (monitoring.prometheusStack.release), as kube-prometheus-stack's Prometheus selects them.
SELECTOR = {"release": "kube-prometheus-stack"}
PORT = 9090
# Fast enough that a test sees a target change within seconds; the chart's PodMonitors set
# their own interval (monitoring.podMonitors.interval).
SCRAPE_INTERVAL = "15s"
EVALUATION_INTERVAL = "15s"


def module_dir(module: str = OPERATOR_MODULE, tools_dir: Path = OPERATOR_TOOLS_DIR) -> Path:
    """A module's source in Go's module cache (`make tools-monitoring` fetched it)."""
    return go_tools.module_source(module, tools_dir, "make tools-monitoring")


def shipped(*parts: str) -> dict[str, Any]:
    return yaml.safe_load((module_dir() / "example" / Path(*parts)).read_text())


def crd_files() -> list[Path]:
    """Every CRD of the operator's version: it watches all of its kinds, not only the three the
    chart renders (the harness validates those against ../shared/crds, the same v0.93.0).
    Handed to kubectl as files: PyYAML's resolver refuses their `- =` enum values."""
    return sorted((module_dir() / "example" / "prometheus-operator-crd").glob("*.yaml"))


def crd_name(path: Path) -> str:
    """monitoring.coreos.com_podmonitors.yaml -> podmonitors.monitoring.coreos.com"""
    group, _, plural = path.stem.partition("_")
    return f"{plural}.{group}"


def in_namespace(obj: dict[str, Any]) -> dict[str, Any]:
    """obj moved from the examples' namespace to ours (cluster-scoped kinds: their subjects)."""
    obj = copy.deepcopy(obj)
    if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
        obj["metadata"]["namespace"] = NAMESPACE
    for subject in obj.get("subjects", []):
        subject["namespace"] = NAMESPACE
    return obj


def operator_objects(images: dict[str, Built]) -> list[dict[str, Any]]:
    rbac = ("rbac", "prometheus-operator")
    deployment = in_namespace(shipped(*rbac, "prometheus-operator-deployment.yaml"))
    pod = deployment["spec"]["template"]["spec"]
    pod["nodeSelector"] = dict(NODE_LABELS)
    container = pod["containers"][0]
    container["image"] = images["prometheus-operator"].reference
    container["imagePullPolicy"] = "Never"
    # Its own flags but the kubelet's endpoints (this cluster has no kubelet Service to keep)
    # and the config reloader: ours, built from the same module.
    container["args"] = [
        arg for arg in container["args"]
        if not arg.startswith(("--kubelet-", "--prometheus-config-reloader="))
    ] + [f"--prometheus-config-reloader={images['prometheus-config-reloader'].reference}"]
    # Restricted Pod Security: the shipped pod sets seccomp and drops ALL; the container's
    # seccomp comes from the pod.
    service = in_namespace(shipped(*rbac, "prometheus-operator-service.yaml"))
    monitor = in_namespace(shipped(*rbac, "prometheus-operator-service-monitor.yaml"))
    monitor["metadata"].setdefault("labels", {}).update(SELECTOR)
    return [
        in_namespace(shipped(*rbac, "prometheus-operator-service-account.yaml")),
        shipped(*rbac, "prometheus-operator-cluster-role.yaml"),
        in_namespace(shipped(*rbac, "prometheus-operator-cluster-role-binding.yaml")),
        deployment, service, monitor,
    ]


def prometheus_objects(images: dict[str, Built]) -> list[dict[str, Any]]:
    rbac = ("rbac", "prometheus")
    selector = {"matchLabels": dict(SELECTOR)}
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS, "namespace": NAMESPACE},
        "spec": {
            "image": images["prometheus"].reference,
            "imagePullPolicy": "Never",
            "version": "v3.16.0",
            "replicas": 1,
            "serviceAccountName": "prometheus",
            "scrapeInterval": SCRAPE_INTERVAL,
            "evaluationInterval": EVALUATION_INTERVAL,
            # Every namespace's monitors and rules that carry the release label.
            "podMonitorSelector": selector, "podMonitorNamespaceSelector": {},
            "serviceMonitorSelector": selector, "serviceMonitorNamespaceSelector": {},
            "ruleSelector": selector, "ruleNamespaceSelector": {},
            "retention": "6h",
            "nodeSelector": dict(NODE_LABELS),
            # Restricted Pod Security on the namespace; nobody owns the TSDB emptyDir.
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                "fsGroup": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}},
        },
    }
    # A ClusterIP for the host's forward (the operator's own prometheus-operated is headless).
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "prometheus", "namespace": NAMESPACE},
        "spec": {"selector": {"prometheus": PROMETHEUS},
                 "ports": [{"name": "web", "port": PORT, "targetPort": "web"}]},
    }
    return [in_namespace(shipped(*rbac, "prometheus-service-account.yaml")),
            shipped(*rbac, "prometheus-cluster-role.yaml"),
            in_namespace(shipped(*rbac, "prometheus-cluster-role-binding.yaml")),
            prometheus, service]


def kube_state_metrics_objects(images: dict[str, Built]) -> list[dict[str, Any]]:
    """kube-state-metrics v2.20.0 as its module ships it (examples/standard), in the monitoring
    namespace: the chart's worker pod alerts (RayWorkerPodsPending/NotReady) read its
    kube_pod_* series. Scraped with honorLabels, as kube-prometheus-stack does, so that
    `namespace` and `pod` are those of the pod described, not of kube-state-metrics."""
    folder = module_dir(KSM_MODULE, KSM_TOOLS_DIR) / "examples" / "standard"
    objects = [in_namespace(yaml.safe_load((folder / f"{name}.yaml").read_text()))
               for name in ("service-account", "cluster-role-binding", "deployment", "service")]
    objects.insert(1, yaml.safe_load((folder / "cluster-role.yaml").read_text()))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    pod["nodeSelector"] = dict(NODE_LABELS)
    container = pod["containers"][0]
    container["image"] = images["kube-state-metrics"].reference
    container["imagePullPolicy"] = "Never"
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "kube-state-metrics", "namespace": NAMESPACE, "labels": dict(SELECTOR)},
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "kube-state-metrics"}},
                 "endpoints": [{"port": "http-metrics", "honorLabels": True}]},
    }
    return [*objects, monitor]


def kuberay_operator_monitor() -> dict[str, Any]:
    """The KubeRay operator's metrics: the chart leaves them to its kuberay-operator subchart's
    ServiceMonitor (kuberay-operator.metrics.serviceMonitor), which cannot render here (the
    subchart's archive cannot be fetched and the operator runs as its own pod): the same
    endpoint, port `http` /metrics of the operator's pod."""
    from cluster.local import operator

    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": {"name": "kuberay-operator", "namespace": operator.NAMESPACE,
                     "labels": dict(SELECTOR)},
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/component": "kuberay-operator"}},
                 "podMetricsEndpoints": [{"port": "http", "path": "/metrics"}]},
    }


@dataclass(frozen=True)
class Stack:
    url: str          # Prometheus on the host's loopback, through the node's forward
    pod: str          # the Prometheus pod's name


def install_crds(kubectl: Kubectl) -> None:
    """Before the release is installed or upgraded: the chart renders its PodMonitors and
    PrometheusRule only where the API serves monitoring.coreos.com/v1."""
    files = crd_files()
    kubectl.apply_files(files)
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s",
                *(f"crd/{crd_name(path)}" for path in files))


def up(kubectl: Kubectl, layout: NodeLayout, images: dict[str, Built],
       timeout: float = 300) -> Stack:
    """CRDs, the operator, kube-state-metrics, a Prometheus; returns once Prometheus answers on
    the host. Idempotent."""
    install_crds(kubectl)
    kubectl.apply([restricted_namespace(NAMESPACE)])
    kubectl.apply(operator_objects(images))
    kubectl.apply([kuberay_operator_monitor()])
    kubectl.apply(kube_state_metrics_objects(images))
    wait_ready(kubectl, "app.kubernetes.io/name=prometheus-operator", timeout)
    # The operator must be watching before the Prometheus exists, or it only sees it on resync.
    kubectl.apply(prometheus_objects(images))
    pod = wait_ready(kubectl, f"prometheus={PROMETHEUS}", timeout)
    address = kubectl.get("service", "prometheus", "-n", NAMESPACE)["spec"]["clusterIP"]
    url = node.expose(layout, "prometheus", address, PORT)
    return Stack(url, pod["metadata"]["name"])


def down(kubectl: Kubectl) -> None:
    """Remove the Prometheus and the operator (the CRDs and the release's monitors stay: the
    release keeps rendering them while the API exists)."""
    kubectl.run("delete", "prometheus", PROMETHEUS, "-n", NAMESPACE, "--ignore-not-found",
                "--wait=true", "--timeout=120s", check=False)
    kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true",
                "--timeout=180s", check=False)


def wait_ready(kubectl: Kubectl, selector: str, timeout: float) -> dict[str, Any]:
    """Until a pod of selector in the monitoring namespace has every container ready."""
    deadline = time.monotonic() + timeout
    while True:
        pods = kubectl.get("pods", "-n", NAMESPACE, "-l", selector)["items"]
        for pod in pods:
            statuses = pod.get("status", {}).get("containerStatuses") or []
            if statuses and all(s.get("ready") for s in statuses):
                return pod
        if time.monotonic() > deadline:
            events = kubectl.run("get", "events", "-n", NAMESPACE, check=False).stdout
            raise RuntimeError(
                f"no pod {selector} in {NAMESPACE} Ready after {timeout:.0f} s: "
                f"{[(p['metadata']['name'], p.get('status', {}).get('containerStatuses')) for p in pods]}"
                f"\n{events[-3000:]}")
        time.sleep(2)
