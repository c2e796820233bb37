"""`kubectl drain` of the node a Serve worker runs on respects the chart's PodDisruptionBudgets,
with Locust traffic through the Serve Service throughout (issue #26's last scenario), on two real
nodes: the session's real-node-1 and real-node-2, which joins for this file only
(cluster/node/second_node.py) and is removed, with its Node object, at the end.

The release is test_chaos_serve.py's (scripts/chaos/release.py, the `ray` image) with two workers
and two changes: the worker budget is set per scenario, and the Serve port admits node 1's
address (networkPolicy.extraIngress): the load enters through a forward in node 1's namespace,
and kube-proxy sends it from node 1's IP to Serve pods on node 2, whose kube-router enforces the
chart's policies like node 1's does (node 1 admits its own address anyway, for the probes).

  drain-blocked   budget minAvailable 2 for 2 workers (like the default 1 for 1: no disruption
                  allowed), the head's budget 1 for 1: `kubectl drain real-node-1` limited to
                  the cluster's pods is refused for every one of them until its --timeout, the
                  pods stay, 0 failed requests.
  drain-workers   budget minAvailable 1: the drain evicts one worker, the second eviction is
                  refused until the first one's replacement (on real-node-2: node 1 is
                  cordoned) is Ready, then goes; never fewer than 1 Ready worker; failures
                  bounded like two worker deletions.

Why not 1 worker, then 2: KubeRay v1.6.2 does not pass a RayService's new worker `replicas` on
to its running RayCluster (its spec hash leaves replicas out, and an equal hash means no update:
rayservice_controller.go shouldUpdateCluster), so the release starts with two workers and only the
budget changes between the scenarios (a helm upgrade that renders the RayService unchanged).
"""
from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest

from chaos.release import ROUTE, objects, service_name, values
from chaos.scenarios import (DASHBOARD_EXPECTED, Row, active_and_pending, dashboard_statuses,
                             table)
from cluster.local.release import restricted_namespace
from cluster.node import netns, node, platform, second_node
from cluster.node.layout import NODE_IP, NODE_NAME, NodeLayout
from cluster.node.ray_status import container_id
from harness.render import make_offline_copy
from harness.tools import CHART_DIR, REPO
from own_release_helpers import own_release, wait_for
from test_chaos_serve import WORKER_BOUND, Chaos, answers, scenario, settled_pods

pytestmark = pytest.mark.node

NAMESPACE = "drain"
RELEASE = "drain"
SERVICE = service_name(RELEASE)
READY_TIMEOUT = 900
WORKERS = 2
# The blocked drain gives up after this; long enough for kubectl's 5 s retries to be refused
# several times.
BLOCKED_TIMEOUT_S = 20
# Two evictions, each like the worker deletion of test_chaos_serve.py.
DRAIN_BOUND = 2 * WORKER_BOUND
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget"
TABLE = REPO / "artifacts" / "chaos" / "drain-table.md"


def drain_values(min_available: int) -> dict[str, Any]:
    base = values()
    service = base["rayServices"]["chaos"]
    worker = service["cluster"]["workerGroups"]["cpu"]
    worker.update(replicas=WORKERS, minReplicas=WORKERS, maxReplicas=WORKERS)
    # One replica on every Ray node: KubeRay's readiness probe of a RayService worker asks the
    # node's Serve proxy, which Serve starts only where a replica runs. A replacement worker with
    # no replica would never be Ready, and the budget (which counts Ready pods) would then refuse
    # the next eviction for good. With one replica per node the evicted worker's replica can go
    # nowhere but to its replacement, which then becomes Ready.
    (deployment,) = service["applications"][0]["deployments"]
    deployment.update(num_replicas=1 + WORKERS, max_replicas_per_node=1)
    return {**base,
            "podDisruptionBudget": {"rayServiceWorkers": {"minAvailable": min_available}},
            "networkPolicy": {"extraIngress": [
                {"from": [{"ipBlock": {"cidr": f"{NODE_IP}/32"}}],
                 "ports": [{"protocol": "TCP", "port": 8000}]}]}}


