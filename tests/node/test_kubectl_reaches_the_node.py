"""`kubectl logs`, `exec` and `port-forward` through the API server reach the real node's kubelet,
as in any cluster: the API server (a host process) dials the kubelet's address through its
egress selector, whose CONNECT proxy runs inside the node's network namespace
(cluster/node/connect_proxy.py). Without the proxy, only those requests fail."""
from __future__ import annotations

import base64
import json
import re
import select
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from cluster.local import processes
from cluster.node import node
from cluster.node.ray_status import container_id, live_nodes

pytestmark = pytest.mark.node
DASHBOARD_PORT = 8265


def head_with_autoscaler(real_release) -> dict:
    name = real_release.ray_cluster()["metadata"]["name"]
    head = real_release.head_pod(name)
    assert any(s["name"] == "autoscaler" for s in head["status"]["containerStatuses"]), \
        "the dev release's RayCluster head has no autoscaler container"
    return head


def crictl_lines(real_release, pod: dict, container: str) -> set[str]:
    answer = node.crictl(real_release.cluster.node, "logs", container_id(pod, container))
    assert answer.returncode == 0, answer.stderr
    return set((answer.stdout + answer.stderr).splitlines())


@pytest.mark.parametrize("container", ["autoscaler", "ray-head"])
def test_kubectl_logs_returns_the_containers_output(real_release, container) -> None:
    head = head_with_autoscaler(real_release)
    result = real_release.kubectl.run("logs", head["metadata"]["name"], "-n",
                                      real_release.namespace, "-c", container, check=False)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"kubectl logs -c {container} printed nothing"
    # The same lines the node's runtime keeps for that container (read after, so a superset).
    on_node = crictl_lines(real_release, head, container)
    missing = [line for line in lines[:50] if line not in on_node]
    assert not missing, missing[:5]


def test_kubectl_exec_runs_ray_status_in_the_head(real_release) -> None:
    head = head_with_autoscaler(real_release)
    result = real_release.kubectl.run("exec", head["metadata"]["name"], "-n",
                                      real_release.namespace, "-c", "ray-head", "--",
                                      "ray", "status", check=False, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    # The head and the worker values/local/real-node.yaml keeps (minReplicas 1).
    assert live_nodes(result.stdout) >= 2, result.stdout


def test_kubectl_port_forward_reaches_the_heads_dashboard(real_release) -> None:
    head = head_with_autoscaler(real_release)
    kubectl = real_release.kubectl
    forward = subprocess.Popen(
        [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "port-forward", "-n",
         real_release.namespace, "--address", "127.0.0.1", f"pod/{head['metadata']['name']}",
         f":{DASHBOARD_PORT}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # "Forwarding from 127.0.0.1:<port> -> 8265", once the stream to the kubelet is open.
        ready, _, _ = select.select([forward.stdout], [], [], 120)
        first = forward.stdout.readline() if ready else ""
        match = re.search(r"127\.0\.0\.1:(\d+) -> 8265", first)
        assert match, (first, forward.poll())
        url = f"http://127.0.0.1:{match.group(1)}/api/version"
        # Ray's own answers: 401 without the cluster's token, its version with it.
        assert get(url)[0] == 401
        status, body = get(url, {"Authorization": f"Bearer {cluster_token(real_release, head)}"})
        assert status == 200 and json.loads(body)["ray_version"], (status, body[:300])
    finally:
        forward.terminate()
        forward.wait(timeout=30)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:  # an HTTP answer all the same
        return error.code, error.read()


def cluster_token(real_release, head: dict) -> str:
    """The head's RAY_AUTH_TOKEN, from the Secret its ray-head container references."""
    container = next(c for c in head["spec"]["containers"] if c["name"] == "ray-head")
    env = {e["name"]: e for e in container.get("env") or []}
    ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = real_release.get("secret", ref["name"], "-n", real_release.namespace)
    return base64.b64decode(secret["data"][ref["key"]]).decode()


def accepts_unix(path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
            return True
        except OSError:
            return False


def test_without_the_proxy_only_the_way_into_the_node_fails(real_release) -> None:
    """The API server dials the egress socket per connection: with the proxy stopped, logs fail
    (quickly, with an error), everything else answers; started again, logs work again."""
    layout = real_release.cluster.node
    head = head_with_autoscaler(real_release)
    logs = ("logs", head["metadata"]["name"], "-n", real_release.namespace, "-c", "ray-head",
            "--tail", "1")
    assert processes.stop(layout.pid("egress-proxy")), "the CONNECT proxy was not running"
    try:
        began = time.monotonic()
        failed = real_release.kubectl.run(*logs, check=False, timeout=60)
        assert failed.returncode != 0, failed.stdout
        assert time.monotonic() - began < 30
        assert real_release.kubectl.run("get", "pods", "-n", real_release.namespace,
                                        check=False).returncode == 0
        assert real_release.kubectl.run("get", "--raw", "/readyz", check=False).returncode == 0
    finally:
        node.start_egress_proxy(layout)
        node.wait_for(lambda: accepts_unix(layout.egress_socket), "the CONNECT proxy")
    assert real_release.kubectl.run(*logs, check=False).returncode == 0
