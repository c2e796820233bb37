"""Under load and faults, nothing lost: one of the chart's own RayServices (`rayServices.chaos`,
scripts/chaos/app/chaos_app.py, the `ray` image) on the real node, with Locust sending 2 users x
2 requests/s through its Serve Service (forwarded to 127.0.0.1) throughout each scenario:

  user-config     helm upgrade of the deployment's user_config only: reconfigured in place
  deploy-failed   helm upgrade to an import path that cannot deploy, then back: the old app
                  answers throughout, the operator's status names the failure
  worker-deleted  the worker pod deleted: its replica moves, failures within WORKER_BOUND
  cluster-spec    helm upgrade of the worker's memory: a new cluster, the Service switched, the
                  old one deleted; the seconds both coexisted
  operator-restart  the same kind of upgrade with the operator's pod deleted once the new cluster
                  is pending: it completes after the operator restarts
  head-deleted    the head pod deleted, GCS fault tolerance off (the chart's default): an outage
                  until the operator's new head runs the app again, bounded by HEAD_OUTAGE_BOUND;
                  the comparison for the fault-tolerant head-deleted-ft below
  gcs-ft-on       helm upgrade turning GCS fault tolerance on, with a Redis of the test's
                  (scripts/chaos/redis.py, the `redis` image built here, password from
                  gcsFaultTolerance.existingSecret, the head's egress to it by networkPolicy.redis
                  only): a new cluster whose GCS keeps its state in Redis; a detached actor created
  gcs-killed      gcs_server SIGKILLed in the head's container: the container restarts, the GCS
                  recovers from Redis; failures within GCS_KILLED_BOUND, the actor keeps its state
  head-deleted-ft the head pod deleted with fault tolerance on: the operator's new head recovers
                  from Redis, the worker and its replica stay; failures within HEAD_FT_BOUND, the
                  actor keeps its state
  (no traffic)    the RayService deleted: KubeRay's Redis cleanup Job removes the cluster's keys

Zero-failure scenarios assert 0 failed requests; each failure is named by its time and status.
After every scenario the active head's dashboard refuses no token (401) and a wrong one (403) and
takes the token of the test's Secret (auth.existingSecret), which every cluster, replacements
included, references. The scenarios run in file order on one release; `make chaos` runs this file
and prints the table the module collects (also written to artifacts/chaos/table.md)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from chaos import gcs, redis
from chaos.load import Load
from chaos.release import (ROUTE, TOKEN_SECRET, application, objects, service_name,
                           values)
from chaos.scenarios import (DASHBOARD_EXPECTED, Row, active_and_pending, dashboard_statuses,
                             table, watch_replacement)
from cluster.local import operator
from cluster.local.release import Release, restricted_namespace
from cluster.node import node, operator_pod, platform
from harness.readiness import FAILED, READY, rayservice_verdict
from harness.render import make_offline_copy
from harness.tools import CHART_DIR, REPO
from own_release_helpers import OwnRelease, own_release, wait_for

pytestmark = pytest.mark.node

NAMESPACE = "chaos"
RELEASE = "chaos"
SERVICE = service_name(RELEASE)
READY_TIMEOUT = 900
USERS, RATE = 2, 2.0  # 4 requests/s: enough to see a second without answers, light for 2 cores
LEAD = TAIL = 5  # seconds of steady traffic before the action and after the steady state
# A deleted worker takes its Serve proxy and one of the two replicas with it: requests already
# on that pod's connections or routed to that replica fail until the proxies and the Serve
# controller notice. At most this many of them (about 5 s of traffic at 4 requests/s).
WORKER_BOUND = 20
# Without GCS fault tolerance the new head starts an empty GCS: the Serve controller, the
# proxies' routes and the replicas are gone until the operator finds the application missing and
# deploys the Serve config again, and the workers' raylets, having lost their GCS, exit and
# restart. Every request in that outage fails: the bound is on the outage, and so on the failures
# (at most every request sent in it).
HEAD_OUTAGE_BOUND = 240
HEAD_FAILURE_BOUND = int(HEAD_OUTAGE_BOUND * USERS * RATE)
# GCS fault tolerance on: the worker, its Serve proxy and its replica live through the head's
# faults (its raylet waits up to 600 s for the GCS: KubeRay sets that on workers when fault
# tolerance is on); what fails is what was on the head's proxy and replica when it went.
GCS_KILLED_BOUND = 20
HEAD_FT_BOUND = 20
TABLE = REPO / "artifacts" / "chaos" / "table.md"


@dataclass
class Chaos:
    own: OwnRelease
    original: Release
    url: str  # the Serve Service on 127.0.0.1
    token: str
    workdir: Path
    rows: list[Row] = field(default_factory=list)
    # The detached actor's first answer (gcs-ft-on creates it; the fault scenarios call it).
    keeper: dict[str, Any] | None = None

    def service(self) -> dict[str, Any]:
        return self.own.get("rayservice", SERVICE, "-n", NAMESPACE)

    def active(self) -> str:
        active, _ = active_and_pending(self.service())
        return active

    def upgrade(self, name: str, overlay: dict[str, Any]) -> None:
        """helm upgrade to the original values plus `overlay` (not on top of earlier ones)."""
        self.own.release = self.original
        self.own.upgrade(name, overlay)


@pytest.fixture(scope="module")
def chaos(real_cluster, tmp_path_factory) -> Iterator[Chaos]:
    folder = tmp_path_factory.mktemp("chaos")
    kubectl = real_cluster.kubectl
    kubectl.apply([restricted_namespace(NAMESPACE)])
    state: Chaos | None = None
    try:
        made = objects(NAMESPACE)
        kubectl.apply(made)
        token = next(o for o in made if o["kind"] == "Secret")["stringData"]["auth_token"]
        chart = make_offline_copy(CHART_DIR, folder / "chart")
        with own_release(real_cluster, chart, folder, NAMESPACE, RELEASE, values()) as own:
            platform.wait_rayservice(real_cluster, SERVICE, NAMESPACE, READY_TIMEOUT, print)
            address = platform.service_ip(kubectl, f"{SERVICE}-serve-svc", NAMESPACE)
            url = node.expose(real_cluster.node, "chaos-serve", address, 8000)
            state = Chaos(own, own.release, url, token, folder / "load")
            yield state
    finally:
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        if state and state.rows:
            TABLE.parent.mkdir(parents=True, exist_ok=True)
            TABLE.write_text(table(state.rows) + "\n")
            print(f"\n{table(state.rows)}\n(written to {TABLE.relative_to(REPO)})", flush=True)


def scenario(chaos: Chaos, name: str, bound: int, action: Callable[[], tuple[float, str]]) -> Row:
    """Traffic from LEAD s before `action` until TAIL s after it returns (seconds to recover,
    a note); the row goes to the table, then the failures are checked against `bound`."""
    with Load(chaos.url, ROUTE, chaos.workdir, users=USERS, rate=RATE, name=name) as load:
        time.sleep(LEAD)
        recovery, note = action()
        time.sleep(TAIL)
    assert load.result is not None
    row = Row(name, load.result, recovery, bound, note)
    chaos.rows.append(row)
    print(f"{name}: {load.result.summary()}; recovery {recovery:.0f} s {note}", flush=True)
    failed = load.result.failures
    assert len(failed) <= bound, (f"{name}: {len(failed)} failed requests (bound {bound}); "
                                  f"{load.result.summary()}\n{load.result.failure_lines()}")
    return row


def settled_pods(own: OwnRelease, selector: str) -> list[dict[str, Any]]:
    """The pods of `selector` once every container of them started and is ready."""
    return wait_for(f"pods {selector} ready", lambda: (
        pods if platform.containers_ready(pods := own.items("pods", selector)) else None), 600, 2)


def started_container(pod: dict[str, Any]) -> bool:
    statuses = pod["status"].get("containerStatuses") or []
    return bool(statuses) and all(s.get("containerID") and "running" in (s.get("state") or {})
                                  for s in statuses)


def delete_and_replace(chaos: Chaos, pod: dict[str, Any], selector: str, what: str) -> None:
    """kubectl delete the pod (graceful, as a user or an eviction would), then wait until the
    operator's replacement of `selector` has its containers running."""
    chaos.own.kubectl.run("delete", "pod", pod["metadata"]["name"], "-n", NAMESPACE,
                          "--wait=false")
    wait_for(f"a replacement {what} started", lambda: [
        p for p in chaos.own.items("pods", selector)
        if p["metadata"]["uid"] != pod["metadata"]["uid"] and started_container(p)], 300, 1)


