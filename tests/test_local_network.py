"""The local cluster's simulated network, offline: name resolution (network.py), the EndpointSlices
it writes for loopback pods (endpoints.py), the ray start flags it keeps (ray_head.py).

The live behaviour (the operator's calls landing on a real Ray head) is tested in
tests/cluster/test_real_ray.py.
"""
from __future__ import annotations

from typing import Any

import pytest

from cluster.local.endpoints import MANAGED_BY, desired_slices
from cluster.local.network import Resolver, Unreachable, endpoint_for
from cluster.local.ray_head import ray_start_argv, ray_start_flags

DOMAIN = "cluster.local"


def _pod(name: str, ip: str | None, ready: bool = True, labels: dict[str, str] | None = None,
         deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                                "labels": labels or {"app": "ray"}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    return {"metadata": metadata,
            "spec": {"nodeName": "node-1", "containers": [
                {"name": "ray", "ports": [{"name": "dashboard", "containerPort": 8265}]}]},
            "status": {"podIP": ip, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}}


def _service(publish_not_ready: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": "head-svc", "namespace": "ns", "uid": "svc-uid"},
            "spec": {"selector": {"app": "ray"}, "publishNotReadyAddresses": publish_not_ready,
                     "ports": [{"name": "dashboard", "port": 8265, "targetPort": "dashboard"},
                               {"name": "serve", "port": 8000, "targetPort": 8000}]}}


def test_slices_name_each_selected_loopback_pod_with_its_readiness():
    pods = [_pod("a", "127.100.0.5"), _pod("b", "127.100.0.6", ready=False),
            _pod("c", "127.100.0.7", labels={"app": "other"}), _pod("d", None),
            _pod("e", "127.100.0.8", deleting=True)]
    (key, body), = desired_slices([_service()], pods, DOMAIN).items()
    assert key == ("ns", "head-svc-loopback")
    assert body["addressType"] == "FQDN"
    assert body["metadata"]["labels"] == {"kubernetes.io/service-name": "head-svc",
                                          "endpointslice.kubernetes.io/managed-by": MANAGED_BY}
    endpoints = {e["targetRef"]["name"]: e for e in body["endpoints"]}
    assert set(endpoints) == {"a", "b", "e"}  # c is not selected, d has no IP yet
    assert endpoints["a"]["addresses"] == ["a.ns.pod.cluster.local"]
    assert endpoints["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert endpoints["b"]["conditions"]["ready"] is False
    assert endpoints["e"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert {p["name"]: p["port"] for p in body["ports"]} == {"dashboard": 8265, "serve": 8000}


def test_publish_not_ready_addresses_makes_unready_pods_ready_endpoints():
    (body,) = desired_slices([_service(publish_not_ready=True)],
                             [_pod("b", "127.100.0.6", ready=False)], DOMAIN).values()
    assert body["endpoints"][0]["conditions"]["ready"] is True


def test_no_slice_for_a_service_without_selector_or_pods():
    headless = {"metadata": {"name": "x", "namespace": "ns", "uid": "u"}, "spec": {}}
    assert desired_slices([headless, _service()], [], DOMAIN) == {}


def _lookup_with(pod_ip: str):
    def lookup(namespace: str, service: str):
        if (namespace, service) != ("ns", "head-svc"):
            return None, [], {}
        slices = list(desired_slices([_service()], [_pod("a", pod_ip)], DOMAIN).values())
        return _service(), slices, {"a": pod_ip}
    return lookup


def test_a_service_name_resolves_to_its_pods_loopback_ip_and_target_port():
    resolver = Resolver(_lookup_with("127.100.0.5"))
    found = resolver.resolve("head-svc.ns.svc.cluster.local", 8265)
    assert (found.address, found.port) == ("127.100.0.5", 8265)


@pytest.mark.parametrize("host, port, reason", [
    ("example.com", 80, "not a Service name"),
    ("head-svc.ns.svc.other.domain", 8265, "not a Service name"),
    ("missing.ns.svc.cluster.local", 8265, "no such Service"),
    ("head-svc.ns.svc.cluster.local", 9999, "has no port 9999"),
])
def test_anything_else_is_unreachable_without_a_connection(host, port, reason):
    with pytest.raises(Unreachable, match=reason):
        Resolver(_lookup_with("127.100.0.5")).resolve(host, port)


def test_an_endpoint_off_loopback_is_refused():
    slices = list(desired_slices([_service()], [_pod("a", "127.100.0.5")], DOMAIN).values())
    with pytest.raises(Unreachable, match="outside 127.0.0.0/8"):
        endpoint_for(_service(), slices, 8265, "ns/head-svc", {"a": "10.0.0.5"})


GENERATED = ("ray start --head  --block  --dashboard-agent-listen-port=52365  "
             "--dashboard-host=0.0.0.0  --memory=3221225472  --metrics-export-port=8080  "
             "--num-cpus=0 ")


def test_ray_start_flags_parse_the_operators_command():
    flags = dict(ray_start_flags(GENERATED))
    assert flags["--head"] is None and flags["--block"] is None
    assert flags["--dashboard-host"] == "0.0.0.0" and flags["--num-cpus"] == "0"
    with pytest.raises(ValueError):
        ray_start_flags("bash -c 'ray start'")


def test_ray_start_on_a_host_listens_on_the_pod_ip_with_the_clusters_cpus():
    pod = _pod("head", "127.100.3.1")
    pod["spec"]["containers"][0]["env"] = [{"name": "KUBERAY_GEN_RAY_START_CMD",
                                            "value": GENERATED}]
    argv = ray_start_argv(pod, cpus=3, memory=9 * 2**30, temp_dir="/tmp/x")
    assert argv[1:3] == ["start", "--head"]
    assert "--block" not in argv and "--dashboard-host=0.0.0.0" not in argv
    assert "--dashboard-host=127.100.3.1" in argv and "--node-ip-address=127.100.3.1" in argv
    assert "--num-cpus=3" in argv and "--num-cpus=0" not in argv
    assert "--dashboard-agent-listen-port=52365" in argv  # kept from the pod
    assert "--dashboard-port=8265" in argv
