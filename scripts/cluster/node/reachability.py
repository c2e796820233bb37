"""The NetworkPolicy reachability matrix measured on the real node, and the harness's evaluator
(harness/netpol.py) held against it.

Sources: probe pods (restricted, the ray image) standing for each party the chart's policies
name (a plain pod and a labelled client in the release namespace and in another one, Prometheus,
the ingress controller, the operator), and every Ray pod of the release. Destinations: every Ray
pod, on every TCP port it listens on (read from /proc/net/tcp inside it, so Ray's own dynamically
chosen ports count too). Each cell is a real TCP connection: "open" or not (a reject from
kube-router, or a drop). Ports that stopped listening while the probes ran are left out.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from cluster.local.kubectl import Kubectl
from cluster.node import node
from cluster.node.layout import NODE_LABELS, NodeLayout
from harness import netpol
from harness.netpol_parties import Party
from harness.tools import REPO

PROBE_SCRIPT = REPO / "scripts" / "cluster" / "node" / "probe_connect.py"
RESTRICTED = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100,
              "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
              "seccompProfile": {"type": "RuntimeDefault"}}


def probe_pod(party: Party, namespace: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"probe-{party.name}", "namespace": namespace,
                     "labels": {**party.labels, "ray-platform.io/probe": party.name}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "nodeSelector": dict(NODE_LABELS),
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "Never",
                "command": ["python3", "-c", "import time; time.sleep(10**9)"],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                              "limits": {"cpu": "200m", "memory": "128Mi"}},
                "securityContext": RESTRICTED}]}}


def container_id(pod: dict[str, Any]) -> str:
    """The pod's first container (the Ray container of a Ray pod); every container of a pod
    shares its network namespace, so any one sees the pod's sockets and sends as the pod."""
    return pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]


def run_probe(layout: NodeLayout, pod: dict[str, Any], *args: str) -> Any:
    result = node.crictl(layout, "exec", container_id(pod), "python3", "-c",
                         PROBE_SCRIPT.read_text(), *args, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"probe in {pod['metadata']['name']}: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def listening(layout: NodeLayout, pod: dict[str, Any]) -> set[int]:
    return set(run_probe(layout, pod, "listening"))


def connect(layout: NodeLayout, pod: dict[str, Any], targets: list[tuple[str, int]]
            ) -> dict[tuple[str, int], str]:
    answers = run_probe(layout, pod, "connect", json.dumps([list(t) for t in targets]))
    return {(address, port): state for address, port, state in answers}


def endpoint(pod: dict[str, Any], namespaces: dict[str, dict[str, str]]) -> netpol.Endpoint:
    """A live pod as the evaluator sees one: its labels, namespace (with the namespace's real
    labels), IP and declared container ports (for named ports)."""
    ports = tuple(netpol.Port(int(p["containerPort"]), p.get("name"), p.get("protocol", "TCP"))
                  for c in pod["spec"]["containers"] for p in c.get("ports") or [])
    namespace = pod["metadata"]["namespace"]
    return netpol.Endpoint(f"{namespace}/{pod['metadata']['name']}", namespace,
                           dict(pod["metadata"].get("labels") or {}), ports,
                           namespaces.get(namespace), pod["status"].get("podIP"))


def namespace_labels(kubectl: Kubectl) -> dict[str, dict[str, str]]:
    return {ns["metadata"]["name"]: dict(ns["metadata"].get("labels") or {})
            for ns in kubectl.get("namespaces")["items"]}


@dataclass(frozen=True)
class Cell:
    source: netpol.Endpoint
    destination: netpol.Endpoint
    port: int
    measured: str  # "open", "refused", "timeout", "refused (<reason>)"
    predicted: bool

    @property
    def open(self) -> bool:
        return self.measured == "open"


def explain(cell: Cell, policies: list[dict[str, Any]]) -> str:
    """A disagreement, with the policies that decide it: those isolating the destination for
    ingress and the source for egress."""
    def names(subject: netpol.Endpoint, kind: str) -> list[str]:
        return [p["metadata"]["name"] for p in policies
                if netpol.selects(p, subject) and kind in netpol.policy_types(p)]

    return (f"{cell.source.name} -> {cell.destination.name}:{cell.port}: measured "
            f"{cell.measured}, evaluator says {'allowed' if cell.predicted else 'denied'}; "
            f"ingress policies of the destination {names(cell.destination, 'Ingress')}, egress "
            f"policies of the source {names(cell.source, 'Egress')}")


def matrix(layout: NodeLayout, sources: Iterable[dict[str, Any]],
           destinations: list[dict[str, Any]], policies: list[dict[str, Any]],
           namespaces: dict[str, dict[str, str]]) -> list[Cell]:
    before = {d["metadata"]["uid"]: listening(layout, d) for d in destinations}
    measured = []
    for source in sources:
        targets = [(d["status"]["podIP"], port) for d in destinations
                   if d["metadata"]["uid"] != source["metadata"]["uid"]
                   for port in sorted(before[d["metadata"]["uid"]])]
        measured.append((source, connect(layout, source, targets)))
    after = {d["metadata"]["uid"]: listening(layout, d) for d in destinations}
    cells = []
    for source, answers in measured:
        src = endpoint(source, namespaces)
        for d in destinations:
            if d["metadata"]["uid"] == source["metadata"]["uid"]:
                continue
            dst = endpoint(d, namespaces)
            for port in sorted(before[d["metadata"]["uid"]] & after[d["metadata"]["uid"]]):
                cells.append(Cell(src, dst, port, answers[(d["status"]["podIP"], port)],
                                  netpol.allowed(policies, src, dst, port)))
    return cells


def summary(cells: list[Cell]) -> str:
    """Per source and destination pod: the open ports and how many were closed."""
    rows: dict[tuple[str, str], tuple[list[int], int]] = {}
    for cell in cells:
        opened, closed = rows.setdefault((cell.source.name, cell.destination.name), ([], 0))
        if cell.open:
            opened.append(cell.port)
        else:
            rows[(cell.source.name, cell.destination.name)] = (opened, closed + 1)
    return "\n".join(f"  {src} -> {dst}: open {opened or 'none'}, closed {closed}"
                     for (src, dst), (opened, closed) in sorted(rows.items()))
