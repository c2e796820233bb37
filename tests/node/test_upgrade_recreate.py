"""`helm upgrade` of a pod setting with upgradeStrategy Recreate (the chart's default) replaces
the RayCluster's running containers, and the new head and workers form a cluster again. Runs
last in this folder: it restarts the Ray cluster the other tests read."""
from __future__ import annotations

import dataclasses
import time

import pytest

from cluster.local.release import upgrade
from cluster.node.platform import upgrade_flags
from tests_node_helpers import ray_nodes_alive, settled_pods

pytestmark = pytest.mark.node
# No dots: `--set` would read them as nesting.
LABEL = "rollout"


def test_upgrade_replaces_running_containers_and_the_new_ones_join(real_release) -> None:
    name = real_release.ray_cluster()["metadata"]["name"]
    selector = f"ray.io/cluster={name}"
    before = {p["metadata"]["uid"]: p for p in settled_pods(real_release, selector)}
    old_containers = {s["containerID"] for p in before.values()
                      for s in p["status"]["containerStatuses"]}
    nonce = f"r{int(time.time())}"
    changed = dataclasses.replace(
        real_release.release,
        set_values=(*real_release.release.set_values, f"rayCluster.head.labels.{LABEL}={nonce}"))
    result = upgrade(changed, real_release.cluster.layout.kubeconfig, 4, upgrade_flags(4))
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 600
    while True:
        pods = real_release.pods(selector)
        heads = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "head"]
        fresh = [p for p in pods if p["metadata"]["uid"] not in before]
        ready = all(s.get("ready") for p in pods for s in p["status"].get("containerStatuses") or [{}])
        if (len(heads) == 1 and heads[0]["metadata"]["labels"].get(LABEL) == nonce
                and len(fresh) == len(pods) and ready and pods):
            break
        assert time.monotonic() < deadline, [(p["metadata"]["name"], p["status"].get("phase"))
                                              for p in pods]
        time.sleep(3)
    new_containers = {s["containerID"] for p in pods for s in p["status"]["containerStatuses"]}
    assert new_containers and not new_containers & old_containers
    workers = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "worker"]
    assert workers
    deadline = time.monotonic() + 300
    while (alive := ray_nodes_alive(real_release)) < 1 + len(workers):
        assert time.monotonic() < deadline, f"{alive} Ray nodes alive, {1 + len(workers)} expected"
        time.sleep(5)

