"""Every scenario renders with both helm majors, identically, for every supported Kubernetes."""
from __future__ import annotations

import pytest

from harness.render import RenderError, of_kind
from harness.scenarios import Scenario
from harness.versions import HELM_MAJORS, SUPPORTED_KUBE_MINORS


def test_scenario_renders(render, scenario: Scenario, helm_major: int) -> None:
    objects = render(scenario, helm_major)
    # A Ray cluster of some kind: the RayCluster, a RayService's, a RayJob's or a RayCronJob's.
    ray = [obj for kind in ("RayCluster", "RayService", "RayJob", "RayCronJob") for obj in of_kind(objects, kind)]
    assert ray, f"{scenario} rendered no RayCluster, RayService, RayJob or RayCronJob"
    for obj in objects:
        assert obj["metadata"]["name"], obj


def test_helm_majors_render_the_same_manifests(render, scenario: Scenario) -> None:
    first, *others = (render(scenario, major) for major in HELM_MAJORS)
    for major, objects in zip(HELM_MAJORS[1:], others):
        assert objects == first, f"helm {major} and helm {HELM_MAJORS[0]} differ for {scenario}"


def test_oldest_supported_kubernetes_renders_the_same(render, scenario: Scenario) -> None:
    # The default render uses helm's own Kubernetes version (the newest supported or later).
    assert render(scenario, kube_version=f"{SUPPORTED_KUBE_MINORS[0]}.0") == render(scenario)


def test_older_kubernetes_is_refused_by_kube_version(render, scenario: Scenario) -> None:
    major, minor = SUPPORTED_KUBE_MINORS[0].split(".")
    older = f"{major}.{int(minor) - 1}.0"
    with pytest.raises(RenderError, match="kubeVersion"):
        render(scenario, kube_version=older)
