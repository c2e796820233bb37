"""The Stable Diffusion RayService on real pods: Ready as the operator reports it, its Serve
Service's endpoints are the real pods, and /imagine answers a PNG through that Service; then
`helm test` with its Pods executing on the node."""
from __future__ import annotations

import pytest

from cluster.local.release import helm_in, objects_of_kind
from cluster.local.up import imagine, serve_route_prefix
from cluster.node import node, platform
from tests_node_helpers import service_endpoints

pytestmark = pytest.mark.node


def serve_service(real_release) -> tuple[dict, str]:
    service = objects_of_kind(real_release.manifest, "RayService")[0]
    name = service["metadata"]["name"]
    return service, f"{name}-serve-svc"


def test_the_rayservice_is_ready_with_serve_endpoints_on_real_pods(real_release, node_name) -> None:
    service, svc_name = serve_service(real_release)
    status = real_release.get("rayservice", service["metadata"]["name"], "-n",
                              real_release.namespace)
    ready = [c for c in status["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True", status["status"]["conditions"]
    endpoints = service_endpoints(real_release, svc_name)
    assert endpoints, f"no endpoints behind {svc_name}"
    for endpoint in endpoints:
        assert endpoint["nodeName"] == node_name
        pod = real_release.get("pod", endpoint["targetRef"]["name"], "-n", real_release.namespace)
        assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")


def test_imagine_answers_a_png_through_the_serve_service(real_release) -> None:
    service, svc_name = serve_service(real_release)
    address = platform.service_ip(real_release.kubectl, svc_name, real_release.namespace)
    url = node.expose(real_release.cluster.node, "serve-test", address, 8000)
    png = imagine(url, serve_route_prefix(service), size=64, steps=2, timeout=300)
    assert len(png) > 100


def test_helm_test_passes_with_its_pods_executing(real_release, node_name) -> None:
    result = helm_in(real_release.cluster.layout.kubeconfig, "test", real_release.release.name,
                     "-n", real_release.namespace, "--timeout", "15m", major=4, timeout=1000)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Phase:          Succeeded" in result.stdout or "Succeeded" in result.stdout, result.stdout
