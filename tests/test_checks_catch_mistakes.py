"""The checks can fail: each mutation of the rendered default RayCluster is caught by the check
that owns it (and the unmutated object passes, see test_validation.py)."""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from harness.check import check_objects
from harness.crds import CrdRegistry
from harness.render import of_kind
from harness.versions import SUPPORTED_KUBE_MINORS

Mutation = Callable[[dict[str, Any]], None]


def head(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["headGroupSpec"]


def head_container(obj: dict[str, Any]) -> dict[str, Any]:
    return head(obj)["template"]["spec"]["containers"][0]


def worker(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["workerGroupSpecs"][0]


def worker_container(obj: dict[str, Any]) -> dict[str, Any]:
    return worker(obj)["template"]["spec"]["containers"][0]


MUTATIONS: dict[str, tuple[str, Mutation]] = {
    "unknown field in spec": ("crd-schema", lambda o: o["spec"].update(bogus=1)),
    "unknown upgrade strategy": ("crd-schema", lambda o: o["spec"]["upgradeStrategy"].update(type="Rolling")),
    "container field typo": ("kubernetes-schema", lambda o: head_container(o).update(imagePullPolicyy="Always")),
    "port as string": ("kubernetes-schema", lambda o: head_container(o)["ports"][0].update(containerPort="x")),
    "no containers": ("operator-rules", lambda o: head(o)["template"]["spec"].update(containers=[])),
    "min above max": ("operator-rules", lambda o: worker(o).update(minReplicas=5, maxReplicas=1)),
    "negative max": ("operator-rules", lambda o: worker(o).update(maxReplicas=-1)),
    "rayStartParams labels": ("operator-rules", lambda o: worker(o)["rayStartParams"].update(labels="a=b")),
    "resources twice": ("operator-rules", lambda o: (worker(o).update(resources={"CPU": "1"}),
                                                     worker(o)["rayStartParams"].update({"num-cpus": "1"}))),
    "token auth on old ray": ("operator-rules", lambda o: o["spec"].update(rayVersion="2.40.0")),
    "token auth without version": ("operator-rules", lambda o: o["spec"].pop("rayVersion")),
    "negative idle timeout": ("operator-rules", lambda o: o["spec"]["autoscalerOptions"].update(idleTimeoutSeconds=-1)),
    "autoscaler v2 without in-tree": ("operator-rules", lambda o: (
        o["spec"].update(enableInTreeAutoscaling=False),
        head_container(o).setdefault("env", []).append({"name": "RAY_enable_autoscaler_v2", "value": "1"}))),
    "legacy ft annotation": ("operator-rules", lambda o: (
        o["spec"].update(gcsFaultToleranceOptions={"redisAddress": "r:6379"}),
        head(o)["template"]["metadata"].setdefault("annotations", {}).update({"ray.io/ft-enabled": "true"}))),
    "REDIS_PASSWORD with ft": ("operator-rules", lambda o: (
        o["spec"].update(gcsFaultToleranceOptions={"redisAddress": "r:6379"}),
        head_container(o).setdefault("env", []).append({"name": "REDIS_PASSWORD", "value": "x"}))),
    "name too long": ("operator-rules", lambda o: o["metadata"].update(name="r" * 54)),
    "image does not match rayVersion": ("image-version", lambda o: head_container(o).update(image="rayproject/ray:2.59.0-py311")),
    "privilege escalation": ("pod-security", lambda o: worker_container(o)["securityContext"].update(allowPrivilegeEscalation=True)),
    "capabilities kept": ("pod-security", lambda o: worker_container(o)["securityContext"].pop("capabilities")),
    "runs as root": ("pod-security", lambda o: (worker_container(o)["securityContext"].update(runAsUser=0))),
    "no seccomp": ("pod-security", lambda o: (worker_container(o)["securityContext"].pop("seccompProfile"),
                                                         worker(o)["template"]["spec"]["securityContext"].pop("seccompProfile"))),
    "host network": ("pod-security", lambda o: head(o)["template"]["spec"].update(hostNetwork=True)),
    "autoscaler privileged": ("pod-security", lambda o: o["spec"]["autoscalerOptions"]["securityContext"].update(allowPrivilegeEscalation=True)),
    "no memory limit": ("resources", lambda o: head_container(o)["resources"]["limits"].pop("memory")),
    "latest tag": ("image-tag", lambda o: worker_container(o).update(image="rayproject/ray:latest")),
    "untagged image": ("image-tag", lambda o: worker_container(o).update(image="rayproject/ray")),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation_is_caught(default_objects, crds: CrdRegistry, name: str) -> None:
    check, mutate = MUTATIONS[name]
    cluster = copy.deepcopy(of_kind(default_objects, "RayCluster")[0])
    mutate(cluster)
    problems = check_objects([cluster], crds, [SUPPORTED_KUBE_MINORS[-1]])
    assert check in {p.check for p in problems}, f"{name}: {check} did not flag it; found {problems}"


def test_probe_policy_applies_to_plain_workloads() -> None:
    from harness.pods import pod_templates
    from harness.rules import probe_problems

    deployment = {"kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}
    (pod,) = pod_templates(deployment)
    assert list(probe_problems(pod)) == ["container web: no readinessProbe"]
