"""helm upgrade, rollback and uninstall against the real API server and operator.

Simulated nodes: "replaced pods" means the operator deleted the pod objects and created new ones
(new UIDs); no container was stopped or started.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cluster.local.release import Release, helm_in, install, uninstall, upgrade
from harness.readiness import Target
from harness.tools import RELEASE, VALUES_DIR

pytestmark = pytest.mark.cluster

DEV = (VALUES_DIR / "dev.yaml",)
CLUSTER = RELEASE  # the standalone RayCluster is named after the release


def _env_change(folder: Path, value: str) -> Path:
    """A values file setting a head env var (a file, not --set: --set would make "2" a number,
    which the API refuses for an env value)."""
    path = folder / f"env-{value}.yaml"
    path.write_text("rayCluster:\n  head:\n    env:\n"
                    f"      - name: RAY_PLATFORM_TEST_REVISION\n        value: \"{value}\"\n")
    return path


def _head_pod_uids(local_cluster, namespace: str) -> dict[str, str]:
    pods = local_cluster.get("pods", "-n", namespace, "-l", f"ray.io/cluster={CLUSTER}")["items"]
    return {p["metadata"]["uid"]: p["metadata"]["name"] for p in pods}


def _raycluster(local_cluster, namespace: str) -> dict[str, Any]:
    return local_cluster.get("raycluster", CLUSTER, "-n", namespace)


def _wait(local_cluster, namespace: str) -> None:
    local_cluster.wait_ready([Target("RayCluster", CLUSTER, namespace)], timeout=180)


def _head_env(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    container = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    return [e for e in container.get("env", []) if e["name"] == "RAY_PLATFORM_TEST_REVISION"]


def _wait_for_new_pods(local_cluster, namespace: str, old: set[str], timeout: float = 120) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = set(_head_pod_uids(local_cluster, namespace))
        if current and not current & old:
            return current
        time.sleep(1)
    return set(_head_pod_uids(local_cluster, namespace))


@pytest.mark.parametrize("major", [3, 4], ids=lambda m: f"helm{m}")
def test_upgrade_recreate_none_rollback_uninstall(local_cluster, fresh_namespace, major,
                                                  tmp_path):
    namespace = fresh_namespace(f"lifecycle-h{major}")
    base = Release(RELEASE, namespace, local_cluster.chart, DEV)
    kubeconfig = local_cluster.kubeconfig
    result = install(base, kubeconfig, major)
    assert result.returncode == 0, result.stderr
    _wait(local_cluster, namespace)
    first = set(_head_pod_uids(local_cluster, namespace))
    assert first

    # Recreate (the chart's default): a changed pod setting replaces the pods.
    changed = Release(RELEASE, namespace, local_cluster.chart,
                      (*DEV, _env_change(tmp_path, "2")))
    result = upgrade(changed, kubeconfig, major)
    assert result.returncode == 0, result.stderr
    second = _wait_for_new_pods(local_cluster, namespace, first)
    assert second and not second & first, "upgradeStrategy Recreate kept the old head pod"
    _wait(local_cluster, namespace)

    # None: the spec changes, the running pods stay.
    keep = Release(RELEASE, namespace, local_cluster.chart, (*DEV, _env_change(tmp_path, "3")),
                   base.set_values + ("rayCluster.upgradeStrategy.type=None",))
    result = upgrade(keep, kubeconfig, major)
    assert result.returncode == 0, result.stderr
    assert _head_env(_raycluster(local_cluster, namespace))[0]["value"] == "3"
    time.sleep(5)  # give the operator the time it took to recreate above
    assert set(_head_pod_uids(local_cluster, namespace)) == second, (
        "upgradeStrategy None replaced the head pod")

    # Rollback to revision 2 restores that revision's spec.
    result = helm_in(local_cluster.kubeconfig, "rollback", RELEASE, "2", "-n", namespace,
                     major=major)
    assert result.returncode == 0, result.stderr
    cluster = _raycluster(local_cluster, namespace)
    assert _head_env(cluster)[0]["value"] == "2"
    assert cluster["spec"].get("upgradeStrategy", {}).get("type") == "Recreate"

    # Uninstall: no chart object and nothing the operator created is left.
    result = uninstall(base, kubeconfig, major)
    assert result.returncode == 0, result.stderr
    leftovers = _leftovers(local_cluster, namespace)
    assert not leftovers, f"left behind after helm uninstall: {leftovers}"


# Objects every namespace has on its own (the root CA ConfigMap, the default ServiceAccount).
NAMESPACE_DEFAULTS = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}
KINDS = ("rayclusters", "rayservices", "pods", "services", "secrets", "configmaps",
         "serviceaccounts", "roles", "rolebindings", "networkpolicies",
         "poddisruptionbudgets", "persistentvolumeclaims", "ingresses")


def _leftovers(local_cluster, namespace: str, timeout: float = 120) -> list[str]:
    """Objects still in the namespace once garbage collection had `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for kind in KINDS:
            for obj in local_cluster.get(kind, "-n", namespace)["items"]:
                key = (obj["kind"], obj["metadata"]["name"])
                if key not in NAMESPACE_DEFAULTS:
                    found.append(f"{key[0]}/{key[1]}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(2)


def test_model_cache_pvc_is_kept_on_uninstall_as_the_readme_says(local_cluster, fresh_namespace):
    """The chart-created model cache carries helm.sh/resource-policy: keep (README, weights
    `cache`): uninstall leaves the claim, and its binding to a simulated volume, in place."""
    namespace = fresh_namespace("pvc-keep")
    scenario = local_cluster.chart / "ci" / "sd-model-cache-values.yaml"
    release = Release(RELEASE, namespace, local_cluster.chart, (scenario,))
    result = install(release, local_cluster.kubeconfig, 4)
    assert result.returncode == 0, result.stderr
    claims = local_cluster.get("pvc", "-n", namespace)["items"]
    assert claims, "the sd-model-cache scenario created no PersistentVolumeClaim"
    result = uninstall(release, local_cluster.kubeconfig, 4)
    assert result.returncode == 0, result.stderr
    kept = {c["metadata"]["name"] for c in local_cluster.get("pvc", "-n", namespace)["items"]}
    assert kept == {c["metadata"]["name"] for c in claims}
