"""Ray's own view of a cluster, read with `ray status` inside a head container on the real node."""
from __future__ import annotations

import re
import subprocess

from cluster.node import node
from cluster.node.layout import NodeLayout


def live_nodes(status: str) -> int:
    """How many live nodes `ray status` lists: its Active and Idle sections count the nodes of
    each group ("1 cpu", "1 headgroup"); Pending and failed ones come after them."""
    live = status.split("Active:", 1)[1].split("Pending:", 1)[0]
    return sum(int(count) for count in re.findall(r"^\s+(\d+) \S+\s*$", live, re.M))


def container_id(pod: dict, container: str) -> str:
    status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
    return status["containerID"].split("://", 1)[1]


def ray_status(layout: NodeLayout, head_pod: dict, container: str = "ray-head"
               ) -> subprocess.CompletedProcess[str]:
    return node.crictl(layout, "exec", container_id(head_pod, container), "ray", "status")
