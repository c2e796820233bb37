"""Run every check on a list of rendered objects; the one entry point tests and `make check` share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from harness import kubernetes, rules
from harness.crds import CrdRegistry
from harness.pods import pod_templates
from harness.render import object_ref

CHECKS = ("kubernetes-schema", "crd-schema", "operator-rules", "image-version",
          "pod-security-restricted", "resources", "image-tag", "probes")


@dataclass(frozen=True)
class Problem:
    check: str  # one of CHECKS
    where: str  # "RayCluster/name spec.headGroupSpec.template"
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.message}"


def schema_problems(obj: dict[str, Any], crds: CrdRegistry, minors: Iterable[str]) -> list[Problem]:
    """The object against its schema: CRD for custom resources, else Kubernetes per minor; pod
    templates nested in custom resources also against Kubernetes' PodTemplateSpec per minor."""
    ref = object_ref(obj)
    found: list[Problem] = []
    minors = list(minors)
    if kubernetes.is_custom_resource(obj):
        found += [Problem("crd-schema", ref, message) for message in crds.problems(obj)]
        for pod in pod_templates(obj):
            wrapped = kubernetes.pod_template_object(pod.template, "check")
            for minor in minors:
                found += [Problem("kubernetes-schema", f"{pod.where} (Kubernetes {minor})", message)
                          for message in kubernetes.problems(wrapped, minor)]
    else:
        for minor in minors:
            found += [Problem("kubernetes-schema", f"{ref} (Kubernetes {minor})", message)
                      for message in kubernetes.problems(obj, minor)]
    return found


def semantic_problems(obj: dict[str, Any]) -> list[Problem]:
    ref = object_ref(obj)
    found = [Problem("operator-rules", ref, message) for message in rules.operator_problems(obj)]
    found += [Problem("image-version", ref, message) for message in rules.image_version_problems(obj)]
    found += [Problem("pod-security-restricted", ref, message)
              for message in rules.autoscaler_container_problems(obj)]
    for pod in pod_templates(obj):
        for policy, messages in rules.pod_problems(pod).items():
            found += [Problem(policy, pod.where, message) for message in messages]
    return found


def values_problems(values: dict[str, Any]) -> list[Problem]:
    """Checks on the merged values: what reaches objects the offline render cannot show (the
    kuberay-operator subchart's Deployment)."""
    return [Problem("resources", "values kuberay-operator.resources (the operator Deployment)", message)
            for message in rules.operator_resource_problems(values)]


def check_objects(objects: list[dict[str, Any]], crds: CrdRegistry, minors: Iterable[str]) -> list[Problem]:
    minors = list(minors)
    found: list[Problem] = []
    for obj in objects:
        found += schema_problems(obj, crds, minors)
        found += semantic_problems(obj)
    return found
