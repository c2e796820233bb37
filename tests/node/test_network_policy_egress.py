"""Egress: with `networkPolicy.egress.allowAll: false` a Ray pod reaches only what the policies
name, and no other address. The address tried is the node's own IP (inside the node's network
namespace, never outside the sandbox), on a port a listener of the test holds: open while egress
is open to everything, refused once it is locked; both measured by a real connection and compared
with the harness's evaluator. Locked down, the cluster still resolves names and its workers stay
joined: the DNS and API addresses are the ones this node really has (CoreDNS and the API
forward listen on the node IP, so they are given as CIDRs, as NodeLocal DNSCache would be)."""
from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
from typing import Iterator

import pytest

from cluster.local.release import upgrade
from cluster.node import netns, platform, reachability
from cluster.node.layout import NODE_IP
from harness import netpol
from tests_node_helpers import ray_nodes_alive

pytestmark = pytest.mark.node

OUTSIDE_PORT = 18080


@pytest.fixture
def listener(real_release) -> Iterator[int]:
    """A TCP listener on the node IP, in the node's namespace: an address no policy names."""
    process = subprocess.Popen([*netns.enter(real_release.cluster.node), sys.executable, "-m",
                                "http.server", "--bind", NODE_IP, str(OUTSIDE_PORT)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = [*netns.enter(real_release.cluster.node), sys.executable, "-c",
                 f"import socket; socket.create_connection(('{NODE_IP}', {OUTSIDE_PORT}), 2)"]
        deadline = time.monotonic() + 20
        while subprocess.run(probe, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "the listener did not start"
            time.sleep(0.5)
        yield OUTSIDE_PORT
    finally:
        process.kill()
        process.wait()


def api_endpoint(real_release) -> tuple[str, int]:
    slices = real_release.get("endpointslices", "-n", "default", "-l",
                              "kubernetes.io/service-name=kubernetes")["items"]
    return slices[0]["endpoints"][0]["addresses"][0], int(slices[0]["ports"][0]["port"])


def measured_and_predicted(real_release, worker: dict, port: int) -> tuple[str, bool]:
    policies = real_release.get("networkpolicies", "-n", real_release.namespace)["items"]
    for policy in policies:
        policy.setdefault("kind", "NetworkPolicy")
    source = reachability.endpoint(worker, reachability.namespace_labels(real_release.kubectl))
    outside = netpol.Endpoint("the node IP", None, ip=NODE_IP)
    state = reachability.connect(real_release.cluster.node, worker, [(NODE_IP, port)])
    return state[(NODE_IP, port)], netpol.allowed(policies, source, outside, port)


def test_a_locked_down_ray_pod_reaches_no_address_the_policies_do_not_name(real_release,
                                                                          listener) -> None:
    name = real_release.ray_cluster()["metadata"]["name"]
    worker = real_release.pods(f"ray.io/cluster={name},ray.io/node-type=worker")[0]
    assert measured_and_predicted(real_release, worker, listener) == ("open", True)
    api_ip, api_port = api_endpoint(real_release)
    locked = dataclasses.replace(real_release.release, set_values=(
        *real_release.release.set_values, "networkPolicy.egress.allowAll=false",
        f"networkPolicy.kubernetesApi.cidrs={{{api_ip}/32}}",
        f"networkPolicy.kubernetesApi.ports={{{api_port}}}",
        f"networkPolicy.dns.cidrs={{{NODE_IP}/32}}"))
    kubeconfig = real_release.cluster.layout.kubeconfig
    result = upgrade(locked, kubeconfig, 4, platform.upgrade_flags(4))
    assert result.returncode == 0, result.stderr
    try:
        deadline = time.monotonic() + 60
        while (outcome := measured_and_predicted(real_release, worker, listener))[0] == "open":
            assert time.monotonic() < deadline, f"still open 60 s after the lock-down: {outcome}"
            time.sleep(2)
        state, predicted = outcome
        assert state.startswith("refused") and predicted is False, outcome
        # Names still resolve (DNS is allowed) and the workers stay joined (within the cluster).
        fqdn = f"{name}-head-svc.{real_release.namespace}.svc.cluster.local"
        lookup = real_release.exec(worker, "ray-worker", "python3", "-c",
                                   f"import socket; print(socket.gethostbyname('{fqdn}'))")
        assert lookup.returncode == 0, lookup.stderr
        assert socket.inet_aton(lookup.stdout.strip())
        assert ray_nodes_alive(real_release) >= 2
    finally:
        result = upgrade(real_release.release, kubeconfig, 4, platform.upgrade_flags(4))
        assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 60
    while measured_and_predicted(real_release, worker, listener)[0] != "open":
        assert time.monotonic() < deadline, "egress did not reopen after the upgrade back"
        time.sleep(2)