def answers(url: str, count: int = 8) -> list[dict[str, str]]:
    """`count` answers of the app, each on a new connection (so through either Serve proxy)."""
    found = []
    for _ in range(count):
        answer = requests.get(f"{url}{ROUTE}", timeout=10)
        answer.raise_for_status()
        found.append(answer.json())
    return found


def all_answer(url: str, version: str) -> bool:
    try:
        return all(a["version"] == version for a in answers(url))
    except requests.RequestException:
        return False


def check_auth(chaos: Chaos, scenario_name: str) -> None:
    """The active head references the test's token Secret, and its dashboard answers 401, 403
    and, with that Secret's token, 200."""
    head = settled_pods(chaos.own, f"ray.io/cluster={chaos.active()},ray.io/node-type=head")[0]
    env = {e["name"]: e for e in head["spec"]["containers"][0]["env"]}
    secret = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
    assert secret == TOKEN_SECRET, f"{scenario_name}: the head's token from Secret {secret}"
    url = node.expose(chaos.own.cluster.node, "chaos-dashboard", head["status"]["podIP"], 8265)
    statuses = dashboard_statuses(url, chaos.token)
    assert statuses == DASHBOARD_EXPECTED, f"{scenario_name}: dashboard answered {statuses}"


def test_user_config_upgrade_in_place_without_a_failed_request(chaos: Chaos) -> None:
    active = chaos.active()
    selector = f"ray.io/cluster={active}"
    pods = {p["metadata"]["uid"] for p in settled_pods(chaos.own, selector)}

    def action() -> tuple[float, str]:
        started = time.time()
        chaos.upgrade("user-config.yaml", values(version="v2"))
        wait_for("every answer from version v2", lambda: all_answer(chaos.url, "v2"), 300, 1)
        return time.time() - started, "until every answer is v2"

    scenario(chaos, "user-config", 0, action)
    assert active_and_pending(chaos.service()) == (active, ""), "not applied in place"
    assert {p["metadata"]["uid"] for p in settled_pods(chaos.own, selector)} == pods
    check_auth(chaos, "user-config")