@dataclass
class Drain:
    chaos: Chaos
    node2: NodeLayout
    outputs: dict[str, str] = field(default_factory=dict)

    def active(self) -> str:
        active, _ = active_and_pending(self.chaos.own.get("rayservice", SERVICE, "-n", NAMESPACE))
        return active

    def workers_selector(self) -> str:
        return f"ray.io/cluster={self.active()},ray.io/node-type=worker"

    def drain(self, selector: str,
              timeout_s: int) -> tuple[subprocess.CompletedProcess[str], float]:
        """kubectl drain of node 1, only the pods of `selector`; (result, seconds)."""
        started = time.monotonic()
        result = self.chaos.own.kubectl.run(
            "drain", NODE_NAME, "--ignore-daemonsets", "--delete-emptydir-data",
            f"--pod-selector={selector}", f"--timeout={timeout_s}s",
            check=False, timeout=timeout_s + 120)
        return result, time.monotonic() - started

    def uncordon(self) -> None:
        self.chaos.own.kubectl.run("uncordon", NODE_NAME, check=False)


@pytest.fixture(scope="module")
def drain(real_cluster, tmp_path_factory) -> Iterator[Drain]:
    """The release on node 1, Ready and serving; then node 2 joins. After: the release removed
    (its pods on node 2 stopped by node 2's kubelet), node 1 uncordoned, node 2 gone."""
    folder = tmp_path_factory.mktemp("drain")
    kubectl = real_cluster.kubectl
    kubectl.apply([restricted_namespace(NAMESPACE)])
    rows: list[Row] = []
    try:
        made = objects(NAMESPACE)
        kubectl.apply(made)
        token = next(o for o in made if o["kind"] == "Secret")["stringData"]["auth_token"]
        chart = make_offline_copy(CHART_DIR, folder / "chart")
        with own_release(real_cluster, chart, folder, NAMESPACE, RELEASE,
                         drain_values(WORKERS)) as own:
            platform.wait_rayservice(real_cluster, SERVICE, NAMESPACE, READY_TIMEOUT, print)
            address = platform.service_ip(kubectl, f"{SERVICE}-serve-svc", NAMESPACE)
            url = node.expose(real_cluster.node, "drain-serve", address, 8000)
            chaos = Chaos(own, own.release, url, token, folder / "load", rows)
            images = [real_cluster.images[name] for name in second_node.IMAGES]
            node2 = second_node.join(real_cluster.layout, kubectl, images, print)
            try:
                yield Drain(chaos, node2)
            finally:
                kubectl.run("uncordon", NODE_NAME, check=False)
    finally:
        kubectl.run("uncordon", NODE_NAME, check=False)
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        left = second_node.leave(real_cluster.layout, kubectl, print)
        gone = kubectl.run("get", "node", "real-node-2", check=False)
        stale = netns.link_name(NodeLayout(real_cluster.layout, second_node.NUMBER))
        node1_routes = netns.routes(real_cluster.node)
        if rows:
            TABLE.parent.mkdir(parents=True, exist_ok=True)
            TABLE.write_text(table(rows) + "\n")
            print(f"\n{table(rows)}\n(written to {TABLE.relative_to(REPO)})", flush=True)
        assert left.empty(), f"real-node-2 left {left}"
        assert gone.returncode != 0, "the Node object real-node-2 is still there"
        # Node 1 as the other tests expect it: no link, no route to node 2 left.
        assert stale not in node1_routes, node1_routes


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def refused_pods(output: str) -> set[str]:
    """The pods kubectl drain reports an eviction of as refused by a budget (HTTP 429)."""
    return set(re.findall(r'evicting pods/"([^"]+)"[^\n]*' + re.escape(REFUSED), output))


