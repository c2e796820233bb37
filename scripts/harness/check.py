"""Run every check on a list of rendered objects; the one entry point tests and `make check` share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from harness import kubernetes, rules
from harness.crds import CrdRegistry
from harness.podsecurity import DEFAULT_LEVEL
from harness.pods import pod_templates
from harness.render import object_ref
from harness.versions import SUPPORTED_KUBE_MINORS

CHECKS = ("kubernetes-schema", "crd-schema", "operator-rules", "image-version",
          "pod-security", "resources", "image-tag", "probes", "pod-structure")


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


def semantic_problems(obj: dict[str, Any], minors: Iterable[str] = (SUPPORTED_KUBE_MINORS[-1],),
                      pod_security_level: str = DEFAULT_LEVEL) -> list[Problem]:
    """Operator rules and pod policies; Pod Security at pod_security_level for each minor (its
    rules differ between minors), a problem found in only some of them naming those."""
    ref = object_ref(obj)
    minors = list(minors)
    found = [Problem("operator-rules", ref, message) for message in rules.operator_problems(obj)]
    found += [Problem("image-version", ref, message) for message in rules.image_version_problems(obj)]
    found += [Problem("resources", ref, message) for message in rules.autoscaler_container_problems(obj)]
    for pod in pod_templates(obj):
        per_minor = {minor: rules.pod_problems(pod, pod_security_level, minor) for minor in minors}
        for policy in rules.POD_POLICIES:
            messages = dict.fromkeys(m for minor in minors for m in per_minor[minor][policy])
            for message in messages:
                where = [minor for minor in minors if message in per_minor[minor][policy]]
                suffix = "" if len(where) == len(minors) else f" (Kubernetes {', '.join(where)})"
                found.append(Problem(policy, pod.where, message + suffix))
    return found


def values_problems(values: dict[str, Any]) -> list[Problem]:
    """Checks on the merged values: what reaches objects the offline render cannot show (the
    kuberay-operator subchart's Deployment)."""
    return [Problem("resources", "values kuberay-operator.resources (the operator Deployment)", message)
            for message in rules.operator_resource_problems(values)]


def check_objects(objects: list[dict[str, Any]], crds: CrdRegistry, minors: Iterable[str],
                  pod_security_level: str = DEFAULT_LEVEL) -> list[Problem]:
    minors = list(minors)
    found: list[Problem] = []
    for obj in objects:
        found += schema_problems(obj, crds, minors)
        found += semantic_problems(obj, minors, pod_security_level)
    return found
