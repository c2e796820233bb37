"""The in-tree Ray autoscaler scaling a RayCluster's worker group on the real node, timed.

A driver in the head container asks for more CPUs than the running workers have: a placement
group of two 1-CPU bundles on distinct nodes, while the group's one worker announces one CPU and
the head none. The autoscaler (the head pod's sidecar) raises the group's replicas, the operator
creates the pod, the new worker joins and runs its task. Once the driver is gone the cluster is
idle, and after idleTimeoutSeconds the group shrinks back to minReplicas.

tests/node/test_autoscaler_scales.py checks the behaviour; bench_autoscaler.py prints the times.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from cluster.node import node, ray_status
from cluster.node.platform import RealCluster

GROUP = "cpu"
MIN_REPLICAS = 1
# Short, so a test sees the scale-down within a minute; the chart's default is 60 s.
IDLE_TIMEOUT = 20
VERSIONS = ("v1", "v2")
# Tiny requests (2 cores, and the dev release beside); num-cpus and memory from the limits.
HEAD = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
WORKER = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
DEADLINE = 900  # generous: a bound on a shared 2-core machine, not a measured expectation


def values(version: str, idle_timeout: int = IDLE_TIMEOUT) -> dict[str, Any]:
    """The chart's RayCluster alone (no Stable Diffusion), one worker group of 1-CPU workers,
    minReplicas 1 and room for one more, the autoscaler of `version`."""
    return {
        "stableDiffusion": {"enabled": False},
        "rayCluster": {
            "head": {"resources": HEAD},
            "workerGroups": {GROUP: {"replicas": MIN_REPLICAS, "minReplicas": MIN_REPLICAS,
                                     "maxReplicas": MIN_REPLICAS + 1, "resources": WORKER}},
            "autoscaler": {"enabled": True, "version": version, "idleTimeoutSeconds": idle_timeout,
                           "upscalingMode": "Default"},
        },
    }


DRIVER = """
import json, socket, time, ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
ray.init(address="auto", logging_level="ERROR")
before = [n["NodeManagerHostname"] for n in ray.nodes() if n["Alive"]]

@ray.remote(num_cpus=1)
def where():
    return {{"host": socket.gethostname(), "started": time.time()}}

demand = time.time()
group = placement_group([{{"CPU": 1}}] * 2, strategy="STRICT_SPREAD")
ray.get(group.ready(), timeout={timeout})
tasks = ray.get([where.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
    group, placement_group_bundle_index=i)).remote() for i in range(2)], timeout={timeout})
remove_placement_group(group)
print(json.dumps({{"before": before, "demand": demand, "tasks": tasks, "done": time.time()}}))
"""


@dataclass(frozen=True)
class ScaleUp:
    """Epoch seconds (the node's containers share the host's clock)."""
    demand: float  # the driver asked for the placement group
    replicas_raised: float  # the group's replicas seen above minReplicas in the RayCluster
    pod_created: float  # a worker pod that was not there before first listed
    first_task: float  # the task on the new worker started
    done: float  # both tasks returned, the placement group removed: idle from here
    new_host: str  # the new worker pod (its hostname)
    hosts_before: tuple[str, ...]  # pods of the Ray nodes alive before the demand
    # `ray status` in the head once the operator created the pod: what a user watching sees
    # (the bench prints it; README's autoscaler example is one such printout).
    status_while_scaling: str = ""


@dataclass(frozen=True)
class ScaleDown:
    idle: float
    replicas_lowered: float  # the group's replicas back at minReplicas
    pod_gone: float  # the removed worker's pod no longer listed


def raycluster(cluster: RealCluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.kubectl.get("raycluster", name, "-n", namespace)


def group_replicas(obj: dict[str, Any]) -> int:
    spec = next(g for g in obj["spec"]["workerGroupSpecs"] if g["groupName"] == GROUP)
    return int(spec.get("replicas", 0))


def worker_pods(cluster: RealCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.kubectl.get("pods", "-n", namespace, "-l",
                               f"ray.io/cluster={name},ray.io/node-type=worker")["items"]


def head_pod(cluster: RealCluster, namespace: str, name: str) -> dict[str, Any]:
    (head,) = cluster.kubectl.get("pods", "-n", namespace, "-l",
                                  f"ray.io/cluster={name},ray.io/node-type=head")["items"]
    return head


def wait_nodes_alive(cluster: RealCluster, namespace: str, name: str, count: int,
                     timeout: float = DEADLINE) -> None:
    """Until `ray status` in the head lists `count` live nodes (head + workers)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ray_status.ray_status(cluster.node, head_pod(cluster, namespace, name))
        if answer.returncode == 0 and "Active:" in answer.stdout:
            if ray_status.live_nodes(answer.stdout) == count:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: not {count} live Ray nodes within {timeout:.0f} s:\n"
                               f"{answer.stdout}{answer.stderr}")
        time.sleep(2)


