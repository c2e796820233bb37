"""Reading Ray's own view of the cluster from inside its head container, and the Kubernetes
objects the tests read beside it."""
from __future__ import annotations

import time
from typing import Any

from cluster.node.platform import containers_ready
from cluster.node.ray_status import live_nodes


def ray_status(real_release) -> str:
    head = real_release.head_pod(real_release.ray_cluster()["metadata"]["name"])
    result = real_release.exec(head, "ray-head", "ray", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ray_nodes_alive(real_release) -> int:
    """How many live nodes `ray status` lists: its Active and Idle sections count the nodes of
    each group ("1 cpu", "1 headgroup"); Pending and failed ones come after them."""
    return live_nodes(ray_status(real_release))


def settled_pods(real_release, selector: str, timeout: float = 600) -> list[dict[str, Any]]:
    """The pods of `selector` once every container in them has started and is ready. A pod the
    operator has just (re)created has containers without an ID yet; reading it then would
    compare nothing."""
    deadline = time.monotonic() + timeout
    while True:
        pods = real_release.pods(selector)
        if containers_ready(pods):
            return pods
        assert time.monotonic() < deadline, [
            (p["metadata"]["name"], p["status"].get("phase"),
             [(s.get("name"), s.get("state")) for s in p["status"].get("containerStatuses") or []])
            for p in pods]
        time.sleep(3)


def service_endpoints(release, service: str) -> list[dict[str, Any]]:
    """The endpoints of a Service in the release's namespace, from its EndpointSlices (a
    headless head Service has no cluster IP: clients reach what the slices list). `release` is
    the session release or a test's own (both have get() and namespace)."""
    slices = release.get("endpointslices", "-n", release.namespace, "-l",
                         f"kubernetes.io/service-name={service}")["items"]
    return [e for s in slices for e in s.get("endpoints") or []]
