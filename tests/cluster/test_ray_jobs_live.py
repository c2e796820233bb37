"""RayJobs and RayCronJobs from rayJobs.<name>, installed on the local cluster (real API server
with Pod Security `restricted` on the namespace, real KubeRay operator v1.6.2 with its RayCronJob
feature gate on).

Simulated nodes: kwok marks the pods Running and Ready, but no container runs in them, so the
submitter pod never runs `ray job submit` and no Ray job really runs: what is real is what the
API server admits and what the operator creates from the chart's objects (the job's RayCluster,
the submitter Job with its environment, a RayCronJob's RayJobs).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from cluster.local.release import Release, helm_in, install, ray_targets
from harness.readiness import operator_secret_name
from harness.render import parse_manifests
from harness.tools import RELEASE

pytestmark = pytest.mark.cluster

WORKERS = {"cpu": {"minReplicas": 1, "maxReplicas": 1, "resources": {
    "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}}}
BASE = {"rayCluster": {"enabled": False}, "stableDiffusion": {"enabled": False}}


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 150) -> Any:
    """probe() every 2 s until it returns something truthy; fails the test naming `what` and
    the last answer when it does not within timeout."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not there after {timeout:.0f} s (last: {value!r})")
        time.sleep(2)
    return value


def installed(local_cluster, namespace: str, tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({**BASE, **values}))
    release = Release(RELEASE, namespace, local_cluster.chart, (path,))
    result = install(release, local_cluster.kubeconfig, 4)
    assert result.returncode == 0, result.stderr
    manifest = helm_in(local_cluster.kubeconfig, "get", "manifest", RELEASE, "-n", namespace, major=4)
    return parse_manifests(manifest.stdout)


def items(local_cluster, kind: str, namespace: str, *selector: str) -> list[dict[str, Any]]:
    return local_cluster.get(kind, "-n", namespace, *selector)["items"]


def test_a_rayjob_gets_its_cluster_and_a_restricted_submitter_job(local_cluster, fresh_namespace,
                                                                    tmp_path: Path) -> None:
    namespace = fresh_namespace("rayjob")
    manifest = installed(local_cluster, namespace, tmp_path, {"rayJobs": {"train": {
        "entrypoint": "python -c 'print(1)'", "runtimeEnv": {"env_vars": {"A": "1"}},
        "cluster": {"workerGroups": WORKERS}}}})
    job_name = f"{RELEASE}-train"
    # The operator creates the job's RayCluster (status.rayClusterName); it gets ready.
    targets = ray_targets(local_cluster.fetcher, manifest, namespace)
    (cluster_target,) = targets
    local_cluster.wait_ready(targets)
    cluster = local_cluster.get("raycluster", cluster_target.name, "-n", namespace)
    assert [ref["kind"] for ref in cluster["metadata"]["ownerReferences"]] == ["RayJob"]
    assert cluster["spec"]["authOptions"]["mode"] == "token"
    pods = items(local_cluster, "pods", namespace, "-l", f"ray.io/cluster={cluster_target.name}")
    assert {p["metadata"]["labels"]["ray.io/node-type"] for p in pods} == {"head", "worker"}
    assert {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods} == {"rayjob-train"}
    # Then the submitter Job, from the chart's template plus what the operator adds.
    submitter = wait_for("the submitter Job", lambda: next(
        (j for j in items(local_cluster, "jobs", namespace) if j["metadata"]["name"] == job_name), None))
    pod_spec = submitter["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert pod_spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e for e in container["env"]}
    assert "RAY_DASHBOARD_ADDRESS" in env and env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == operator_secret_name(cluster_target.name)
    assert "ray job submit" in " ".join(container["args"])
    # The restricted namespace admitted its pod (simulated: Running, nothing runs in it).
    submitter_pods = wait_for("the submitter pod", lambda: items(
        local_cluster, "pods", namespace, "-l", f"job-name={job_name}"))
    assert submitter_pods[0]["metadata"]["labels"]["app.kubernetes.io/component"] == "rayjob-submitter"
    rayjob = local_cluster.get("rayjob", job_name, "-n", namespace)
    assert rayjob["status"]["jobDeploymentStatus"] in {"Initializing", "Running"}, rayjob["status"]


def test_a_raycronjob_creates_rayjobs_on_its_schedule(local_cluster, fresh_namespace, tmp_path: Path) -> None:
    namespace = fresh_namespace("raycronjob")
    installed(local_cluster, namespace, tmp_path, {"rayJobs": {"minutely": {
        "entrypoint": "python -c 'print(1)'", "schedule": "* * * * *", "cluster": {"workerGroups": WORKERS}}}})
    cron_name = f"{RELEASE}-minutely"
    # The next minute's run: a RayJob named <cron>-<5 characters>, owned by the RayCronJob.
    (run, *_) = wait_for("a RayJob of the RayCronJob", lambda: items(local_cluster, "rayjobs", namespace), timeout=150)
    assert run["metadata"]["name"].startswith(f"{cron_name}-")
    assert len(run["metadata"]["name"]) == len(cron_name) + 6
    assert [ref["kind"] for ref in run["metadata"]["ownerReferences"]] == ["RayCronJob"]
    assert run["spec"]["submitterPodTemplate"]["spec"]["automountServiceAccountToken"] is False
    cron = local_cluster.get("raycronjob", cron_name, "-n", namespace)
    assert cron["status"]["lastScheduleTime"]