# Which autoscaler the cluster runs, as `ray kuberay-autoscaler` itself decides it: the flag the
# head's GCS published at start (from RAY_enable_autoscaler_v2, or Ray's default under KubeRay).
WHICH = """
import ray
from ray.autoscaler.v2.utils import is_autoscaler_v2
ray.init(address="auto", logging_level="ERROR")
print("v2" if is_autoscaler_v2(fetch_from_server=True) else "v1")
"""


def running_version(cluster: RealCluster, namespace: str, name: str) -> str:
    head = head_pod(cluster, namespace, name)
    answer = node.crictl(cluster.node, "exec", ray_status.container_id(head, "ray-head"),
                         "python3", "-c", WHICH)
    if answer.returncode != 0:
        raise RuntimeError(f"which autoscaler runs:\n{answer.stdout}{answer.stderr}")
    return answer.stdout.strip().splitlines()[-1]


def scale_up(cluster: RealCluster, namespace: str, name: str) -> ScaleUp:
    """Run the driver in the head container; meanwhile read the RayCluster and its worker pods
    each second for the autoscaler's decision and the operator's pod (creationTimestamp has
    whole seconds only). Raises if the demand is not met (the driver fails)."""
    head = head_pod(cluster, namespace, name)
    before = {p["metadata"]["name"] for p in worker_pods(cluster, namespace, name)}
    answer: dict[str, Any] = {}

    def drive() -> None:
        answer["result"] = node.crictl(
            cluster.node, "exec", ray_status.container_id(head, "ray-head"), "python3", "-c",
            DRIVER.format(timeout=DEADLINE), timeout=DEADLINE + 60)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    raised = created = 0.0
    snapshot = ""
    while driver.is_alive():
        if not raised and group_replicas(raycluster(cluster, namespace, name)) > MIN_REPLICAS:
            raised = time.time()
        if not created and {p["metadata"]["name"]
                            for p in worker_pods(cluster, namespace, name)} - before:
            created = time.time()
            snapshot = ray_status.ray_status(cluster.node, head).stdout
        time.sleep(1)
    result = answer["result"]
    if result.returncode != 0:
        raise RuntimeError(f"the driver failed:\n{result.stdout}{result.stderr}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    new = [t for t in report["tasks"] if t["host"] not in report["before"]]
    if len(new) != 1:
        raise RuntimeError(f"expected one task on a new worker: {report}")
    pods = {p["metadata"]["name"] for p in worker_pods(cluster, namespace, name)}
    if not raised or not created or new[0]["host"] in before or new[0]["host"] not in pods:
        raise RuntimeError(f"the new worker did not come from a raised replica count: "
                           f"raised at {raised}, pod listed at {created}, pods before "
                           f"{sorted(before)}, now {sorted(pods)}, driver {report}")
    return ScaleUp(demand=report["demand"], replicas_raised=raised, pod_created=created,
                   first_task=new[0]["started"], done=report["done"], new_host=new[0]["host"],
                   hosts_before=tuple(report["before"]), status_while_scaling=snapshot)


# The autoscaler's event summary, the same in v1 and v2: "Adding 1 node(s) of type cpu.",
# "Removing 1 nodes of type cpu (idle)." (for the bench's printout).
DECISION = re.compile(r"\b(Adding|Removing) \d+ node")


def autoscaler_decisions(cluster: RealCluster, namespace: str, name: str) -> list[str]:
    head = head_pod(cluster, namespace, name)
    answer = node.crictl(cluster.node, "logs", ray_status.container_id(head, "autoscaler"))
    return [line for line in (answer.stdout + answer.stderr).splitlines()
            if DECISION.search(line)]


def scale_down(cluster: RealCluster, namespace: str, name: str, idle: float,
               timeout: float = DEADLINE) -> ScaleDown:
    """Until the group is back at minReplicas, in the RayCluster and in its pods."""
    deadline = time.monotonic() + timeout
    lowered = gone = 0.0
    while not (lowered and gone):
        if not lowered and group_replicas(raycluster(cluster, namespace, name)) == MIN_REPLICAS:
            lowered = time.time()
        if not gone and len(worker_pods(cluster, namespace, name)) == MIN_REPLICAS:
            gone = time.time()
        if time.monotonic() > deadline:
            pods = [p["metadata"]["name"] for p in worker_pods(cluster, namespace, name)]
            raise TimeoutError(f"{name}: group {GROUP} not back at {MIN_REPLICAS} within "
                               f"{timeout:.0f} s (replicas lowered: {bool(lowered)}, pods: {pods})")
        time.sleep(1)
    return ScaleDown(idle=idle, replicas_lowered=lowered, pod_gone=gone)
