"""The Stable Diffusion RayService with a real Ray behind the real KubeRay operator.

Real: the API server, the operator, and one Ray head per RayService cluster under test, started
on this machine for the head pod the operator created (its `ray start` command, token and app
files; in a loopback-only network namespace, cluster/local/ray_head.py). The operator reaches
it over HTTP as in a cluster, PUTs the chart's Serve config, reads the applications' status and
writes it into the RayService; /imagine is answered by real Ray Serve. Simulated: the nodes and
every other pod (no container runs; the worker pods' CPUs are given to the real head). The
model is the tiny random-weight pipeline (no model hub is reachable).

The tests run in file order on one module-scoped install: install, serve, upgrade in place,
upgrade to a config that cannot deploy, uninstall.
"""
from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from cluster.local import ray_head
from cluster.local.release import Release, helm_in, install, ray_targets, uninstall, upgrade
from cluster.local.up import imagine, local_values, wait_rayservice_ready
from harness.readiness import FAILED, Target, rayservice_verdict
from harness.render import parse_manifests
from harness.tools import CHART_DIR, RELEASE, VALUES_DIR

pytestmark = pytest.mark.cluster

MAJOR = 4
READY_TIMEOUT = 420


@dataclass
class RealService:
    namespace: str
    release: Release
    name: str  # the RayService
    head: ray_head.HeadRecord


def _release(local_cluster, namespace: str, folder: Path, *extra: Path) -> Release:
    values = (VALUES_DIR / "dev.yaml", local_values(folder), *extra)
    return Release(RELEASE, namespace, local_cluster.chart, values)


def _rayservice(local_cluster, service: RealService) -> dict[str, Any]:
    return local_cluster.get("rayservice", service.name, "-n", service.namespace)


def _apps(status: dict[str, Any]) -> dict[str, Any]:
    return (status.get("applicationStatuses") or {})


@pytest.fixture(scope="module")
def real_service(local_cluster, tmp_path_factory) -> Iterator[RealService]:
    folder = tmp_path_factory.mktemp("real-ray")
    namespace = local_cluster.namespace("real-ray")
    release = _release(local_cluster, namespace, folder)
    result = install(release, local_cluster.kubeconfig, MAJOR)
    assert result.returncode == 0, result.stderr
    manifest = parse_manifests(helm_in(local_cluster.kubeconfig, "get", "manifest", RELEASE,
                                       "-n", namespace, major=MAJOR).stdout)
    name = next(obj["metadata"]["name"] for obj in manifest if obj["kind"] == "RayService")
    local_cluster.wait_ready(ray_targets(local_cluster.fetcher, manifest, namespace))
    head = ray_head.start(local_cluster.layout, local_cluster.kubectl, namespace, name,
                          say=lambda _line: None)
    try:
        wait_rayservice_ready(local_cluster.fetcher, name, namespace, READY_TIMEOUT,
                              say=lambda _line: None)
        yield RealService(namespace, release, name, head)
    finally:
        uninstall(release, local_cluster.kubeconfig, MAJOR)
        for path in ray_head.records_dir(local_cluster.layout).glob(f"{namespace}.*.json"):
            ray_head.stop(local_cluster.layout, namespace, path.stem.split(".", 1)[1])


def test_operator_reports_ready_from_what_real_ray_answered(local_cluster, real_service):
    status = _rayservice(local_cluster, real_service)["status"]
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    assert conditions["Ready"]["status"] == "True", conditions
    active = status["activeServiceStatus"]
    assert active["rayClusterName"] == real_service.head.cluster
    apps = _apps(active)
    assert apps and all(app["status"] == "RUNNING" for app in apps.values()), apps
    # The operator learnt it from the real head: its HTTP calls went through the cluster
    # network to the head pod's IP (one log line per request, network.py).
    log = (local_cluster.layout.state_dir / "operator" / "network.log").read_text()
    assert f"-> {real_service.head.pod_ip}:{real_service.head.dashboard_port}" in log
    assert "PUT http://" in log and "/api/serve/applications/" in log


def test_imagine_through_the_real_serve_proxy_returns_a_png(real_service):
    png = imagine(real_service.head.serve_url, size=64)
    assert len(png) > 100


