"""Where one real node keeps its state, and the addresses it uses.

Every private address (node IP, pod and Service networks) exists only inside the node's network
namespace, which has no route out; two local clusters each get their own namespace (named after
their state folder), so they share no address, port or namespace even though both use the same
private ranges. The host reaches the node only through Unix sockets and loopback forwards.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cluster.local.controlplane import Layout
from images.build import cache_root

from cluster.node.addresses import (CLUSTER_CIDR, CLUSTER_DOMAIN,  # noqa: F401 (re-exported)
                                     KUBERNETES_SERVICE_IP, NODE_IP, POD_SUBNET, SERVICE_CIDR,
                                     node_ip, pod_subnet)


def node_name(number: int) -> str:
    return f"real-node-{number}"


NODE_NAME = node_name(1)
NODE_LABELS = {"ray-platform.io/node": "real"}


@dataclass(frozen=True)
class NodeLayout:
    """Paths and names of a real node of one local cluster (control plane: `cluster`). Node 1 is
    the one every test uses; a node with a higher `number` (second_node.py) has its own
    namespace, folder, image store, cgroup root, IP and pod subnet, none of which contains node
    1's names as a prefix (cleanup.py finds a node's processes and mounts by those strings)."""

    cluster: Layout
    number: int = 1

    @property
    def name(self) -> str:
        """The Node object's name (the kubelet's --hostname-override)."""
        return node_name(self.number)

    @property
    def ip(self) -> str:
        return node_ip(self.number)

    @property
    def pod_subnet(self) -> str:
        return pod_subnet(self.number)

    @property
    def suffix(self) -> str:
        return "" if self.number == 1 else f"-{self.number}"

    @property
    def key(self) -> str:
        return hashlib.sha256(str(self.cluster.state_dir.resolve()).encode()).hexdigest()[:10]

    @property
    def netns(self) -> str:
        """The node's network namespace (`ip netns` name)."""
        return f"rpnode-{self.key}{self.suffix}"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def cgroup_root(self) -> str:
        """The kubelet's cgroup root under each v1 hierarchy: per cluster, so two clusters'
        `kubepods` never meet and cleanup removes exactly this node's."""
        return f"/rpnode-{self.key}{self.suffix}"

    @property
    def dir(self) -> Path:
        # Not "node-2": node 1's folder name would then be a prefix of it.
        return self.cluster.state_dir / ("node" if self.number == 1 else self.name)

    @property
    def containerd_root(self) -> Path:
        """Images and snapshots, kept per cluster name in the machine's cache beside the image
        archives: `make down` keeps the imported images, so the next `make up` (or test
        session, or a fresh clone's) does not import them again; nothing there is mounted once
        containerd has stopped."""
        if self.number == 1:
            return cache_root() / "containerd" / self.cluster.name
        return cache_root() / f"containerd-{self.name}" / self.cluster.name

    @property
    def containerd_socket(self) -> Path:
        return self.dir / "containerd" / "containerd.sock"

    @property
    def api_socket(self) -> Path:
        return self.dir / "api.sock"

    @property
    def egress_socket(self) -> Path:
        """The API server's way in (connect_proxy.py): named by the control plane, which
        writes it into the API server's egress selector before this node exists."""
        return self.cluster.egress_socket

    @property
    def kubelet_dir(self) -> Path:
        return self.dir / "kubelet"

    @property
    def pki(self) -> Path:
        return self.cluster.kwok_workdir / "clusters" / self.cluster.name / "pki"

    def file(self, name: str) -> Path:
        return self.dir / name

    def pid(self, component: str) -> Path:
        return self.dir / "run" / f"{component}.pid"

    def log(self, component: str) -> Path:
        return self.dir / "logs" / f"{component}.log"
