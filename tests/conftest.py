"""Session-scoped fixtures: each (values, helm major) renders once per test run and is shared by
every test, across pytest-xdist's worker processes too (a render cache in the run's shared
temporary folder).

Tests that need one live thing per run run in one worker per live thing, one after the other as
they would without xdist: tests/cluster (the local cluster), tests/serve (the Serve tests' local
Ray), tests/e2e (a kind cluster) and tests/release (a registry, a chart repository and a local
cluster of their own) are four such units, started first because they take
longest; every other test goes to whichever worker is free. The local cluster runs no Ray (its
nodes are simulated) and the Serve tests' Ray listens on random loopback ports, so the two units
may run at the same time.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from harness.crds import CrdRegistry, registry
from harness.render import Renderer, RenderRequest
from harness.scenarios import Scenario, scenarios
from harness.tools import crd_dir
from harness.versions import HELM_MAJORS, SUPPORTED_KUBE_MINORS

SCENARIOS = scenarios()
LIVE_DIRS = ("tests/cluster/", "tests/serve/", "tests/e2e/", "tests/node/", "tests/release/")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's load scheduling, with the live tests as one unit. (xdist 3.8's xdist_group marker
    does nothing under pytest 9.2: it rewrites Item._nodeid, which pytest no longer reads.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling, WorkStealingScheduling

    if not _live_tests_selected(config):
        # Only independent tests: work stealing balances the end of the run best (the offline
        # suite took 54-58 s with it against 65-72 s with one-test scopes, on 2 cores).
        return WorkStealingScheduling(config, log)

    class LiveTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((folder for folder in LIVE_DIRS if nodeid.startswith(folder)), nodeid)

    return LiveTestsTogether(config, log)


def _live_tests_selected(config: pytest.Config) -> bool:
    """Whether `-m` lets any live test through (each carries its suite's marker). pytest's own
    expression parser, so that `-m` means here what it means for selection."""
    expression = config.getoption("markexpr") or ""
    if not expression:
        return True
    from _pytest.mark.expression import Expression  # no public API for evaluating -m

    compiled = Expression.compile(expression)
    return any(compiled.evaluate(lambda name, /, **_kwargs: name == marker)
               for marker in ("cluster", "serve", "e2e", "node"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Live units, then slow tests, first: with several workers, a long test that starts last
    # ends the run alone.
    items.sort(key=lambda item: (not item.nodeid.startswith(LIVE_DIRS),
                                 item.get_closest_marker("slow") is None))


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every worker process of this test run sees (the run's temporary root)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def values_file(shared_dir: Path):
    """values_file(values) -> a values file that every worker finds under the same name: one
    per content (the render cache of a process is keyed by request, so a name must not be
    reused for other values)."""
    folder = shared_dir / "values-files"
    folder.mkdir(exist_ok=True)

    def _write(values: dict[str, Any]) -> Path:
        text = yaml.safe_dump(values, sort_keys=True)
        path = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
        if not path.is_file():
            staged = path.with_name(f".{path.name}.{os.getpid()}")  # another worker may write it too
            staged.write_text(text)
            staged.replace(path)
        return path

    return _write


@pytest.fixture(scope="session")
def renderer(shared_dir: Path) -> Iterator[Renderer]:
    offline = Renderer(cache_dir=shared_dir / "render-cache")
    yield offline
    offline.close()


@pytest.fixture(scope="session")
def crds() -> CrdRegistry:
    return registry(crd_dir())


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


@pytest.fixture(scope="session")
def scenario_of(values_file):
    """scenario_of(values) -> a Scenario of those values, in a file every worker finds."""
    def _make(values: dict[str, Any]) -> Scenario:
        path = values_file(values)
        return Scenario(path.name, (path,))
    return _make
