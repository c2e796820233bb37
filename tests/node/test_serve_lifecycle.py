"""The Stable Diffusion RayService's life on real pods, through its Services: the app's own 400,
the head's dashboard enforcing the cluster's token, `helm upgrade` of a user_config applied in
place, an upgrade that cannot deploy reported while the old app keeps answering, the upgrade back,
and uninstall (in a namespace of its own). The tests run in file order on the session release and
leave its original values installed (the fixture restores them even when a test fails)."""
from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml

from cluster.local.release import Release, objects_of_kind, uninstall, upgrade
from cluster.local.up import imagine, serve_route_prefix
from cluster.node import node, platform
from cluster.node.platform import upgrade_flags
from harness.readiness import FAILED, rayservice_verdict
from harness.tools import VALUES_DIR
from own_release_helpers import wait_for
from tests_node_helpers import service_endpoints, settled_pods

pytestmark = pytest.mark.node

MAJOR = 4
DASHBOARD_PORT = 8265
SERVE_PORT = 8000
READY_TIMEOUT = 1200


@dataclass
class Serve:
    name: str  # the RayService
    url: str  # the Serve Service, forwarded to the host
    prefix: str
    original: Release


def rayservice(real_release, serve: Serve) -> dict[str, Any]:
    return real_release.get("rayservice", serve.name, "-n", real_release.namespace)


def clusters(status: dict[str, Any]) -> tuple[str, str]:
    """(active, pending) RayCluster names from a RayService's status; "" for none."""
    return tuple((status.get(key) or {}).get("rayClusterName") or ""
                 for key in ("activeServiceStatus", "pendingServiceStatus"))