def test_a_serve_config_that_cannot_deploy_leaves_the_old_app_answering(chaos: Chaos) -> None:
    active = chaos.active()
    broken = values(version="v2")
    broken["rayServices"]["chaos"]["applications"] = [
        application("v2", import_path="chaos_app:no_such_app")]
    verdicts: list[str] = []

    def action() -> tuple[float, str]:
        chaos.upgrade("broken.yaml", broken)
        obj = wait_for("the failure in the RayService's status", lambda: (
            o if rayservice_verdict(o := chaos.service()).state == FAILED else None), 300, 2)
        verdicts.append(rayservice_verdict(obj).detail)
        started = time.time()
        chaos.upgrade("fixed.yaml", values(version="v3"))
        wait_for("every answer from version v3", lambda: all_answer(chaos.url, "v3"), 300, 1)
        return time.time() - started, "from the fixing upgrade until every answer is v3"

    scenario(chaos, "deploy-failed", 0, action)
    (detail,) = verdicts
    assert "DEPLOY_FAILED" in detail and "no_such_app" in detail, detail
    assert active_and_pending(chaos.service()) == (active, "")
    check_auth(chaos, "deploy-failed")


def test_a_deleted_worker_costs_a_bounded_number_of_requests(chaos: Chaos) -> None:
    active = chaos.active()
    selector = f"ray.io/cluster={active},ray.io/node-type=worker"
    (worker,) = settled_pods(chaos.own, selector)

    def action() -> tuple[float, str]:
        started = time.time()
        # Started, not Ready: KubeRay's readiness probe of a RayService worker asks its Serve
        # proxy, and Serve runs proxies only where replicas are; both replicas now sit on the
        # head, so the new worker stays out of the Serve Service until a replica lands there.
        delete_and_replace(chaos, worker, selector, "worker")
        wait_for("the RayService Ready with its app RUNNING",
                 lambda: rayservice_verdict(chaos.service()).state == READY, 300, 1)
        return time.time() - started, "until a new worker runs and the app is RUNNING"

    scenario(chaos, "worker-deleted", WORKER_BOUND, action)
    assert chaos.active() == active
    check_auth(chaos, "worker-deleted")


