"""Reading Ray's own view of the cluster from inside its head container."""
from __future__ import annotations

import re


def ray_status(real_release) -> str:
    head = real_release.head_pod(real_release.ray_cluster()["metadata"]["name"])
    result = real_release.exec(head, "ray-head", "ray", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ray_nodes_alive(real_release) -> int:
    """How many nodes `ray status` lists as active."""
    status = ray_status(real_release)
    active = status.split("Active:", 1)[1].split("Pending:", 1)[0]
    return len(re.findall(r"^\s*1 node_\w+", active, re.M))
