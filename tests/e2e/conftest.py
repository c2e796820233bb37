"""The e2e suite's cluster, and what it leaves behind when a test fails.

Cluster: the one KUBECONFIG names; else a kind cluster `ray-platform-e2e` created for the session
(pinned kind and node image, like `make up`) and deleted afterwards (E2E_KEEP_CLUSTER=1 keeps it).
Without either - no KUBECONFIG and no Docker engine, as on the build machines - every e2e test is
skipped with the reason.

On a failed test, artifacts/e2e/<test>/ gets what explains it: the release's and the operator's
objects (kubectl describe where kubectl is on PATH, else YAML), events, and the logs of every Ray
pod, test pod and operator pod (current and previous containers).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from bootstrap import install_kind
from cluster import platform_up
from harness.tools import REPO, TOOLS_DIR

ARTIFACTS = REPO / "artifacts" / "e2e"
E2E_CLUSTER = "ray-platform-e2e"
E2E_KUBECONFIG = TOOLS_DIR / "kind" / "kubeconfig-e2e"
NAMESPACE = "ray-platform-e2e"

_session: dict[str, Any] = {}


def _unreachable(cluster: platform_up.Cluster) -> str | None:
    try:
        from kubernetes import client, config

        api = client.VersionApi(config.new_client_from_config(
            config_file=str(cluster.kubeconfig) if cluster.kubeconfig else None))
        api.get_code(_request_timeout=15)
    except Exception as error:  # no route, refused, bad credentials: all mean "no cluster"
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


@pytest.fixture(scope="session")
def e2e_cluster() -> Iterator[platform_up.Cluster]:
    try:
        existing = platform_up.existing_cluster(dict(os.environ))
    except platform_up.Refused as refused:
        pytest.skip(f"e2e needs a Kubernetes cluster: {refused}")
    created = False
    if existing is not None:
        cluster = existing
        problem = _unreachable(cluster)
        if problem:
            pytest.skip(f"e2e needs a Kubernetes cluster: KUBECONFIG's cluster does not answer ({problem})")
    else:
        problem = platform_up.docker_engine_problem()
        if problem:
            missing = ("there is no `docker` command" if problem == platform_up.NO_DOCKER
                       else "`docker info` reaches no Docker engine")
            pytest.skip(f"e2e needs a Kubernetes cluster: KUBECONFIG is not set and {missing}, so kind cannot "
                        "run here (start Docker, or point KUBECONFIG at a cluster)")
        try:
            kind = install_kind.install(platform_up.TOOLS_BIN)
        except install_kind.KindUnavailable as unavailable:
            pytest.skip(f"e2e needs a Kubernetes cluster: KUBECONFIG is not set, and kind is missing ({unavailable})")
        cluster = platform_up.Cluster(kind=True, kubeconfig=E2E_KUBECONFIG, kind_binary=kind, name=E2E_CLUSTER)
        created = platform_up.ensure_kind_cluster(cluster, subprocess.run)
    _session["cluster"] = cluster
    try:
        yield cluster
    finally:
        _session.pop("cluster", None)
        if created and not os.environ.get("E2E_KEEP_CLUSTER"):
            platform_up.delete_kind_cluster(cluster, subprocess.run)


# --- artifacts on failure ------------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    cluster = _session.get("cluster")
    if report.failed and cluster is not None and item.get_closest_marker("e2e"):
        folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name)
        try:
            collect_artifacts(cluster, [NAMESPACE], folder)
            report.sections.append(("e2e artifacts", f"kubectl describe and logs in {folder}"))
        except Exception as error:  # never hide the test's own failure behind this one
            report.sections.append(("e2e artifacts", f"could not collect artifacts: {error}"))


def collect_artifacts(cluster: platform_up.Cluster, namespaces: list[str], folder: Path) -> None:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    folder.mkdir(parents=True, exist_ok=True)
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig) if cluster.kubeconfig else None)
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    apps = client.AppsV1Api(api_client)
    operators = apps.list_deployment_for_all_namespaces(label_selector=platform_up.OPERATOR_LABEL).items
    spaces = sorted(set(namespaces) | {d.metadata.namespace for d in operators})
    kubectl = shutil.which("kubectl")
    for namespace in spaces:
        out = folder / namespace
        out.mkdir(exist_ok=True)
        for plural in ("rayclusters", "rayservices"):
            try:
                items = custom.list_namespaced_custom_object("ray.io", "v1", namespace, plural)["items"]
            except ApiException:
                items = []
            (out / f"{plural}.yaml").write_text(yaml.safe_dump_all(items, sort_keys=False))
        events = core.list_namespaced_event(namespace).items
        (out / "events.txt").write_text("\n".join(
            f"{e.last_timestamp or e.event_time} {e.type} {e.reason} {e.involved_object.kind}/{e.involved_object.name}: {e.message}"
            for e in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time))))
        pods = core.list_namespaced_pod(namespace).items
        (out / "pods.yaml").write_text(yaml.safe_dump(api_client.sanitize_for_serialization(pods), sort_keys=False))
        if kubectl:
            env = dict(os.environ, **({"KUBECONFIG": str(cluster.kubeconfig)} if cluster.kubeconfig else {}))
            for what in ("pods", "raycluster", "rayservice", "deployment", "service"):
                proc = subprocess.run([kubectl, "-n", namespace, "describe", what], capture_output=True, text=True,
                                      env=env, timeout=120, check=False)
                (out / f"describe-{what}.txt").write_text(proc.stdout + proc.stderr)
        for pod in pods:
            for status in (pod.status.container_statuses or []):
                for previous in (False, True):
                    if previous and not status.restart_count:
                        continue
                    try:
                        text = core.read_namespaced_pod_log(pod.metadata.name, namespace, container=status.name,
                                                            previous=previous, tail_lines=5000)
                    except ApiException as error:
                        text = f"(no log: {error.reason})"
                    suffix = ".previous" if previous else ""
                    (out / f"{pod.metadata.name}.{status.name}{suffix}.log").write_text(text or "")