def test_bad_request_answers_the_apps_400_naming_the_parameter(real_service):
    answer = requests.get(f"{real_service.head.serve_url}/imagine",
                          params={"prompt": "a fox", "img_size": 7}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["parameter"] == "img_size"


def test_the_head_listens_only_on_loopback_and_nothing_of_it_is_reachable_but_two_ports(
        real_service):
    listeners = ray_head.session_listeners(real_service.head.session_id)
    assert listeners, "no listening socket found in the Ray head's session"
    # Inside its namespace Ray binds some servers on every interface: there, only loopback.
    assert any(entry.startswith(f"{real_service.head.pod_ip}:") for entry in listeners)
    outside = ray_head.session_listeners(real_service.head.relay_sessions[1])
    assert outside == sorted({f"{real_service.head.pod_ip}:{real_service.head.dashboard_port}",
                              f"{real_service.head.pod_ip}:{real_service.head.serve_port}"})


def _token(local_cluster, service: RealService) -> str:
    pod = local_cluster.get("pod", service.head.pod, "-n", service.namespace)
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = local_cluster.get("secret", ref["name"], "-n", service.namespace)
    return base64.b64decode(secret["data"][ref["key"]]).decode()


@pytest.mark.parametrize("token, expected", [(None, 401), ("not-the-cluster-token", 403),
                                             ("CLUSTER", 200)],
                         ids=["no-token", "wrong-token", "cluster-token"])
def test_dashboard_enforces_the_pods_token(local_cluster, real_service, token, expected):
    """The checks of the chart's `helm test` dashboard Pod, made from the host."""
    request = urllib.request.Request(f"{real_service.head.dashboard_url}/api/version")
    if token:
        value = _token(local_cluster, real_service) if token == "CLUSTER" else token
        request.add_header("Authorization", f"Bearer {value}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status == expected


def _info(service: RealService) -> dict[str, Any]:
    answer = requests.get(f"{service.head.serve_url}/info", timeout=30)
    answer.raise_for_status()
    return answer.json()


def test_upgrade_of_user_config_is_applied_in_place(local_cluster, real_service, tmp_path):
    assert _info(real_service)["ingress"]["default_img_size"] == 256  # values/dev.yaml
    pod_uid = local_cluster.get("pod", real_service.head.pod, "-n",
                                real_service.namespace)["metadata"]["uid"]
    changed = tmp_path / "smaller-default.yaml"
    changed.write_text("stableDiffusion:\n  apiIngress:\n    userConfig:\n"
                       "      default_img_size: 64\n")
    release = Release(RELEASE, real_service.namespace, local_cluster.chart,
                      (*real_service.release.values_files, changed))
    result = upgrade(release, local_cluster.kubeconfig, MAJOR)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 180
    while _info(real_service)["ingress"]["default_img_size"] != 64:
        assert time.monotonic() < deadline, "the operator did not send the new user_config"
        time.sleep(2)
    # In place: the same cluster, head pod and Ray processes; no new cluster was created.
    status = _rayservice(local_cluster, real_service)["status"]
    assert status["activeServiceStatus"]["rayClusterName"] == real_service.head.cluster
    assert not (status.get("pendingServiceStatus") or {}).get("rayClusterName")
    pod = local_cluster.get("pod", real_service.head.pod, "-n", real_service.namespace)
    assert pod["metadata"]["uid"] == pod_uid
    assert ray_head.session_listeners(real_service.head.session_id)
    answer = requests.get(f"{real_service.head.serve_url}/imagine",
                          params={"prompt": "default size", "steps": 2}, timeout=120)
    assert answer.status_code == 200 and answer.headers["X-Image-Size"].startswith("64")
    real_service.release = release


def _app_zip(folder: Path) -> Path:
    """The chart's Serve app as a zip, for a `remote` app source read from a file:// URL."""
    path = folder / "app.zip"
    with zipfile.ZipFile(path, "w") as archive:
        source = CHART_DIR / "files" / "serve"
        for file in sorted((source / "ray_platform_sd").glob("*.py")):
            archive.write(file, f"app/{file.relative_to(source)}")
    return path


def test_upgrade_to_a_config_that_cannot_deploy_is_reported_and_the_old_app_answers(
        local_cluster, real_service, tmp_path):
    """An import path that does not exist. The app source changes (bundled -> remote), which
    changes the pods, so the operator creates a pending cluster; a real Ray head is started
    behind it too, the operator deploys there, and Ray reports the import failure."""
    broken = tmp_path / "broken-import.yaml"
    broken.write_text(
        "stableDiffusion:\n  app:\n    source: remote\n    remote:\n"
        f"      workingDir: file://{_app_zip(tmp_path)}\n"
        "      importPath: ray_platform_sd.no_such_module:entrypoint\n")
    release = Release(RELEASE, real_service.namespace, local_cluster.chart,
                      (*real_service.release.values_files, broken))
    result = upgrade(release, local_cluster.kubeconfig, MAJOR)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 180
    pending = ""
    while not pending:
        assert time.monotonic() < deadline, "the operator created no pending cluster"
        status = _rayservice(local_cluster, real_service)["status"]
        pending = (status.get("pendingServiceStatus") or {}).get("rayClusterName") or ""
        time.sleep(2)
    assert pending != real_service.head.cluster
    ray_head.start(local_cluster.layout, local_cluster.kubectl, real_service.namespace,
                   real_service.name, cluster=pending, say=lambda _line: None)
    deadline = time.monotonic() + 300
    verdict = rayservice_verdict(_rayservice(local_cluster, real_service))
    while verdict.state != FAILED:
        assert time.monotonic() < deadline, f"no failure reported: {verdict.detail}"
        time.sleep(3)
        verdict = rayservice_verdict(_rayservice(local_cluster, real_service))
    assert "pending cluster" in verdict.detail and "no_such_module" in verdict.detail, \
        verdict.detail
    status = _rayservice(local_cluster, real_service)["status"]
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    assert status["activeServiceStatus"]["rayClusterName"] == real_service.head.cluster
    assert conditions["Ready"]["status"] == "True"  # still served by the active cluster
    png = imagine(real_service.head.serve_url, size=64)
    assert png


def test_uninstall_removes_the_operators_objects_and_the_heads_stop(local_cluster,
                                                                    real_service):
    result = uninstall(real_service.release, local_cluster.kubeconfig, MAJOR)
    assert result.returncode == 0, result.stderr
    namespace = real_service.namespace
    deadline = time.monotonic() + 120
    while True:
        left = [item["metadata"]["name"] for kind in ("rayservices", "rayclusters", "pods")
                for item in local_cluster.get(kind, "-n", namespace)["items"]]
        if not left:
            break
        assert time.monotonic() < deadline, f"left behind after uninstall: {left}"
        time.sleep(2)
    stopped = ray_head.stop_orphans(local_cluster.layout, local_cluster.kubectl)
    assert f"{namespace}/{real_service.head.cluster}" in stopped
    assert not ray_head.session_listeners(real_service.head.session_id)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{real_service.head.dashboard_url}/api/version", timeout=5)
