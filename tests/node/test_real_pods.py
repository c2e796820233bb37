"""The dev release's pods ran as containers on the real node: each has a containerd container ID
and is ready from its real probes, restricted is enforced by the runtime (not just admitted),
Ray's workers joined the head through the head Service's DNS name with the cluster's token, and a
task runs on a worker."""
from __future__ import annotations

import json
import re
import time

import pytest

from cluster.local import operator
from cluster.node import node
from cluster.node.layout import NODE_IP, POD_SUBNET
from tests_node_helpers import ray_nodes_alive, ray_status

pytestmark = pytest.mark.node


def test_every_release_container_ran_and_is_ready(real_release, node_name) -> None:
    pods = real_release.pods()
    assert len(pods) >= 4, [p["metadata"]["name"] for p in pods]  # 2 heads, >= 2 workers
    for pod in pods:
        name = pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] == node_name, f"{name} is on a simulated node"
        assert pod["status"]["phase"] == "Running", (name, pod["status"]["phase"])
        assert re.match(r"^10\.244\.0\.\d+$", pod["status"]["podIP"]), (name, POD_SUBNET)
        for status in pod["status"]["containerStatuses"]:
            assert status["containerID"].startswith("containerd://"), (name, status)
            assert "running" in status["state"], (name, status["state"])
            assert status["ready"], (name, status["name"])
        for status in pod["status"].get("initContainerStatuses") or []:
            terminated = status["state"].get("terminated") or {}
            assert terminated.get("exitCode") == 0 and status["containerID"], (name, status)


def test_ray_containers_have_real_probes(real_release) -> None:
    """KubeRay injects httpGet probes on the dashboard agent (52365) for Ray >= 2.53: a ready
    container passed them against a real agent."""
    head = real_release.head_pod(real_release.ray_cluster()["metadata"]["name"])
    ray = next(c for c in head["spec"]["containers"] if c["name"] == "ray-head")
    assert ray["readinessProbe"]["httpGet"]["port"] == 52365
    assert ray["livenessProbe"]["httpGet"]["path"] == "/api/healthz"


