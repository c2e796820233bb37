"""The real node's network stays inside its namespace, and a node's processes, mounts,
namespaces and cgroups all go with `make down`, also after a run was killed, while another
local cluster (this session's) keeps running beside it."""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from cluster.local import lifecycle
from cluster.local.controlplane import Layout
from cluster.node import cleanup, netns, platform
from cluster.node.layout import NodeLayout

pytestmark = pytest.mark.node
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def addresses(prefix: list[str]) -> list[ipaddress.IPv4Interface]:
    output = subprocess.run([*prefix, "ip", "-j", "addr"], capture_output=True, text=True,
                            check=True).stdout
    return [ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}") for link in json.loads(output)
            for a in link.get("addr_info", []) if a.get("family") == "inet"]


def test_the_node_namespace_has_no_route_out(real_release) -> None:
    layout = real_release.cluster.node
    routes = netns.routes(layout)
    assert "default" not in routes, routes
    # Routes lead onto the namespace's own devices only: lo, the bridge.
    for line in routes.splitlines():
        if line.startswith(("local ", "broadcast ", "multicast ", "anycast ", "fe80", "ff00")):
            continue
        assert " dev lo" in line or " dev cni0" in line, line
    links = subprocess.run([*netns.enter(layout), "ip", "-j", "link"], capture_output=True,
                           text=True, check=True).stdout
    kinds = {link["ifname"]: link.get("link_type") for link in json.loads(links)}
    # lo, the CNI bridge and one veth per pod: nothing that leads out of the namespace.
    assert all(name == "lo" or name == "cni0" or name.startswith("veth") for name in kinds), kinds


def test_no_private_address_of_the_node_is_on_the_hosts_interfaces(real_release) -> None:
    inside = {a.ip for a in addresses(netns.enter(real_release.cluster.node))}
    assert any(ip.is_private and not ip.is_loopback for ip in inside)
    host = {a.ip for a in addresses([])}
    assert not (inside - {ipaddress.ip_address("127.0.0.1")}) & host
    for ip in host:
        assert not any(ip in net for net in PRIVATE if ip in inside), ip


def test_a_second_cluster_comes_up_beside_and_leaves_nothing_even_after_a_kill(real_release) -> None:
    """Another local cluster with a real node, while this session's runs: its own namespace and
    ports. Its node processes are killed (as a killed `make up` leaves them), the next start
    removes the leftovers and comes up again, and `make down` leaves no process, mount,
    namespace or cgroup of it."""
    with tempfile.TemporaryDirectory(prefix="ray-platform-second-") as workdir:
        layout = Layout(state_dir=Path(workdir) / "state", name="ray-platform-second")
        node_layout = NodeLayout(layout)
        assert node_layout.netns != real_release.cluster.node.netns
        try:
            platform.start(layout, say=print, image_names=["pause", "kuberay-operator"])
            for pid in cleanup.node_pids(node_layout):
                os.kill(pid, signal.SIGKILL)
            assert not cleanup.leftovers(node_layout).empty()
            platform.start(layout, say=print, image_names=["pause", "kuberay-operator"])
        finally:
            lifecycle.down(layout, say=print)
        left = cleanup.leftovers(node_layout)
        assert left.empty(), str(left)
    # The session's own node is untouched.
    assert netns.exists(real_release.cluster.node)