def test_the_second_node_joined_with_no_route_out(drain: Drain) -> None:
    node2 = drain.node2
    assert node2.name == "real-node-2" and node2.netns != drain.chaos.own.cluster.node.netns
    state = drain.chaos.own.get("node", node2.name)
    assert any(c["type"] == "Ready" and c["status"] == "True"
               for c in state["status"]["conditions"]), state["status"]["conditions"]
    assert {a["address"] for a in state["status"]["addresses"]
            if a["type"] == "InternalIP"} == {node2.ip}
    routes = netns.routes(node2)
    assert "default" not in routes, routes
    link = netns.link_name(drain.chaos.own.cluster.node)
    for line in routes.splitlines():
        if line.startswith(("local ", "broadcast ", "multicast ", "anycast ", "fe80", "ff00")):
            continue
        # Its own devices, and the link to node 1, which carries node 1's IP and pod subnet only.
        assert " dev lo" in line or " dev cni0" in line or f" dev {link}" in line, line
        if f" dev {link}" in line:
            assert line.split()[0] in (f"{NODE_IP}", "10.244.0.0/24"), line
    # The release's pods all started on node 1, before node 2 joined.
    pods = drain.chaos.own.items("pods", f"ray.io/cluster={drain.active()}")
    assert {p["spec"]["nodeName"] for p in pods} == {NODE_NAME}, pods


def test_drain_is_refused_while_the_budgets_allow_no_eviction(drain: Drain) -> None:
    own = drain.chaos.own
    cluster = f"ray.io/cluster={drain.active()}"
    before = settled_pods(own, cluster)
    assert len([p for p in before if p["metadata"]["labels"]["ray.io/node-type"] == "worker"]) \
        == WORKERS

    def action() -> tuple[float, str]:
        try:
            result, seconds = drain.drain(cluster, BLOCKED_TIMEOUT_S)
        finally:
            drain.uncordon()
        drain.outputs["blocked"] = result.stdout + result.stderr
        assert result.returncode != 0, drain.outputs["blocked"]
        return seconds, f"kubectl drain --timeout={BLOCKED_TIMEOUT_S}s failed, nothing evicted"

    scenario(drain.chaos, "drain-blocked", 0, action)
    output = drain.outputs["blocked"]
    assert refused_pods(output) == {p["metadata"]["name"] for p in before}, output
    after = settled_pods(own, cluster)
    assert {p["metadata"]["uid"] for p in after} == {p["metadata"]["uid"] for p in before}
    assert {p["spec"]["nodeName"] for p in after} == {NODE_NAME}


