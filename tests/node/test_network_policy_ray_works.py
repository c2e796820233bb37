"""Ray works with every NetworkPolicy of the chart enforced (kube-router on the real node), and the
same checks pass with `networkPolicy.enabled: false`: a task on the worker returns, a 50 MiB
object made on the worker is read on the head (object transfer between nodes), the Serve app
answers through its Service and `helm test` passes. Turning the policies off and on again is a
`helm upgrade` that must not restart a Ray pod: the policies are the only difference."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from cluster.local.release import helm_in, objects_of_kind, upgrade
from cluster.local.up import imagine, serve_route_prefix
from cluster.node import node, platform
from test_real_pods import TASK

pytestmark = pytest.mark.node

SIZE = 50 * 1024 * 1024
OBJECT_TRANSFER = f"""
import hashlib, json, ray
ray.init(address="auto", logging_level="ERROR")
workers = [n for n in ray.nodes() if n["Alive"] and not n["Resources"].get("node:__internal_head__")]
worker = workers[0]

@ray.remote(num_cpus=0, resources={{f"node:{{worker['NodeManagerAddress']}}": 0.01}})
def make():
    return bytes(range(256)) * ({SIZE} // 256)

ref = make.remote()
ray.wait([ref], timeout=180, fetch_local=False)
where = ray.experimental.get_object_locations([ref])[ref]["node_ids"]
data = ray.get(ref, timeout=300)
print(json.dumps({{"worker": worker["NodeID"], "head": ray.get_runtime_context().get_node_id(),
                  "made_on": where, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}}))
"""


def policies(real_release) -> list[str]:
    items = real_release.get("networkpolicies", "-n", real_release.namespace)["items"]
    return [p["metadata"]["name"] for p in items]


def set_policies(real_release, enabled: bool) -> None:
    release = dataclasses.replace(real_release.release, set_values=(
        *real_release.release.set_values, f"networkPolicy.enabled={str(enabled).lower()}"))
    result = upgrade(release, real_release.cluster.layout.kubeconfig, 4, platform.upgrade_flags(4))
    assert result.returncode == 0, result.stderr


def object_made_on_the_worker_is_read_on_the_head(real_release) -> None:
    head = real_release.head_pod(real_release.ray_cluster()["metadata"]["name"])
    result = real_release.exec(head, "ray-head", "python3", "-c", OBJECT_TRANSFER, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["made_on"] == [answer["worker"]] and answer["worker"] != answer["head"], answer
    expected = hashlib.sha256(bytes(range(256)) * (SIZE // 256)).hexdigest()
    assert answer["size"] == SIZE and answer["sha256"] == expected, answer


def task_runs_on_the_worker(real_release) -> None:
    name = real_release.ray_cluster()["metadata"]["name"]
    result = real_release.exec(real_release.head_pod(name), "ray-head", "python3", "-c", TASK)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    workers = {p["status"]["podIP"]: p["metadata"]["name"]
               for p in real_release.pods(f"ray.io/cluster={name},ray.io/node-type=worker")}
    assert workers.get(answer["ip"]) == answer["host"], (answer, workers)


def serve_answers(real_release, forward: str) -> None:
    service = objects_of_kind(real_release.manifest, "RayService")[0]
    name = service["metadata"]["name"]
    address = platform.service_ip(real_release.kubectl, f"{name}-serve-svc", real_release.namespace)
    url = node.expose(real_release.cluster.node, forward, address, 8000)
    png = imagine(url, serve_route_prefix(service), size=64, steps=2, timeout=300)
    assert png.startswith(b"\x89PNG")


def test_with_the_policies_a_50_mib_object_made_on_the_worker_is_read_on_the_head(
        real_release) -> None:
    """With the policies on, the task, Serve and helm test checks are in test_real_pods.py and
    test_serve_and_helm_test.py; object transfer between nodes is this one."""
    assert policies(real_release), "the dev release renders NetworkPolicies"
    object_made_on_the_worker_is_read_on_the_head(real_release)


def test_without_the_policies_the_same_checks_pass_and_no_ray_pod_restarts(real_release) -> None:
    ray_pods = {p["metadata"]["uid"] for p in real_release.pods("ray.io/node-type")}
    set_policies(real_release, False)
    try:
        assert policies(real_release) == []
        task_runs_on_the_worker(real_release)
        object_made_on_the_worker_is_read_on_the_head(real_release)
        serve_answers(real_release, "serve-no-policies")
        result = helm_in(real_release.cluster.layout.kubeconfig, "test",
                         real_release.release.name, "-n", real_release.namespace, "--timeout",
                         "10m", major=4, timeout=700)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        set_policies(real_release, True)
    assert policies(real_release)
    # The policies are objects of their own: taking them away and back replaced no Ray pod. (The
    # autoscaler may have added a worker for helm test's job meanwhile: Ray's doing, not the
    # upgrade's.)
    now = {p["metadata"]["uid"]: p for p in real_release.pods("ray.io/node-type")}
    assert ray_pods <= set(now), f"replaced: {ray_pods - set(now)}"
    added = [p["metadata"]["labels"]["ray.io/node-type"] for u, p in now.items() if u not in ray_pods]
    assert set(added) <= {"worker"}, added