def test_a_cluster_spec_upgrade_switches_clusters_without_a_failed_request(chaos: Chaos) -> None:
    old = chaos.active()
    seen: list[Any] = []

    def action() -> tuple[float, str]:
        started = time.time()
        chaos.upgrade("cluster-spec.yaml", values(version="v3", worker_memory="1600Mi"))
        replaced = watch_replacement(chaos.own.get, NAMESPACE, SERVICE, old, READY_TIMEOUT)
        seen.append(replaced)
        return (replaced.old_gone - started,
                f"new cluster, switched after {replaced.switched - started:.0f} s; both "
                f"clusters coexisted {replaced.coexisted:.0f} s")

    scenario(chaos, "cluster-spec", 0, action)
    (replaced,) = seen
    assert replaced.new != old and chaos.active() == replaced.new
    assert all_answer(chaos.url, "v3")
    check_auth(chaos, "cluster-spec")


def test_an_upgrade_completes_after_the_operator_restarts_mid_way(chaos: Chaos) -> None:
    old = chaos.active()
    kubectl = chaos.own.kubectl
    selector = "app.kubernetes.io/component=kuberay-operator"
    (before,) = kubectl.get("pods", "-n", operator.NAMESPACE, "-l", selector)["items"]
    struck: list[float] = []

    def strike(pending: str) -> None:
        struck.append(time.time())
        kubectl.run("delete", "pod", before["metadata"]["name"], "-n", operator.NAMESPACE,
                    "--wait=false")

    def action() -> tuple[float, str]:
        started = time.time()
        chaos.upgrade("operator.yaml", values(version="v3", worker_memory="1664Mi"))
        replaced = watch_replacement(chaos.own.get, NAMESPACE, SERVICE, old, READY_TIMEOUT,
                                     on_pending=strike)
        return (replaced.old_gone - started,
                f"operator pod deleted {struck[0] - started:.0f} s in, with the new cluster "
                f"pending; both clusters coexisted {replaced.coexisted:.0f} s")

    scenario(chaos, "operator-restart", 0, action)
    assert struck, "the new cluster was never seen pending: the operator was not deleted"
    after = operator_pod.wait_ready(kubectl)
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert chaos.active() != old and all_answer(chaos.url, "v3")
    check_auth(chaos, "operator-restart")


def replicas(url: str) -> set[tuple[str, str]]:
    """The (pod, pid) of the replicas that answer, from 16 answers; empty while none does."""
    try:
        return {(a["pod"], a["pid"]) for a in answers(url, 16)}
    except requests.RequestException:
        return set()


def restarts(pod: dict[str, Any]) -> int:
    return sum(container_restarts(pod).values())