@dataclass
class Watch:
    """The workers of a selector, sampled every second: (time, [(name, node, available)]),
    available as the budget counts it: Ready and not being deleted."""
    own: Any
    selector: str
    samples: list[tuple[float, list[tuple[str, str, bool]]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                pods = self.own.items("pods", self.selector)
            except RuntimeError:
                pods = None
            if pods is not None:
                self.samples.append((time.time(), [
                    (p["metadata"]["name"], p["spec"].get("nodeName") or "",
                     ready(p) and not p["metadata"].get("deletionTimestamp")) for p in pods]))
            self.stop.wait(1)

    def first_ready_on(self, name: str, node_name: str) -> float:
        return next((t for t, pods in self.samples for pod in pods
                     if pod[0] == name and pod[2] and pod[1] == node_name), float("inf"))

    def first_lost(self, name: str) -> float:
        """When the pod was first seen unavailable or gone."""
        return next((t for t, pods in self.samples
                     if not any(pod[0] == name and pod[2] for pod in pods)), float("inf"))


def test_drain_evicts_one_worker_at_a_time_onto_the_other_node(drain: Drain) -> None:
    chaos, own = drain.chaos, drain.chaos.own
    selector = drain.workers_selector()
    originals = {p["metadata"]["name"] for p in settled_pods(own, selector)}
    chaos.upgrade("budget-1.yaml", {"podDisruptionBudget": {"rayServiceWorkers":
                                                            {"minAvailable": 1}}})
    budget = f"{SERVICE}-worker-cpu"
    wait_for(f"PodDisruptionBudget {budget} allows one disruption", lambda: (
        (own.get("pdb", budget, "-n", NAMESPACE).get("status") or {})
        .get("disruptionsAllowed") == 1), 120, 1)
    watch = Watch(own, selector)
    thread = threading.Thread(target=watch.run, daemon=True)

    def moved() -> list[dict[str, Any]] | None:
        pods = own.items("pods", selector)
        return pods if (len(pods) == WORKERS and all(ready(p) for p in pods)
                        and {p["spec"].get("nodeName") for p in pods} == {"real-node-2"}) else None

    def action() -> tuple[float, str]:
        started = time.time()
        thread.start()
        try:
            result, seconds = drain.drain(selector, 600)
            drain.outputs["workers"] = result.stdout + result.stderr
            assert result.returncode == 0, drain.outputs["workers"]
            wait_for("both workers Ready on real-node-2", moved, 600, 1)
        finally:
            drain.uncordon()
            watch.stop.set()
            thread.join()
        lost = sorted(watch.first_lost(name) for name in originals)
        refusals = drain.outputs["workers"].count(REFUSED)
        return time.time() - started, (
            f"drain {seconds:.0f} s; the 2nd eviction refused {refusals}x, done "
            f"{lost[1] - lost[0]:.0f} s after the 1st, once its replacement was Ready on node 2")

    scenario(chaos, "drain-workers", DRAIN_BOUND, action)
    output = drain.outputs["workers"]
    # The second eviction was refused (429) at least once: it came while the first worker's
    # replacement was not Ready yet.
    assert refused_pods(output) & originals, output
    assert len(re.findall(r"evicted", output)) >= WORKERS, output
    # Never fewer available workers than the budget's minAvailable, in any sample.
    assert watch.samples, "no samples"
    fewest = min(sum(1 for pod in pods if pod[2]) for _, pods in watch.samples)
    assert fewest >= 1, watch.samples
    # The later of the two evictions came only after a replacement on node 2 was Ready.
    gone = sorted(watch.first_lost(name) for name in originals)
    replacements = {pod[0] for _, pods in watch.samples for pod in pods} - originals
    first_ready = min(watch.first_ready_on(name, "real-node-2") for name in replacements)
    assert gone[0] < first_ready <= gone[1] < float("inf"), (gone, first_ready, watch.samples)
    assert answers(chaos.url), "the app answers after the drain"
    # The token still guards the dashboard (issue #26's check after every scenario).
    head = settled_pods(own, f"ray.io/cluster={drain.active()},ray.io/node-type=head")[0]
    url = node.expose(own.cluster.node, "drain-dashboard", head["status"]["podIP"], 8265)
    assert dashboard_statuses(url, chaos.token) == DASHBOARD_EXPECTED


def test_pods_on_the_second_node_resolve_and_reach_services(drain: Drain) -> None:
    """From a worker on node 2: the Serve Service's name resolves through CoreDNS on node 1, and
    the app answers through it (kube-proxy of node 2, a replica anywhere)."""
    (worker, *_) = [p for p in drain.chaos.own.items("pods", drain.workers_selector())
                    if p["spec"]["nodeName"] == "real-node-2"]
    name = f"{SERVICE}-serve-svc.{NAMESPACE}.svc.cluster.local"
    script = (f"import socket, urllib.request; ip = socket.gethostbyname('{name}'); "
              f"print(ip, urllib.request.urlopen('http://{name}:8000{ROUTE}', timeout=10)"
              f".read().decode())")
    container = worker["spec"]["containers"][0]["name"]
    answer = node.crictl(drain.node2, "exec", container_id(worker, container),
                         "python", "-c", script, timeout=60)
    assert answer.returncode == 0, answer.stderr
    address = platform.service_ip(drain.chaos.own.kubectl, f"{SERVICE}-serve-svc", NAMESPACE)
    assert answer.stdout.startswith(address + " "), answer.stdout
