"""real-node-2 (cluster/node/second_node.py), offline: its names, addresses and paths differ from
node 1's and never contain them (cleanup finds a node's processes and mounts by those strings),
its components are configured as node 2, the link between the namespaces routes the other node's
IP and pod subnet only, and node 1's layout is what it always was."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from cluster.local.controlplane import Layout
from cluster.node import cleanup, cni, kube_proxy, kube_router, kubelet, netns, node
from cluster.node.addresses import (CLUSTER_CIDR, NODE_IP, POD_SUBNET, SERVICE_CIDR, node_ip,
                                    pod_subnet)
from cluster.node.layout import NODE_NAME, NodeLayout

CLUSTER = Layout(state_dir=Path("/tmp/ray-platform-node-abcdefgh/state"), name="two")
FIRST, SECOND = NodeLayout(CLUSTER), NodeLayout(CLUSTER, 2)


def test_node_one_keeps_its_names_and_paths() -> None:
    assert (FIRST.name, FIRST.ip, FIRST.pod_subnet) == (NODE_NAME, NODE_IP, POD_SUBNET)
    assert FIRST.dir == CLUSTER.state_dir / "node"
    assert FIRST.netns == f"rpnode-{FIRST.key}" and FIRST.cgroup_root == f"/rpnode-{FIRST.key}"
    assert FIRST.containerd_root.parts[-2:] == ("containerd", "two")


def test_node_two_addresses_are_distinct_private_and_inside_the_cluster_range() -> None:
    assert (SECOND.name, SECOND.ip, SECOND.pod_subnet) == ("real-node-2", "10.250.255.2",
                                                           "10.244.1.0/24")
    first, second = (ipaddress.ip_network(layout.pod_subnet) for layout in (FIRST, SECOND))
    assert not first.overlaps(second)
    assert second.subnet_of(ipaddress.ip_network(CLUSTER_CIDR))
    assert not second.overlaps(ipaddress.ip_network(SERVICE_CIDR))
    for address in (SECOND.ip, *second):
        assert ipaddress.ip_address(address).is_private
    assert ipaddress.ip_address(SECOND.ip) not in second and SECOND.ip != FIRST.ip
    with pytest.raises(ValueError):
        node_ip(0)
    with pytest.raises(ValueError):
        pod_subnet(257)


@pytest.mark.parametrize("attribute", ["netns", "cgroup_root", "dir", "containerd_root",
                                       "containerd_socket", "api_socket", "kubelet_dir", "pki"])
def test_node_two_shares_nothing_with_node_one_but_the_control_plane(attribute: str) -> None:
    mine, theirs = getattr(SECOND, attribute), getattr(FIRST, attribute)
    if attribute == "pki":  # the cluster's CA, which signs both nodes' client certificates
        assert mine == theirs
        return
    assert mine != theirs


def test_neither_nodes_cleanup_markers_match_the_others_paths() -> None:
    for one, other in ((FIRST, SECOND), (SECOND, FIRST)):
        for marker in cleanup.markers(one):
            for path in (*cleanup.markers(other), other.containerd_socket, other.api_socket,
                         other.kubelet_dir):
                assert marker not in str(path), (marker, path)
    assert len(str(SECOND.containerd_socket)) < 100  # a Unix socket path's limit is 108 bytes


def test_node_two_components_are_configured_as_node_two(tmp_path: Path) -> None:
    config = kubelet.configuration(SECOND)
    assert config["address"] == SECOND.ip and config["cgroupRoot"] == SECOND.cgroup_root
    # CoreDNS runs on node 1 only; node 2's pods reach it over the link.
    assert config["clusterDNS"] == [NODE_IP]
    assert config["containerRuntimeEndpoint"] == f"unix://{SECOND.containerd_socket}"
    bridge = cni.conflist(SECOND.pod_subnet)["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert kube_proxy.configuration(SECOND, "kc")["hostnameOverride"] == "real-node-2"
    assert "--hostname-override=real-node-2" in kube_router.arguments("kc", SECOND.name)
    assert "--hostname-override=real-node-1" in kube_router.arguments("kc")


def test_the_link_routes_only_the_other_nodes_ip_and_pods() -> None:
    for layout, peer in ((FIRST, SECOND), (SECOND, FIRST)):
        routes = netns.link_routes(layout, peer)
        destinations = {route[2] for route in routes}
        assert destinations == {f"{peer.ip}/32", peer.pod_subnet}
        for route in routes:
            assert "default" not in route and netns.link_name(peer) in route
            assert route[route.index("src") + 1] == layout.ip
        assert len(netns.link_name(peer)) <= 15  # IFNAMSIZ


def test_make_down_and_the_leftovers_check_cover_node_two() -> None:
    assert [layout.name for layout in node.all_layouts(CLUSTER)] == ["real-node-1", "real-node-2"]
    merged = cleanup.merged(cleanup.Leftovers(namespaces=["a"]),
                            cleanup.Leftovers(namespaces=["b"], cgroups=["c"]))
    assert merged.namespaces == ["a", "b"] and merged.cgroups == ["c"] and not merged.empty()
    assert cleanup.merged().empty()


def test_the_drain_releases_values_open_serve_to_node_ones_address_only() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "node"))
    from test_drain import drain_values

    values = drain_values(2)
    (rule,) = values["networkPolicy"]["extraIngress"]
    assert rule == {"from": [{"ipBlock": {"cidr": f"{NODE_IP}/32"}}],
                    "ports": [{"protocol": "TCP", "port": 8000}]}
    worker = values["rayServices"]["chaos"]["cluster"]["workerGroups"]["cpu"]
    assert (worker["replicas"], worker["minReplicas"], worker["maxReplicas"]) == (2, 2, 2)
    assert values["podDisruptionBudget"] == {"rayServiceWorkers": {"minAvailable": 2}}
    (deployment,) = values["rayServices"]["chaos"]["applications"][0]["deployments"]
    assert (deployment["num_replicas"], deployment["max_replicas_per_node"]) == (3, 1)
    assert yaml.safe_dump(values)  # plain data, as helm reads it