def test_a_deleted_head_without_gcs_fault_tolerance_is_a_bounded_outage(chaos: Chaos) -> None:
    active = chaos.active()
    heads = f"ray.io/cluster={active},ray.io/node-type=head"
    workers = f"ray.io/cluster={active},ray.io/node-type=worker"
    (head,) = chaos.own.items("pods", heads)
    (worker,) = chaos.own.items("pods", workers)
    before = replicas(chaos.url)
    assert before, "the app does not answer before the head is deleted"

    def worker_back() -> bool:
        """The worker's raylet loses its GCS with the head and exits; back means its container
        restarted (or the pod was replaced) and runs again."""
        return any(started_container(p) and (p["metadata"]["uid"] != worker["metadata"]["uid"]
                                             or restarts(p) > restarts(worker))
                   for p in chaos.own.items("pods", workers))

    def action() -> tuple[float, str]:
        started = time.time()
        delete_and_replace(chaos, head, heads, "head")
        head_back = time.time() - started
        # The new head's GCS knows nothing of the old Serve application: it is back once every
        # answer comes from a replica the operator's redeployment started.
        wait_for("answers only from new replicas", lambda: (
            (now := replicas(chaos.url)) and not now & before), HEAD_OUTAGE_BOUND + 60, 1)
        redeployed = time.time() - started
        wait_for("the worker back", worker_back, HEAD_OUTAGE_BOUND + 60, 1)
        rejoined = time.time() - started
        wait_for("the RayService Ready with its app RUNNING",
                 lambda: rayservice_verdict(chaos.service()).state == READY, 300, 1)
        return (time.time() - started,
                f"GCS FT off: new head running after {head_back:.0f} s, app redeployed after "
                f"{redeployed:.0f} s, worker back after {rejoined:.0f} s")

    row = scenario(chaos, "head-deleted", HEAD_FAILURE_BOUND, action)
    assert row.result.longest_gap <= HEAD_OUTAGE_BOUND, (
        f"head-deleted: {row.result.summary()}\n{row.result.failure_lines()}")
    assert chaos.active() == active, "the operator replaced the cluster instead of its head"
    check_auth(chaos, "head-deleted")


# --- GCS fault tolerance on, with a Redis of the test's -------------------------------------


def head_of(chaos: Chaos) -> dict[str, Any]:
    return chaos.own.head_pod(chaos.active())


def container_restarts(pod: dict[str, Any]) -> dict[str, int]:
    """restartCount by container: the Ray container's apart from the autoscaler's."""
    return {s["name"]: s.get("restartCount", 0)
            for s in pod["status"].get("containerStatuses") or []}


def keeper_after(chaos: Chaos, name: str, calls: int) -> dict[str, Any]:
    """The detached actor, called once more from the (current) head: the same process on the
    same node with its total, so the actor neither died nor restarted."""
    assert chaos.keeper, f"{name}: no detached actor (gcs-ft-on did not run or failed)"
    answer = gcs.keeper(chaos.own.kubectl, head_of(chaos), "add")
    assert answer == {**chaos.keeper, "total": calls}, (
        f"{name}: the actor answered {answer}, before the fault {chaos.keeper}")
    return answer


def outside(chaos: Chaos) -> redis.Outside:
    """The Kubernetes API's address and port behind the `kubernetes` Service, and the DNS
    server of the head's resolv.conf."""
    (endpoints,) = chaos.own.get("endpointslices", "-n", "default", "-l",
                                 "kubernetes.io/service-name=kubernetes")["items"]
    head = head_of(chaos)
    resolv = gcs.in_pod(chaos.own.kubectl, head, gcs.ray_container(head), "cat",
                        "/etc/resolv.conf")
    (dns,) = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    return redis.Outside(endpoints["endpoints"][0]["addresses"][0],
                         int(endpoints["ports"][0]["port"]), dns)