def test_the_operator_runs_as_a_restricted_pod(real_release, node_name) -> None:
    pods = real_release.get("pods", "-n", operator.NAMESPACE)["items"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["nodeName"] == node_name
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] and status["containerID"].startswith("containerd://")
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("kind", ["RayCluster", "RayService"])
def test_restricted_is_enforced_by_the_runtime(real_release, kind) -> None:
    """uid 1000 / gid 100, no capabilities, no privilege gain, the RuntimeDefault seccomp filter:
    read from the kernel's view of the head container's process, not from the pod spec."""
    name = next(o for o in real_release.manifest if o["kind"] == kind)["metadata"]["name"]
    if kind == "RayService":
        name = real_release.get("rayservice", name, "-n", real_release.namespace)[
            "status"]["activeServiceStatus"]["rayClusterName"]
    head = real_release.head_pod(name)
    result = real_release.exec(head, "ray-head", "cat", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[:2] == ["1000", "1000"], fields["Uid"]
    assert fields["Gid"].split()[0] == "100", fields["Gid"]
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2", "no seccomp filter: RuntimeDefault is not applied"


def test_ray_status_in_the_head_lists_every_worker(real_release) -> None:
    cluster = real_release.ray_cluster()
    workers = [p for p in real_release.pods(
        f"ray.io/cluster={cluster['metadata']['name']},ray.io/node-type=worker")]
    assert workers, "the dev overlay has one CPU worker"
    assert ray_nodes_alive(real_release) == 1 + len(workers), ray_status(real_release)


def test_workers_joined_through_the_head_services_dns_name(real_release) -> None:
    cluster = real_release.ray_cluster()
    name = cluster["metadata"]["name"]
    worker = real_release.pods(f"ray.io/cluster={name},ray.io/node-type=worker")[0]
    command = " ".join(worker["spec"]["containers"][0].get("args") or [])
    fqdn = f"{name}-head-svc.{real_release.namespace}.svc.cluster.local"
    assert f"--address={fqdn}:6379" in command, command
    # The name resolves in the worker through the cluster's DNS (CoreDNS on the node IP).
    lookup = real_release.exec(worker, "ray-worker", "python3", "-c",
                               f"import socket; print(socket.gethostbyname('{fqdn}'))")
    assert lookup.returncode == 0, lookup.stderr
    head = real_release.head_pod(name)
    assert lookup.stdout.strip() == head["status"]["podIP"]
    resolv = real_release.exec(worker, "ray-worker", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {NODE_IP}" in resolv, resolv


TASK = """
import json, socket, ray
ray.init(address="auto", logging_level="ERROR")
workers = [n for n in ray.nodes() if n["Alive"] and not n["Resources"].get("node:__internal_head__")]
ip = workers[0]["NodeManagerAddress"]

@ray.remote(num_cpus=0, resources={f"node:{ip}": 0.01})
def where():
    return socket.gethostname()

print(json.dumps({"ip": ip, "host": ray.get(where.remote(), timeout=120)}))
"""


def test_a_task_with_a_worker_only_resource_runs_on_the_worker(real_release) -> None:
    """`node:<worker IP>` is a resource only that worker has: the task must run there."""
    cluster = real_release.ray_cluster()
    name = cluster["metadata"]["name"]
    head = real_release.head_pod(name)
    result = real_release.exec(head, "ray-head", "python3", "-c", TASK)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    workers = {p["status"]["podIP"]: p["metadata"]["name"]
               for p in real_release.pods(f"ray.io/cluster={name},ray.io/node-type=worker")}
    assert answer["ip"] in workers, (answer, workers)
    assert answer["host"] == workers[answer["ip"]]


def cluster_peer_labels(real_release, cluster_name: str) -> dict[str, str]:
    """The labels the chart's within-cluster NetworkPolicy lets reach every port of the cluster:
    the node enforces NetworkPolicies (kube-router), and a pod without them never reaches the
    GCS, so its token would never be checked."""
    policy = next(o for o in real_release.manifest if o["kind"] == "NetworkPolicy"
                  and o["metadata"]["name"] == f"{cluster_name}-within-cluster")
    return policy["spec"]["podSelector"]["matchLabels"]


def wrong_token_pod(real_release, fqdn: str, labels: dict[str, str]) -> dict:
    image = real_release.cluster.images["ray"].reference
    restricted = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100,
                  "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                  "seccompProfile": {"type": "RuntimeDefault"}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "wrong-token-worker", "namespace": real_release.namespace,
                     "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"ray-platform.io/node": "real"},
            "containers": [{
                "name": "ray-worker", "image": image, "imagePullPolicy": "Never",
                "command": ["/bin/bash", "-c",
                            f"ray start --address={fqdn}:6379 --num-cpus=1 --block"],
                "env": [{"name": "RAY_AUTH_MODE", "value": "token"},
                        {"name": "RAY_AUTH_TOKEN", "value": "not-the-clusters-token"}],
                "resources": {"requests": {"cpu": "50m", "memory": "256Mi"},
                              "limits": {"cpu": "500m", "memory": "1Gi"}},
                "securityContext": restricted}]}}


def test_a_worker_with_a_wrong_token_is_refused(real_release) -> None:
    """The same join as the chart's workers (head Service DNS name, GCS port), from a pod the
    cluster's NetworkPolicies let in, with a token that is not the cluster's: the head refuses it
    and it never becomes a node of the cluster."""
    name = real_release.ray_cluster()["metadata"]["name"]
    fqdn = f"{name}-head-svc.{real_release.namespace}.svc.cluster.local"
    before = ray_nodes_alive(real_release)
    labels = cluster_peer_labels(real_release, name)
    real_release.kubectl.apply([wrong_token_pod(real_release, fqdn, labels)])
    try:
        deadline = time.monotonic() + 240
        while True:
            pod = real_release.get("pod", "wrong-token-worker", "-n", real_release.namespace)
            statuses = pod["status"].get("containerStatuses") or []
            terminated = statuses and statuses[0]["state"].get("terminated")
            logs = ""
            if statuses and statuses[0].get("containerID"):
                answer = node.crictl(real_release.cluster.node, "logs",
                                     statuses[0]["containerID"].split("://", 1)[1])
                logs = answer.stdout + answer.stderr
            if terminated or AUTH_REFUSAL.search(logs):
                break
            assert time.monotonic() < deadline, f"no refusal after 240 s: {pod['status']}\n{logs}"
            time.sleep(5)
        assert AUTH_REFUSAL.search(logs), logs
        if terminated:
            assert terminated["exitCode"] != 0, terminated
        assert ray_nodes_alive(real_release) == before
    finally:
        real_release.kubectl.run("delete", "pod", "wrong-token-worker", "-n",
                                 real_release.namespace, "--wait=false", check=False)


# What Ray 2.60's GCS answers a client whose token is not the cluster's.
AUTH_REFUSAL = re.compile(r"InvalidAuthToken: Authentication token is missing or incorrect")
