"""Install the chart into the local cluster: a namespace that enforces Pod Security `restricted`,
the chart without the operator subchart (the operator runs on the host), and the objects the
operator creates for a release found again by label."""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from cluster.local.kubectl import Kubectl
from harness import helm
from harness.readiness import KubeFetcher, Target

POD_SECURITY = {f"pod-security.kubernetes.io/{mode}": "restricted"
                for mode in ("enforce", "warn", "audit")}
# The operator runs on the host with its own RBAC; the subchart would start a second one.
NO_SUBCHART = ("kuberay-operator.enabled=false",)


def restricted_namespace(name: str, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {**POD_SECURITY, **(extra_labels or {})}}}


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    chart: Path
    values_files: tuple[Path, ...] = ()
    set_values: tuple[str, ...] = field(default=NO_SUBCHART)

    def values_args(self) -> list[str]:
        args: list[str] = []
        for path in self.values_files:
            args += ["--values", str(path)]
        for assignment in self.set_values:
            args += ["--set", assignment]
        return args


def helm_in(kubeconfig: Path, *args: str, major: int, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    return helm.run(*args, "--kubeconfig", str(kubeconfig), major=major, timeout=timeout)


def install(release: Release, kubeconfig: Path, major: int,
            extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """`helm install` (no --wait: readiness is judged from the operator's status)."""
    return helm_in(kubeconfig, "install", release.name, str(release.chart),
                   "--namespace", release.namespace, *release.values_args(), *extra, major=major)


def upgrade(release: Release, kubeconfig: Path, major: int,
            extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    return helm_in(kubeconfig, "upgrade", release.name, str(release.chart),
                   "--namespace", release.namespace, *release.values_args(), *extra, major=major)


def uninstall(release: Release, kubeconfig: Path, major: int
              ) -> subprocess.CompletedProcess[str]:
    return helm_in(kubeconfig, "uninstall", release.name, "--namespace", release.namespace,
                   "--wait", "--timeout", "120s", major=major)


def ray_pods(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    """Pods the operator created (it labels every Ray pod ray.io/is-ray-node=yes)."""
    return kubectl.get("pods", "-n", namespace, "-l", "ray.io/is-ray-node=yes")["items"]


def rayservice_cluster_names(rayservice: dict[str, Any]) -> list[str]:
    """The RayCluster(s) the operator created for a RayService (active and pending)."""
    status = rayservice.get("status") or {}
    names = [(status.get(key) or {}).get("rayClusterName")
             for key in ("activeServiceStatus", "pendingServiceStatus")]
    return [name for name in names if name]


def objects_of_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj.get("kind") == kind]


def ray_targets(fetcher: KubeFetcher, manifest: Iterable[dict[str, Any]], namespace: str,
                timeout: float = 120) -> list[Target]:
    """What to wait for: the release's RayClusters, and the RayCluster the operator creates for
    each RayService and for each RayJob with a cluster of its own (found in their status once the
    operator has written it). A RayCronJob's RayJobs come at its schedule: nothing to wait for."""
    manifest = list(manifest)
    targets = [Target("RayCluster", obj["metadata"]["name"], namespace)
               for obj in objects_of_kind(manifest, "RayCluster")]
    for service in objects_of_kind(manifest, "RayService"):
        name = service["metadata"]["name"]
        deadline = time.monotonic() + timeout
        clusters: list[str] = []
        while not clusters:
            clusters = rayservice_cluster_names(fetcher(Target("RayService", name, namespace)) or {})
            if not clusters and time.monotonic() > deadline:
                raise RuntimeError(f"RayService {name}: the operator created no RayCluster "
                                   f"within {timeout:.0f} s")
            if not clusters:
                time.sleep(1)
        targets += [Target("RayCluster", cluster, namespace) for cluster in clusters]
    for job in objects_of_kind(manifest, "RayJob"):
        if (job.get("spec") or {}).get("clusterSelector"):
            continue  # runs on a RayCluster of the release, awaited above
        targets.append(Target("RayCluster", rayjob_cluster_name(fetcher, job, namespace, timeout),
                              namespace))
    return targets


def rayjob_cluster_name(fetcher: KubeFetcher, job: dict[str, Any], namespace: str,
                        timeout: float) -> str:
    """The RayCluster the operator created for a RayJob (status.rayClusterName)."""
    name = job["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while True:
        cluster = ((fetcher(Target("RayJob", name, namespace)) or {}).get("status") or {}).get(
            "rayClusterName")
        if cluster:
            return cluster
        if time.monotonic() > deadline:
            raise RuntimeError(f"RayJob {name}: the operator created no RayCluster within "
                               f"{timeout:.0f} s")
        time.sleep(1)
