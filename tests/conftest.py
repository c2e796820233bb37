"""Session-scoped fixtures: each (values, helm major) renders once and is shared by every test."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from harness.crds import CrdRegistry
from harness.render import Renderer, RenderRequest
from harness.scenarios import Scenario, scenarios
from harness.tools import crd_dir
from harness.versions import HELM_MAJORS, SUPPORTED_KUBE_MINORS

SCENARIOS = scenarios()


@pytest.fixture(scope="session")
def renderer() -> Iterator[Renderer]:
    offline = Renderer()
    yield offline
    offline.close()


@pytest.fixture(scope="session")
def crds() -> CrdRegistry:
    return CrdRegistry(crd_dir())


# Requests most sessions make, rendered in parallel up front: every scenario with each helm major,
# at the oldest supported Kubernetes, and with the Prometheus Operator API present.
def _matrix_requests() -> list[RenderRequest]:
    requests = []
    for scenario in SCENARIOS:
        files = scenario.values_files
        requests += [RenderRequest(files, major) for major in HELM_MAJORS]
        requests.append(RenderRequest(files, HELM_MAJORS[-1], kube_version=f"{SUPPORTED_KUBE_MINORS[0]}.0"))
        requests.append(RenderRequest(files, HELM_MAJORS[-1], api_versions=("monitoring.coreos.com/v1",)))
    return requests


@pytest.fixture(scope="session")
def render(renderer: Renderer):
    """render(scenario, helm_major=4, **request fields) -> objects, cached per session."""
    renderer.prefetch(_matrix_requests())

    def _render(scenario: Scenario, helm_major: int = HELM_MAJORS[-1], **fields: Any) -> list[dict[str, Any]]:
        return renderer.render(RenderRequest(scenario.values_files, helm_major, **fields))

    return _render


@pytest.fixture(params=SCENARIOS, ids=str)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return request.param


@pytest.fixture(params=HELM_MAJORS, ids=lambda major: f"helm{major}")
def helm_major(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture(params=SUPPORTED_KUBE_MINORS, ids=lambda minor: f"k8s-{minor}")
def kube_minor(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def default_objects(render) -> list[dict[str, Any]]:
    return render(SCENARIOS[0])