def info(serve: Serve) -> dict[str, Any]:
    answer = requests.get(f"{serve.url}{serve.prefix}/info", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def values_file(folder: Path, name: str, values: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(values))
    return path


def upgraded(real_release, release: Release) -> None:
    result = upgrade(release, real_release.cluster.layout.kubeconfig, MAJOR, upgrade_flags(MAJOR))
    assert result.returncode == 0, result.stderr


def wait_ready(real_release, serve: Serve) -> None:
    platform.wait_rayservice(real_release.cluster, serve.name, real_release.namespace,
                             READY_TIMEOUT, say=lambda _line: None)


@pytest.fixture(scope="module")
def serve(real_release) -> Iterator[Serve]:
    service = objects_of_kind(real_release.manifest, "RayService")[0]
    name = service["metadata"]["name"]
    address = platform.service_ip(real_release.kubectl, f"{name}-serve-svc", real_release.namespace)
    url = node.expose(real_release.cluster.node, "lifecycle-serve", address, SERVE_PORT)
    state = Serve(name, url, serve_route_prefix(service).rstrip("/"), real_release.release)
    yield state
    # Later tests (and files) read the release as conftest installed it: put its values back,
    # whatever state a failed test left, and wait until it serves again.
    upgraded(real_release, state.original)
    wait_ready(real_release, state)


def test_a_bad_request_gets_the_apps_400_naming_the_parameter(serve) -> None:
    answer = requests.get(f"{serve.url}{serve.prefix}/imagine",
                          params={"prompt": "a fox", "img_size": 7}, timeout=60)
    assert answer.status_code == 400, answer.text
    assert answer.json()["parameter"] == "img_size"


def cluster_token(real_release, head: dict[str, Any]) -> str:
    """The token the head container got: its RAY_AUTH_TOKEN, from the Secret it references."""
    env = {e["name"]: e for e in head["spec"]["containers"][0]["env"]}
    ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = real_release.get("secret", ref["name"], "-n", real_release.namespace)
    return base64.b64decode(secret["data"][ref["key"]]).decode()


@pytest.fixture(scope="module")
def dashboard_url(real_release, serve) -> str:
    """The dashboard port of the RayService's stable head Service, <name>-head-svc, which KubeRay
    points at the active cluster's head (it selects app.kubernetes.io/name=kuberay, the label the
    chart leaves on Ray pods): its one endpoint is that head."""
    active, _ = clusters(rayservice(real_release, serve)["status"])
    endpoints = wait_for("one endpoint behind the RayService's head Service",
                         lambda: service_endpoints(real_release, f"{serve.name}-head-svc"),
                         timeout=120)
    head = real_release.head_pod(active)
    assert [e["targetRef"]["name"] for e in endpoints] == [head["metadata"]["name"]], endpoints
    assert endpoints[0]["addresses"] == [head["status"]["podIP"]], endpoints
    address = endpoints[0]["addresses"][0]
    return node.expose(real_release.cluster.node, "lifecycle-dashboard", address, DASHBOARD_PORT)


@pytest.mark.parametrize("token, expected", [(None, 401), ("not-the-cluster-token", 403),
                                             ("CLUSTER", 200)],
                         ids=["no-token", "wrong-token", "cluster-token"])
def test_the_dashboard_enforces_the_clusters_token(real_release, serve, dashboard_url, token,
                                                   expected) -> None:
    """What the chart's `helm test` dashboard Pod checks, from the host, through the head Service."""
    active, _ = clusters(rayservice(real_release, serve)["status"])
    headers = {}
    if token:
        value = (cluster_token(real_release, real_release.head_pod(active))
                 if token == "CLUSTER" else token)
        headers["Authorization"] = f"Bearer {value}"
    answer = requests.get(f"{dashboard_url}/api/version", headers=headers, timeout=30)
    assert answer.status_code == expected, answer.text[:500]
    if expected == 200:
        assert answer.json()["ray_version"]


def test_an_upgrade_of_the_models_user_config_is_applied_in_place(real_release, serve,
                                                                  tmp_path: Path) -> None:
    before = info(serve)["model"]
    assert before["config"]["max_batch_size"] == 2, before  # values/dev.yaml
    active, _ = clusters(rayservice(real_release, serve)["status"])
    selector = f"ray.io/cluster={active}"
    containers = {s["containerID"] for p in settled_pods(real_release, selector)
                  for s in p["status"]["containerStatuses"]}
    changed = values_file(tmp_path, "batch.yaml",
                          {"stableDiffusion": {"model": {"userConfig": {"max_batch_size": 3}}}})
    upgraded(real_release, dataclasses.replace(
        serve.original, values_files=(*serve.original.values_files, changed)))
    after = wait_for("the new user_config in the model's /info",
                     lambda: (model := info(serve)["model"])["config"]["max_batch_size"] == 3
                     and model, timeout=300)
    # In place: the same cluster, no pending one, the same containers, the same model replica
    # (reconfigured, not restarted: a new replica would have loaded the pipeline again).
    assert clusters(rayservice(real_release, serve)["status"]) == (active, "")
    assert {s["containerID"] for p in settled_pods(real_release, selector)
            for s in p["status"]["containerStatuses"]} == containers
    assert after["loaded_at"] == before["loaded_at"], (before, after)
    assert len(imagine(serve.url, serve.prefix, size=64, steps=2, timeout=300)) > 100


def broken_values(folder: Path) -> Path:
    """An app source that cannot deploy: a remote working_dir that does not exist. Changing the
    source changes the pods (no bundled app volume), so the operator prepares a pending cluster
    and deploys there. No worker for it: the app fails before it asks for one, and a second
    6 GiB worker would only crowd the one node."""
    return values_file(folder, "broken.yaml", {"stableDiffusion": {
        "app": {"source": "remote", "remote": {
            "workingDir": "file:///models/no-such-app.zip",
            "importPath": "ray_platform_sd.app:entrypoint"}},
        "workerGroups": {"cpu": {"replicas": 0, "minReplicas": 0}}}})


def test_an_upgrade_that_cannot_deploy_is_reported_while_the_old_app_answers(
        real_release, serve, tmp_path: Path) -> None:
    active, _ = clusters(rayservice(real_release, serve)["status"])
    upgraded(real_release, dataclasses.replace(
        serve.original, values_files=(*serve.original.values_files, broken_values(tmp_path))))
    pending = wait_for("a pending cluster", lambda: clusters(
        rayservice(real_release, serve)["status"])[1], timeout=180)
    assert pending != active
    # Status, verdict and message from one read: each reconcile rewrites the status, and one in
    # which the operator could not reach the pending head has no applicationStatuses.
    obj = wait_for("the failure in the RayService's status", lambda: (
        o if rayservice_verdict(o := rayservice(real_release, serve)).state == FAILED else None),
        timeout=900, interval=5)
    verdict, status = rayservice_verdict(obj), obj["status"]
    assert f"on the pending cluster {pending} is DEPLOY_FAILED" in verdict.detail, verdict.detail
    failed = status["pendingServiceStatus"]["applicationStatuses"]
    assert any("no-such-app.zip" in app.get("message", "") for app in failed.values()), failed
    # The active cluster still serves: the RayService stays Ready on it, and the app answers.
    ready = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True", status["conditions"]
    assert clusters(status)[0] == active
    assert len(imagine(serve.url, serve.prefix, size=64, steps=2, timeout=300)) > 100


def test_an_upgrade_back_to_the_original_values_restores_the_app(real_release, serve) -> None:
    """The goal spec now differs from the failed pending cluster's, so the operator prepares
    another one from the original values, promotes it once its app runs and deletes the rest."""
    failed = clusters(rayservice(real_release, serve)["status"])[1]
    assert failed, "no failed pending cluster left by the previous test"
    upgraded(real_release, serve.original)
    wait_ready(real_release, serve)
    active, pending = clusters(rayservice(real_release, serve)["status"])
    assert pending == "" and active != failed
    assert info(serve)["model"]["config"]["max_batch_size"] == 2  # values/dev.yaml again
    assert len(imagine(serve.url, serve.prefix, size=64, steps=2, timeout=300)) > 100
    # The operator deletes clusters that are neither active nor pending after
    # rayClusterDeletionDelaySeconds (10 s in values/local/real-node.yaml).
    wait_for("only the active cluster left", lambda: [
        c["metadata"]["name"] for c in real_release.get(
            "rayclusters", "-n", real_release.namespace,
            "-l", f"ray.io/originated-from-cr-name={serve.name}")["items"]] == [active],
        timeout=300)


def node_container_ids(real_release) -> set[str]:
    result = node.crictl(real_release.cluster.node, "ps", "-a", "-q")
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_uninstall_removes_the_operators_objects_and_stops_the_containers(real_release) -> None:
    """A release of its own (a RayCluster's head only), so the session release stays."""
    namespace = "real-uninstall"
    release = platform.release_for(real_release.cluster, real_release.release.chart,
                                   [VALUES_DIR / "dev.yaml"], namespace, "uninstalled")
    # --set: real-node.yaml, layered after the files given, keeps one worker.
    release = dataclasses.replace(release, set_values=(
        *release.set_values, "stableDiffusion.enabled=false",
        "rayCluster.workerGroups.cpu.replicas=0", "rayCluster.workerGroups.cpu.minReplicas=0"))
    try:
        manifest = platform.install_release(real_release.cluster, release)
        platform.wait_clusters(real_release.cluster, manifest, namespace, 600, lambda _line: None)
        pods = real_release.get("pods", "-n", namespace, "-l", "ray.io/is-ray-node=yes")["items"]
        started = {s["containerID"].split("://", 1)[1] for p in pods
                   for s in p["status"]["containerStatuses"]}
        assert started and started <= node_container_ids(real_release)
        result = uninstall(release, real_release.cluster.layout.kubeconfig, MAJOR)
        assert result.returncode == 0, result.stderr
        wait_for("nothing of the release left", lambda: not [
            item["metadata"]["name"] for kind in ("rayclusters", "pods", "services")
            for item in real_release.get(kind, "-n", namespace)["items"]], timeout=180)
        # The kubelet stops and removes the containers it ran for the deleted pods.
        wait_for("the release's containers gone from the node",
                 lambda: not started & node_container_ids(real_release), timeout=180)
    finally:
        real_release.kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
