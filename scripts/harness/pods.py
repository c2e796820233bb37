"""Every pod template of a rendered object, the ones nested in KubeRay resources included.

General-purpose scanners skip templates inside RayCluster/RayService/RayJob/RayCronJob; this module is how
the harness applies pod policies and Kubernetes' PodTemplateSpec schema to them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator


@dataclass(frozen=True)
class PodTemplate:
    owner: str  # "RayCluster/name"
    path: str  # where in the owner: "spec.headGroupSpec.template"
    template: dict[str, Any]  # {metadata, spec}
    ray_node: bool  # a Ray head or worker (the operator adds probes and the ray start command)
    # Containers the KubeRay operator adds to the pods it creates from this template, as far as
    # Pod Security sees them: the head's autoscaler sidecar.
    sidecars: tuple[dict[str, Any], ...] = ()

    @property
    def spec(self) -> dict[str, Any]:
        return self.template.get("spec") or {}

    def as_created(self) -> dict[str, Any]:
        """{metadata, spec} of the pod the API server admits: the template plus the sidecars."""
        if not self.sidecars:
            return self.template
        spec = {**self.spec, "containers": [*(self.spec.get("containers") or []), *self.sidecars]}
        return {**self.template, "spec": spec}

    @property
    def where(self) -> str:
        return f"{self.owner} {self.path}"


def autoscaler_sidecar(spec: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The autoscaler container the operator adds to the head of a cluster with in-tree
    autoscaling: named "autoscaler", with autoscalerOptions.securityContext when set (KubeRay
    ray-operator v1.6.2, common/pod.go). The wait-gcs-ready init container of workers copies the
    Ray container's securityContext, so it cannot change a Pod Security verdict: left out."""
    if not spec.get("enableInTreeAutoscaling"):
        return ()
    container: dict[str, Any] = {"name": "autoscaler"}
    security = (spec.get("autoscalerOptions") or {}).get("securityContext")
    if security is not None:
        container["securityContext"] = security
    return (container,)


def _ray_cluster_templates(owner: str, spec: dict[str, Any], prefix: str) -> Iterator[PodTemplate]:
    head = (spec.get("headGroupSpec") or {}).get("template")
    if head is not None:
        yield PodTemplate(owner, f"{prefix}headGroupSpec.template", head, True, autoscaler_sidecar(spec))
    for index, group in enumerate(spec.get("workerGroupSpecs") or []):
        name = group.get("groupName", index)
        yield PodTemplate(owner, f"{prefix}workerGroupSpecs[{name}].template", group.get("template") or {}, True)


def pod_templates(obj: dict[str, Any]) -> Iterator[PodTemplate]:
    kind = obj.get("kind")
    owner = f"{kind}/{(obj.get('metadata') or {}).get('name')}"
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield PodTemplate(owner, "<pod>", {"metadata": obj.get("metadata", {}), "spec": spec}, False)
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield PodTemplate(owner, "spec.template", spec.get("template") or {}, False)
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield PodTemplate(owner, "spec.jobTemplate.spec.template", job.get("template") or {}, False)
    elif kind == "RayCluster":
        yield from _ray_cluster_templates(owner, spec, "spec.")
    elif kind == "RayService":
        yield from _ray_cluster_templates(owner, spec.get("rayClusterConfig") or {}, "spec.rayClusterConfig.")
    elif kind in ("RayJob", "RayCronJob"):
        job, prefix = _ray_job_spec(kind, spec)
        yield from _ray_cluster_templates(owner, job.get("rayClusterSpec") or {}, f"{prefix}rayClusterSpec.")
        if job.get("submitterPodTemplate"):
            yield PodTemplate(owner, f"{prefix}submitterPodTemplate", job["submitterPodTemplate"], False)


def _ray_job_spec(kind: str, spec: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(RayJob spec, its path) of a RayJob, or of the jobTemplate of a RayCronJob (the RayJob
    spec of every run)."""
    if kind == "RayCronJob":
        return spec.get("jobTemplate") or {}, "spec.jobTemplate."
    return spec, "spec."


def ray_cluster_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(where, RayCluster spec, owned by another Ray resource) for every Ray cluster in obj."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    owner = f"{kind}/{(obj.get('metadata') or {}).get('name')}"
    if kind == "RayCluster":
        yield owner, spec, False
    elif kind == "RayService" and spec.get("rayClusterConfig"):
        yield f"{owner} spec.rayClusterConfig", spec["rayClusterConfig"], True
    elif kind in ("RayJob", "RayCronJob"):
        job, prefix = _ray_job_spec(kind, spec)
        if job.get("rayClusterSpec"):
            yield f"{owner} {prefix}rayClusterSpec", job["rayClusterSpec"], True
