"""The pod network: the CNI reference plugins (bridge, host-local, loopback, portmap), loaded by
containerd from a static conflist (the node has no spec.podCIDR: kwokctl's controller-manager
allocates none). The bridge and every pod address live inside the node's namespace."""
from __future__ import annotations

import json
from pathlib import Path

from cluster.node.layout import POD_SUBNET, NodeLayout

NETWORK = "ray-platform-node"
PLUGINS = ("bridge", "host-local", "loopback", "portmap")


def conflist(subnet: str = POD_SUBNET) -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True,
             # No masquerade: the node namespace has no way out to masquerade to, and pods keep
             # their own source address (what NetworkPolicies match on).
             "ipMasq": False,
             # A pod reaching itself through its own Service (a Ray head's own head-svc).
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                      "dataDir": "{data_dir}"}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def write(layout: NodeLayout) -> Path:
    """The conflist in the node's own CNI config folder; host-local keeps its leases in the
    state folder, not in /var/lib/cni, so two nodes never hand out each other's addresses."""
    folder = layout.dir / "cni" / "net.d"
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(conflist(layout.pod_subnet), indent=2).replace(
        "{data_dir}", str(layout.dir / "cni" / "leases"))
    path = folder / "10-ray-platform.conflist"
    path.write_text(text)
    return path
