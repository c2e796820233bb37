"""Every object of every scenario passes every check: Kubernetes schemas per supported minor,
CRD schemas, the KubeRay operator's reconcile-time rules and the pod policies."""
from __future__ import annotations

from harness.check import schema_problems, semantic_problems
from harness.crds import CrdRegistry
from harness.kubernetes import is_custom_resource
from harness.pods import pod_templates
from harness.scenarios import Scenario


def test_kubernetes_schemas(render, crds: CrdRegistry, scenario: Scenario, kube_minor: str) -> None:
    objects = render(scenario)
    problems = [p for obj in objects for p in schema_problems(obj, crds, [kube_minor])
                if p.check == "kubernetes-schema"]
    assert not problems, "\n".join(map(str, problems))
    # Not vacuous: built-in objects or pod templates nested in custom resources were checked.
    checked = [o for o in objects if not is_custom_resource(o)] + [t for o in objects for t in pod_templates(o)]
    assert checked


def test_crd_schemas(render, crds: CrdRegistry, scenario: Scenario) -> None:
    objects = render(scenario)
    custom = [obj for obj in objects if is_custom_resource(obj)]
    assert custom and all(crds.knows(obj) for obj in custom)
    problems = [p for obj in custom for p in schema_problems(obj, crds, []) if p.check == "crd-schema"]
    assert not problems, "\n".join(map(str, problems))


def test_operator_rules_and_pod_policies(render, scenario: Scenario) -> None:
    objects = render(scenario)
    problems = [p for obj in objects for p in semantic_problems(obj)]
    assert not problems, "\n".join(map(str, problems))
