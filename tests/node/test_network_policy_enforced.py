"""NetworkPolicies are enforced on the real node (kube-router's firewall), measured by real TCP
connections between pods in a namespace of this module's own: open without a policy, closed by
a deny-all ingress policy on the server, open again for the client's label only, closed by a
deny-all egress policy on the client; and kube-router's rules live in the node's namespace only,
in the same iptables flavour as kube-proxy's."""
from __future__ import annotations

import subprocess
import time
from typing import Any, Iterator

import pytest

from cluster.local.release import restricted_namespace
from cluster.node import kube_router, netns, node

pytestmark = pytest.mark.node
NAMESPACE = "netpol-enforced"
PORT = 8080
# kube-router syncs on every policy or pod event; a change shows within seconds.
DEADLINE = 60
RESTRICTED = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100,
              "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
              "seccompProfile": {"type": "RuntimeDefault"}}
# Run in the client: prints OPEN, or CLOSED and why (refused by a REJECT, or timed out by a DROP).
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("OPEN")
except OSError as error:
    print("CLOSED", repr(error))
"""


def pod(image: str, name: str, command: list[str], serves: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name, "image": image, "imagePullPolicy": "Never", "command": command,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                      "limits": {"cpu": "200m", "memory": "128Mi"}},
        "securityContext": RESTRICTED}
    if serves:
        # Ready once it listens (the kubelet's probe comes from the node, which policies let in).
        container["ports"] = [{"containerPort": PORT}]
        container["readinessProbe"] = {"tcpSocket": {"port": PORT}, "periodSeconds": 1}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "automountServiceAccountToken": False,
                     "nodeSelector": {"ray-platform.io/node": "real"},
                     "containers": [container]}}


def policy(name: str, selected: str, types: list[str], **rules: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"podSelector": {"matchLabels": {"app": selected}}, "policyTypes": types,
                     **rules}}


DENY_INGRESS = policy("server-deny-ingress", "server", ["Ingress"])
ALLOW_CLIENT = policy("server-allow-client", "server", ["Ingress"], ingress=[{
    "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
    "ports": [{"protocol": "TCP", "port": PORT}]}])
DENY_EGRESS = policy("client-deny-egress", "client", ["Egress"])


def wait_running(kubectl, names: list[str], timeout: float = 180) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        pods = {p["metadata"]["name"]: p
                for p in kubectl.get("pods", "-n", NAMESPACE)["items"]}
        statuses = {n: (pods.get(n, {}).get("status", {}).get("containerStatuses") or [{}])[0]
                    for n in names}
        if all(s.get("ready") and s.get("containerID") for s in statuses.values()):
            return pods
        assert time.monotonic() < deadline, {n: s.get("state") for n, s in statuses.items()}
        time.sleep(2)


@pytest.fixture(scope="module")
def pods(real_cluster) -> Iterator[dict[str, dict[str, Any]]]:
    """A server on :8080, a client labelled app=client and another pod without that label."""
    kubectl = real_cluster.kubectl
    image = real_cluster.images["ray"].reference
    kubectl.apply([restricted_namespace(NAMESPACE)])
    try:
        # Pods are refused until the controller manager has made the namespace's ServiceAccount.
        deadline = time.monotonic() + 60
        while kubectl.run("get", "serviceaccount", "default", "-n", NAMESPACE,
                          check=False).returncode != 0:
            assert time.monotonic() < deadline, "no default ServiceAccount after 60 s"
            time.sleep(1)
        idle = ["python3", "-c", "import time; time.sleep(86400)"]
        kubectl.apply([pod(image, "server", ["python3", "-m", "http.server", str(PORT),
                                             "--directory", "/tmp"], serves=True),
                       pod(image, "client", idle), pod(image, "other", idle)])
        yield wait_running(kubectl, ["server", "client", "other"])
    finally:
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s",
                    check=False, timeout=150)


@pytest.fixture(autouse=True)
def no_policies_after(real_cluster) -> Iterator[None]:
    yield
    real_cluster.kubectl.run("delete", "networkpolicy", "--all", "-n", NAMESPACE, check=False)


def connect(real_cluster, pods: dict[str, dict[str, Any]], source: str) -> str:
    """OPEN or CLOSED (with the reason) for one TCP connection from `source` to the server."""
    status = pods[source]["status"]["containerStatuses"][0]
    result = node.crictl(real_cluster.node, "exec", status["containerID"].split("://", 1)[1],
                         "python3", "-c", CONNECT, pods["server"]["status"]["podIP"], str(PORT),
                         timeout=60)
    # Anything but an answer of the script is a broken measurement, not a closed port.
    assert result.returncode == 0 and result.stdout.startswith(("OPEN", "CLOSED")), \
        result.stdout + result.stderr
    return result.stdout.strip()


def eventually(real_cluster, pods, source: str, expected: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not (answer := connect(real_cluster, pods, source)).startswith(expected):
        if time.monotonic() > deadline:
            log = real_cluster.node.log(kube_router.COMPONENT)
            tail = "\n".join(log.read_text().splitlines()[-20:]) if log.is_file() else ""
            pytest.fail(f"{source} -> server:{PORT} still {answer!r} after {DEADLINE} s, "
                        f"expected {expected}; kube-router's log ends:\n{tail}")
        time.sleep(1)


def test_without_a_policy_every_pod_reaches_the_server(real_cluster, pods) -> None:
    eventually(real_cluster, pods, "client", "OPEN")
    eventually(real_cluster, pods, "other", "OPEN")


def test_deny_all_ingress_closes_the_server_and_an_allow_opens_it_to_the_client_only(
        real_cluster, pods) -> None:
    real_cluster.kubectl.apply([DENY_INGRESS])
    eventually(real_cluster, pods, "client", "CLOSED")
    eventually(real_cluster, pods, "other", "CLOSED")
    real_cluster.kubectl.apply([ALLOW_CLIENT])
    eventually(real_cluster, pods, "client", "OPEN")
    # Measured after the client's connection opened, so the rules for the allow are in place.
    assert connect(real_cluster, pods, "other").startswith("CLOSED")


def test_deny_all_egress_on_the_client_closes_its_connections_only(real_cluster, pods) -> None:
    eventually(real_cluster, pods, "client", "OPEN")  # the previous test's policies are gone
    real_cluster.kubectl.apply([DENY_EGRESS])
    eventually(real_cluster, pods, "client", "CLOSED")
    assert connect(real_cluster, pods, "other").startswith("OPEN")
    real_cluster.kubectl.run("delete", "networkpolicy", DENY_EGRESS["metadata"]["name"],
                             "-n", NAMESPACE)
    eventually(real_cluster, pods, "client", "OPEN")


def output(prefix: list[str], *argv: str) -> str:
    return subprocess.run([*prefix, *argv], capture_output=True, text=True,
                          env={"PATH": kube_router.PATH}).stdout


def test_its_rules_live_in_the_node_namespace_in_kube_proxys_flavour(real_cluster, pods) -> None:
    """kube-router and kube-proxy write through the same iptables (nf_tables): both their chains
    are in the namespace's nft tables and none in its legacy ones; the host's tables hold
    nothing of either, and none of the ipsets kube-router made for a policy's peers."""
    real_cluster.kubectl.apply([DENY_INGRESS, ALLOW_CLIENT])
    eventually(real_cluster, pods, "client", "OPEN")
    inside = netns.enter(real_cluster.node)
    nft = output(inside, "iptables-nft-save")
    assert "KUBE-ROUTER-FORWARD" in nft and "KUBE-SERVICES" in nft, nft[:2000]
    assert "KUBE-" not in output(inside, "iptables-legacy-save")
    sets = set(output(inside, "ipset", "list", "-n").split())
    assert sets, "kube-router made no ipset in the node's namespace for the allow policy"
    for command in ("iptables-nft-save", "iptables-legacy-save"):
        host = output([], command)
        assert "KUBE-ROUTER" not in host and "KUBE-SERVICES" not in host, command
    host_sets = set(output([], "ipset", "list", "-n").split())
    assert not host_sets & sets, host_sets & sets
