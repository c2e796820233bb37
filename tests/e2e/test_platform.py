"""End to end, on a real cluster (marker e2e; see conftest.py for where the cluster comes from):
install the previous chart release with values/dev.yaml, wait until the operator, RayCluster and
RayService are ready, upgrade to this chart with a changed pod setting and see it reach the pods,
run `helm test`, and uninstall leaving nothing of the release behind.

The steps run in order on one release; a step whose predecessor failed is skipped, naming it.
Expect 20-45 minutes on a laptop's kind cluster the first time (images, the Serve app's Python
packages and the model are downloaded), less when the node has them cached.
Settings: E2E_TIMEOUT (seconds per readiness wait, default 2700), E2E_KEEP_CLUSTER=1.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from cluster import platform_up
from harness import helm
from release import upgrade_baseline

pytestmark = pytest.mark.e2e

NAMESPACE = RELEASE = "ray-platform-e2e"  # conftest.py collects artifacts from this namespace
TIMEOUT = float(os.environ.get("E2E_TIMEOUT") or platform_up.DEFAULT_TIMEOUT_S)
ROLLOUT_LABEL = "ray-platform-e2e-rollout"


class Steps:
    """Shared state of the ordered steps."""

    def __init__(self, cluster: platform_up.Cluster, workdir: Path):
        self.cluster = cluster
        self.workdir = workdir
        self.failed: str | None = None
        self.installed = False
        self.previous: str = ""
        self.set_values: list[str] = []
        self.objects: list[dict[str, Any]] = []
        self.values: dict[str, Any] = {}

    def run(self, name: str, body: Callable[[], None]) -> None:
        if self.failed:
            pytest.skip(f"needs the step '{self.failed}', which failed")
        try:
            body()
        except BaseException:
            self.failed = name
            raise


def previous_chart(workdir: Path) -> tuple[Path, str]:
    """The chart of the newest `ray-platform-*` release tag (from git, the work tree untouched), or
    this chart when there is no release yet."""
    tag = upgrade_baseline.last_release_tag()
    if tag is None:
        return platform_up.CHART_DIR, "this chart (no ray-platform-* release tag yet)"
    return upgrade_baseline.chart_of_tag(tag, workdir), tag


@pytest.fixture(scope="module")
def steps(e2e_cluster: platform_up.Cluster) -> Iterator[Steps]:
    with tempfile.TemporaryDirectory(prefix="ray-platform-e2e-") as workdir:
        state = Steps(e2e_cluster, Path(workdir))
        try:
            yield state
        finally:
            if state.installed:  # a failed run still cleans up the release and its namespace
                helm.run("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--ignore-not-found",
                         *e2e_cluster.kube_args(), capture_output=False)
            core = core_api(e2e_cluster)
            try:
                core.delete_namespace(NAMESPACE)
            except Exception:
                pass


def core_api(cluster: platform_up.Cluster) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(
        config_file=str(cluster.kubeconfig) if cluster.kubeconfig else None))


def refresh(state: Steps) -> None:
    state.objects = platform_up.release_objects(state.cluster, subprocess.run, RELEASE, NAMESPACE)
    state.values = platform_up.release_values(state.cluster, subprocess.run, RELEASE, NAMESPACE)


def wait(state: Steps) -> None:
    others = platform_up.other_operators(state.cluster, RELEASE, NAMESPACE)
    targets = platform_up.readiness_targets(state.objects, state.values, RELEASE, NAMESPACE,
                                            operator=others[0] if others else None)
    platform_up.wait_ready(state.cluster, targets, TIMEOUT, namespace=NAMESPACE)


def test_install_the_previous_release(steps: Steps) -> None:
    def body() -> None:
        chart, steps.previous = previous_chart(steps.workdir)
        print(f"installing {steps.previous}")
        platform_up.build_dependencies(subprocess.run, chart)
        if platform_up.other_operators(steps.cluster, RELEASE, NAMESPACE):
            steps.set_values.append("kuberay-operator.enabled=false")  # one operator per cluster
        steps.installed = True
        platform_up.install_release(steps.cluster, subprocess.run, [platform_up.DEV_VALUES], steps.set_values,
                                    chart=chart, release=RELEASE, namespace=NAMESPACE)
        refresh(steps)
        kinds = {o["kind"] for o in steps.objects}
        assert {"RayCluster", "RayService"} <= kinds, kinds
    steps.run("install", body)


def test_operator_raycluster_and_rayservice_become_ready(steps: Steps) -> None:
    steps.run("readiness", lambda: wait(steps))


def test_upgrade_to_this_chart_reaches_the_pods(steps: Steps) -> None:
    def body() -> None:
        nonce = f"r{int(time.time())}"  # a label value: a string, whatever --set makes of digits
        platform_up.build_dependencies(subprocess.run)
        platform_up.install_release(steps.cluster, subprocess.run, [platform_up.DEV_VALUES],
                                    [*steps.set_values, f"rayCluster.head.labels.{ROLLOUT_LABEL}={nonce}"],
                                    release=RELEASE, namespace=NAMESPACE)
        refresh(steps)
        (cluster,) = [o["metadata"]["name"] for o in steps.objects if o["kind"] == "RayCluster"]
        wait(steps)
        # upgradeStrategy Recreate: the head pod is replaced by one with the new label, none is left over.
        core = core_api(steps.cluster)
        deadline = time.monotonic() + TIMEOUT
        while True:
            heads = core.list_namespaced_pod(NAMESPACE, label_selector=f"ray.io/cluster={cluster},ray.io/node-type=head").items
            labelled = [p for p in heads if (p.metadata.labels or {}).get(ROLLOUT_LABEL) == nonce]
            ready = [p for p in labelled if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
            if ready and len(heads) == len(labelled):
                break
            assert time.monotonic() < deadline, (
                f"after {int(TIMEOUT)}s the head pods of {cluster} are {[p.metadata.name for p in heads]}, "
                f"with {ROLLOUT_LABEL}={nonce} on {[p.metadata.name for p in labelled]}, ready: {[p.metadata.name for p in ready]}")
            time.sleep(5)
    steps.run("upgrade", body)


def test_helm_test_passes(steps: Steps) -> None:
    steps.run("helm test", lambda: platform_up.run_helm_test(steps.cluster, subprocess.run, RELEASE, NAMESPACE))


def test_uninstall_leaves_nothing_behind(steps: Steps) -> None:
    def body() -> None:
        helm.run("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "10m",
                 *steps.cluster.kube_args(), capture_output=False, check=True)
        steps.installed = False
        deadline = time.monotonic() + 600
        while True:
            left = leftovers(steps.cluster)
            if not left:
                break
            assert time.monotonic() < deadline, f"10 minutes after helm uninstall, still there: {left}"
            time.sleep(5)
    steps.run("uninstall", body)


def leftovers(cluster: platform_up.Cluster) -> list[str]:
    """Everything in the namespace but what Kubernetes itself puts in every namespace. (The CRDs
    stay by design: Helm never deletes a chart's crds/; and objects with helm.sh/resource-policy
    keep are kept on purpose - none with values/dev.yaml.)"""
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig) if cluster.kubeconfig else None)
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    apps, policy = client.AppsV1Api(api_client), client.PolicyV1Api(api_client)
    networking = client.NetworkingV1Api(api_client)
    found: list[str] = []
    for plural in ("rayclusters", "rayservices", "rayjobs"):
        found += [f"{plural}/{o['metadata']['name']}"
                  for o in custom.list_namespaced_custom_object("ray.io", "v1", NAMESPACE, plural)["items"]]
    listings = {
        "pods": core.list_namespaced_pod, "services": core.list_namespaced_service,
        "configmaps": core.list_namespaced_config_map, "secrets": core.list_namespaced_secret,
        "serviceaccounts": core.list_namespaced_service_account,
        "persistentvolumeclaims": core.list_namespaced_persistent_volume_claim,
        "deployments": apps.list_namespaced_deployment, "poddisruptionbudgets": policy.list_namespaced_pod_disruption_budget,
        "networkpolicies": networking.list_namespaced_network_policy,
    }
    built_in = {("configmaps", "kube-root-ca.crt"), ("serviceaccounts", "default")}
    for kind, list_objects in listings.items():
        for obj in list_objects(NAMESPACE).items:
            if (kind, obj.metadata.name) not in built_in:
                found.append(f"{kind}/{obj.metadata.name}")
    return found
