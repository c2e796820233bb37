"""Every overlay and chart-testing scenario, installed with helm 3 and with helm 4 into a namespace
that enforces Pod Security `restricted`, reconciled by the real KubeRay operator.

Simulated nodes: the pods below are admitted, scheduled and marked Running/Ready by kwok; no
container runs in them. What an overlay expects to exist before it is installed (an existing
Secret, the model PVC, a ServiceAccount, Grafana's namespace) is created first from the
release's own rendering (cluster.local.prerequisites), as its user would.
"""
from __future__ import annotations

from typing import Any

import pytest

from harness.readiness import conditions, operator_secret_name

pytestmark = pytest.mark.cluster


def _ray_clusters(local_cluster, installed) -> list[dict[str, Any]]:
    namespace = installed.release.namespace
    return local_cluster.get("rayclusters", "-n", namespace)["items"]


def _pods(local_cluster, installed) -> list[dict[str, Any]]:
    return local_cluster.get("pods", "-n", installed.release.namespace,
                             "-l", "ray.io/is-ray-node=yes")["items"]


def _nodes(local_cluster) -> dict[str, dict[str, Any]]:
    return {node["metadata"]["name"]: node for node in local_cluster.get("nodes")["items"]}


def test_helm_installs_and_the_api_server_accepts_every_object(local_cluster, installed):
    assert installed.install_error is None, installed.install_error
    namespace = installed.release.namespace
    assert installed.manifest, "helm get manifest returned no objects"
    for obj in installed.manifest:
        kind, name = obj["kind"], obj["metadata"]["name"]
        # An object may go to a namespace of its own (dashboards into Grafana's).
        scope = ([] if kind in {"ClusterRole", "ClusterRoleBinding"}
                 else ["-n", obj["metadata"].get("namespace") or namespace])
        live = local_cluster.get(f"{kind}.{obj['apiVersion'].split('/')[0]}"
                                 if "/" in obj["apiVersion"] else kind, name, *scope)
        assert live["metadata"]["name"] == name


def test_the_operator_creates_pods_that_restricted_admits_and_that_get_ready(local_cluster,
                                                                           installed):
    assert installed.install_error is None, installed.install_error
    assert installed.ready_error is None, installed.ready_error
    pods = _pods(local_cluster, installed)
    heads = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "head"]
    expected_heads = len(_ray_clusters(local_cluster, installed))
    assert len(heads) == expected_heads, f"{len(heads)} head pods for {expected_heads} RayClusters"
    nodes = _nodes(local_cluster)
    for pod in pods:
        name = pod["metadata"]["name"]
        assert pod["status"].get("phase") == "Running", f"{name}: {pod['status'].get('phase')}"
        ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        assert ready.get("Ready") == "True", f"{name} not Ready: {ready}"
        node = nodes[pod["spec"]["nodeName"]]
        assert node["metadata"]["labels"].get("ray-platform.io/simulated") == "true"
        assert pod["status"]["podIP"].startswith("127."), f"{name}: pod IP off loopback"


def _requests_gpu(pod: dict[str, Any]) -> bool:
    return any("nvidia.com/gpu" in ((c.get("resources") or {}).get("limits") or {})
               for c in pod["spec"]["containers"])


def test_gpu_workers_land_on_gpu_nodes_and_nothing_else_does(local_cluster, installed):
    assert installed.install_error is None, installed.install_error
    nodes = _nodes(local_cluster)
    for pod in _pods(local_cluster, installed):
        node = nodes[pod["spec"]["nodeName"]]
        on_gpu_node = "nvidia.com/gpu" in node["status"]["capacity"]
        assert on_gpu_node == _requests_gpu(pod), (
            f"{pod['metadata']['name']} (GPU requested: {_requests_gpu(pod)}) is on "
            f"{node['metadata']['name']} (GPU node: {on_gpu_node})")


def test_every_raycluster_is_ready_by_the_conditions_the_operator_wrote(local_cluster, installed):
    assert installed.install_error is None, installed.install_error
    clusters = _ray_clusters(local_cluster, installed)
    if not [o for o in installed.manifest if o["kind"] in {"RayCluster", "RayService", "RayJob"}]:
        # Only RayCronJobs: no cluster exists until the first scheduled run.
        assert not clusters, f"RayClusters before any scheduled run: {clusters}"
        assert [o for o in installed.manifest if o["kind"] == "RayCronJob"]
        return
    assert clusters, "no RayCluster in the namespace"
    for cluster in clusters:
        name = cluster["metadata"]["name"]
        found = conditions(cluster)
        assert found.get("HeadPodReady", {}).get("status") == "True", (name, found)
        assert found.get("RayClusterProvisioned", {}).get("status") == "True", (name, found)
        assert cluster["status"].get("state") == "ready", (name, cluster["status"].get("state"))


def test_head_service_token_secret_and_autoscaler_rbac_exist(local_cluster, installed):
    assert installed.install_error is None, installed.install_error
    namespace = installed.release.namespace
    services = {s["metadata"]["name"] for s in local_cluster.get("services", "-n", namespace)["items"]}
    secrets = {s["metadata"]["name"]: s for s in local_cluster.get("secrets", "-n", namespace)["items"]}
    bindings = local_cluster.get("rolebindings", "-n", namespace)["items"]
    roles = {r["metadata"]["name"] for r in local_cluster.get("roles", "-n", namespace)["items"]}
    for cluster in _ray_clusters(local_cluster, installed):
        name, spec = cluster["metadata"]["name"], cluster["spec"]
        assert f"{name}-head-svc" in services, f"no head Service for {name}: {sorted(services)}"
        auth = spec.get("authOptions") or {}
        if auth.get("mode") == "token":
            secret_name = auth.get("secretName") or operator_secret_name(name)
            assert secret_name in secrets, f"{name}: token Secret {secret_name} missing"
            assert "auth_token" in (secrets[secret_name].get("data") or {})
        if spec.get("enableInTreeAutoscaling"):
            account = spec["headGroupSpec"]["template"]["spec"].get("serviceAccountName") or name
            bound = [b for b in bindings
                     if any(s.get("kind") == "ServiceAccount" and s.get("name") == account
                            for s in b.get("subjects", []))]
            assert bound, f"{name}: no RoleBinding for the autoscaler's ServiceAccount {account}"
            assert all(b["roleRef"]["name"] in roles for b in bound), (
                f"{name}: a RoleBinding of {account} names a Role that does not exist")