@pytest.fixture(scope="module")
def store(chaos: Chaos) -> Iterator[dict[str, Any]]:
    """The test's Redis pod (scripts/chaos/redis.py), kept until the fault-tolerant cluster is
    gone: KubeRay deletes such a RayCluster only after its Redis cleanup Job ran against this
    Redis, and a namespace deletion that takes Redis with it (or forbids the Job, as a
    terminating namespace does) leaves the RayCluster waiting on its finalizer."""
    kubectl = chaos.own.kubectl
    made = redis.objects(NAMESPACE, chaos.own.cluster.images["redis"].reference)
    kubectl.apply(made)
    try:
        (pod,) = settled_pods(chaos.own, redis.SELECTOR)
        yield pod
    finally:
        started = time.time()
        kubectl.run("delete", "rayservice", SERVICE, "-n", NAMESPACE, "--wait=false",
                    check=False)
        try:
            wait_for("the RayService's clusters deleted, Redis cleanup Job included",
                     lambda: not chaos.own.items("rayclusters"), 300, 2)
            print(f"RayService deleted: its clusters gone after {time.time() - started:.0f} s",
                  flush=True)
        finally:
            for obj in made:
                kubectl.run("delete", obj["kind"].lower(), obj["metadata"]["name"], "-n",
                            NAMESPACE, "--wait=false", check=False)


def test_gcs_fault_tolerance_turned_on_by_an_upgrade_with_no_failed_request(
        chaos: Chaos, store: dict[str, Any]) -> None:
    kubectl = chaos.own.kubectl
    addresses = outside(chaos)
    old = chaos.active()
    seen: list[Any] = []

    def action() -> tuple[float, str]:
        started = time.time()
        # Only fault tolerance changes (the worker memory and version of the last upgrade).
        chaos.upgrade("gcs-ft.yaml", values(version="v3", worker_memory="1664Mi",
                                            fault_tolerant=addresses))
        replaced = watch_replacement(chaos.own.get, NAMESPACE, SERVICE, old, READY_TIMEOUT)
        seen.append(replaced)
        return (replaced.old_gone - started,
                f"new cluster with GCS FT, switched after {replaced.switched - started:.0f} s")

    scenario(chaos, "gcs-ft-on", 0, action)
    (replaced,) = seen
    assert replaced.new != old and chaos.active() == replaced.new
    cluster = chaos.own.get("raycluster", replaced.new, "-n", NAMESPACE)
    options = cluster["spec"]["gcsFaultToleranceOptions"]
    assert options["redisAddress"] == redis.address()
    assert options["redisPassword"]["valueFrom"]["secretKeyRef"] == {
        "name": redis.PASSWORD_SECRET, "key": redis.PASSWORD_KEY}
    head = head_of(chaos)
    assert head["metadata"]["annotations"].get("ray.io/ft-enabled") == "true"
    # The GCS writes its tables into Redis under the cluster's storage namespace (its UID):
    # through the head's egress policy to Redis' pods, the only way out it has now.
    keys = gcs.redis_keys(kubectl, store)
    assert any(cluster["metadata"]["uid"] in key for key in keys), keys[:20]
    chaos.keeper = gcs.keeper(kubectl, head, "create")
    assert chaos.keeper["total"] == 1, chaos.keeper
    assert all_answer(chaos.url, "v3")
    check_auth(chaos, "gcs-ft-on")


def test_a_killed_gcs_server_restarts_the_head_container_and_keeps_the_actor(
        chaos: Chaos) -> None:
    active = chaos.active()
    head = head_of(chaos)
    ray_head = gcs.ray_container(head)
    before = container_restarts(head)
    seen: list[dict[str, Any]] = []

    def restarted() -> dict[str, Any] | None:
        pod = head_of(chaos)
        return pod if (container_restarts(pod)[ray_head] > before[ray_head]
                       and platform.containers_ready([pod])) else None

    def action() -> tuple[float, str]:
        started = time.time()
        gcs.kill_gcs_server(chaos.own.kubectl, head)
        seen.append(wait_for("the head's container restarted and ready", restarted, 300, 1))
        back = time.time() - started
        wait_for("both replicas answering v3", lambda: len(replicas(chaos.url)) == 2, 300, 1)
        wait_for("the RayService Ready with its app RUNNING",
                 lambda: rayservice_verdict(chaos.service()).state == READY, 300, 1)
        counts = container_restarts(seen[0])
        return (time.time() - started,
                f"GCS FT on: same head pod, restartCount " + ", ".join(
                    f"{name} {before.get(name, 0)} -> {count}" for name, count in counts.items())
                + f"; ready after {back:.0f} s")

    scenario(chaos, "gcs-killed", GCS_KILLED_BOUND, action)
    (after,) = seen
    # The container, not the pod: the same pod (UID), its restart counted by the kubelet.
    assert after["metadata"]["uid"] == head["metadata"]["uid"]
    counts = container_restarts(after)
    assert counts[ray_head] == before[ray_head] + 1, f"restartCount {before} -> {counts}"
    assert chaos.active() == active, "the operator replaced the cluster instead of restarting"
    keeper_after(chaos, "gcs-killed", 2)
    check_auth(chaos, "gcs-killed")


def test_a_deleted_head_with_gcs_fault_tolerance_keeps_the_worker_and_the_actor(
        chaos: Chaos) -> None:
    active = chaos.active()
    heads = f"ray.io/cluster={active},ray.io/node-type=head"
    workers = f"ray.io/cluster={active},ray.io/node-type=worker"
    (head,) = chaos.own.items("pods", heads)
    (worker,) = chaos.own.items("pods", workers)

    def action() -> tuple[float, str]:
        started = time.time()
        delete_and_replace(chaos, head, heads, "head")
        head_back = time.time() - started
        wait_for("both replicas answering", lambda: len(replicas(chaos.url)) == 2, 300, 1)
        wait_for("the RayService Ready with its app RUNNING",
                 lambda: rayservice_verdict(chaos.service()).state == READY, 300, 1)
        return (time.time() - started,
                f"GCS FT on: new head running after {head_back:.0f} s; the worker kept")

    scenario(chaos, "head-deleted-ft", HEAD_FT_BOUND, action)
    assert chaos.active() == active, "the operator replaced the cluster instead of its head"
    (new_head,) = chaos.own.items("pods", heads)
    assert new_head["metadata"]["uid"] != head["metadata"]["uid"], "the head was not replaced"
    # The worker's raylet reconnected to the new head's GCS: same pod, no container restart.
    (after,) = chaos.own.items("pods", workers)
    assert (after["metadata"]["uid"], restarts(after)) == (worker["metadata"]["uid"],
                                                           restarts(worker))
    keeper_after(chaos, "head-deleted-ft", 3)
    check_auth(chaos, "head-deleted-ft")


def test_a_deleted_fault_tolerant_service_leaves_nothing_in_redis(
        chaos: Chaos, store: dict[str, Any]) -> None:
    """Last: KubeRay's Redis cleanup Job, built from the head's pod and so under the chart's
    head egress policy, must reach Redis and delete the cluster's keys before the operator lets
    the RayCluster go (a failed Job lets it go too, keys left behind: the keys tell which)."""
    uid = chaos.own.get("raycluster", chaos.active(), "-n", NAMESPACE)["metadata"]["uid"]
    assert any(uid in key for key in gcs.redis_keys(chaos.own.kubectl, store))
    started = time.time()
    chaos.own.kubectl.run("delete", "rayservice", SERVICE, "-n", NAMESPACE, "--wait=false")
    wait_for("the RayService's clusters deleted", lambda: not chaos.own.items("rayclusters"),
             300, 2)
    left = [key for key in gcs.redis_keys(chaos.own.kubectl, store) if uid in key]
    print(f"RayService deleted: its clusters gone after {time.time() - started:.0f} s, "
          f"{len(left)} of its keys left in Redis", flush=True)
    assert not left, left[:20]
