"""One local cluster (real API server, controllers and KubeRay operator; simulated nodes) for the
whole test session, torn down at the end; each case in a namespace of its own.

Every pod here is scheduled onto a simulated node: kwok marks it Running and Ready without
running a container. These tests prove what the API server, admission, the scheduler, the
controllers and the operator do with the chart, never that Ray itself runs.

A missing tool fails the session with what to run: these tests must run wherever `make test`
does (CI included), so they never skip.
"""
from __future__ import annotations

import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from cluster.local import fleet, lifecycle, prerequisites
from cluster.local.controlplane import Layout
from cluster.local.kubectl import Kubectl
from cluster.local.release import (Release, helm_in, install, ray_targets,
                                   restricted_namespace)
from harness.readiness import KubeFetcher, Target, TimedOut, TargetFailed, wait_until_ready
from harness.render import make_offline_copy, parse_manifests
from harness.scenarios import Scenario, scenarios
from harness.tools import CHART_DIR, RELEASE, ToolMissing, crd_dir
from harness.versions import HELM_MAJORS

SCENARIOS = scenarios()
READY_TIMEOUT = 300

# Room for every scenario installed at once with both helm majors (simulated: capacity is free).
# With every overlay's prerequisites created, all of their GPU workers get scheduled at once.
TEST_FLEET = fleet.Fleet(pools=(fleet.Pool("cpu", 16, "64", "256Gi"),
                                fleet.Pool("gpu", 8, "64", "256Gi", gpus=8)),
                         volumes=40)


def namespace_for(scenario: Scenario, major: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", scenario.name.lower().removesuffix(".yaml"))
    slug = slug.removeprefix("charts-ray-platform-").removesuffix("-values").strip("-")
    return f"case-{slug}-h{major}"[:63].rstrip("-")


@dataclass
class LocalCluster:
    layout: Layout
    kubectl: Kubectl
    chart: Path
    fetcher: KubeFetcher = field(init=False)

    def __post_init__(self) -> None:
        self.fetcher = KubeFetcher(str(self.layout.kubeconfig))

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    def namespace(self, name: str) -> str:
        self.kubectl.apply([restricted_namespace(name, {"ray-platform.io/test": "cluster"})])
        return name

    def get(self, *args: str) -> dict[str, Any]:
        return self.kubectl.get(*args)

    def wait_ready(self, targets: list[Target], timeout: float = READY_TIMEOUT,
                   fail_after: float = 30) -> None:
        wait_until_ready(targets, self.fetcher, timeout=timeout, interval=2,
                         report=lambda _line: None, fail_after=fail_after)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    with tempfile.TemporaryDirectory(prefix="ray-platform-cluster-") as workdir:
        layout = Layout(state_dir=Path(workdir) / "state", name="ray-platform-test")
        try:
            kubectl = lifecycle.up(layout, TEST_FLEET, say=lambda _line: None)
        except ToolMissing as missing:
            pytest.fail(f"the local cluster needs the Go-built tools: {missing}", pytrace=False)
        try:
            # The Prometheus Operator's CRDs, so that PodMonitors and the PrometheusRule are
            # checked by the live API too.
            kubectl.apply_files(sorted((crd_dir() / "prometheus-operator-v0.93.0").glob("*.yaml")))
            chart = make_offline_copy(CHART_DIR, Path(workdir) / "chart")
            yield LocalCluster(layout, kubectl, chart)
        finally:
            lifecycle.down(layout, say=lambda _line: None)


@dataclass
class Installed:
    """One scenario installed with one helm major, and what became of it."""

    scenario: Scenario
    major: int
    release: Release
    install_error: str | None = None
    ready_error: str | None = None
    manifest: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def create_prerequisites(cluster: LocalCluster, release: Release, major: int) -> None:
    """What the overlay tells its user to create first (existing Secrets, the model PVC, an
    existing ServiceAccount, Grafana's namespace), found in the release's own rendering."""
    rendered = helm_in(cluster.kubeconfig, "template", release.name, str(release.chart),
                       "--namespace", release.namespace, *release.values_args(), major=major)
    if rendered.returncode != 0:
        return  # the install below reports the same error
    needed = prerequisites.find(parse_manifests(rendered.stdout), release.namespace)
    if needed:
        cluster.kubectl.apply(needed.objects(release.namespace))


def install_and_wait(cluster: LocalCluster, scenario: Scenario, major: int) -> Installed:
    started = time.monotonic()
    namespace = cluster.namespace(namespace_for(scenario, major))
    # One release name per helm major: a scenario that writes into a namespace of its own
    # (dashboards into Grafana's) would otherwise collide there with its twin of the other major.
    release = Release(f"{RELEASE}-h{major}", namespace, cluster.chart, scenario.values_files)
    installed = Installed(scenario, major, release)
    create_prerequisites(cluster, release, major)
    result = install(release, cluster.kubeconfig, major)
    if result.returncode != 0:
        installed.install_error = result.stderr.strip()
        return installed
    manifest = helm_in(cluster.kubeconfig, "get", "manifest", release.name, "-n", namespace,
                       major=major)
    installed.manifest = parse_manifests(manifest.stdout)
    try:
        cluster.wait_ready(ray_targets(cluster.fetcher, installed.manifest, namespace))
    except (TimedOut, TargetFailed, RuntimeError) as error:
        installed.ready_error = str(error)
    installed.seconds = time.monotonic() - started
    return installed


@pytest.fixture(scope="session")
def installed_cases(local_cluster: LocalCluster) -> dict[tuple[str, int], Installed]:
    """Every scenario with every helm major, installed side by side and awaited together."""
    cases = [(scenario, major) for scenario in SCENARIOS for major in HELM_MAJORS]
    with ThreadPoolExecutor(max_workers=6) as pool:
        done = list(pool.map(lambda case: install_and_wait(local_cluster, *case), cases))
    return {(item.scenario.name, item.major): item for item in done}


@pytest.fixture(params=[(s, m) for s in SCENARIOS for m in HELM_MAJORS],
                ids=lambda case: f"{case[0]}-helm{case[1]}")
def installed(request: pytest.FixtureRequest,
              installed_cases: dict[tuple[str, int], Installed]) -> Installed:
    scenario, major = request.param
    return installed_cases[(scenario.name, major)]


@pytest.fixture
def fresh_namespace(local_cluster: LocalCluster, request: pytest.FixtureRequest
                    ) -> Callable[[str], str]:
    """A restricted namespace per test, deleted afterwards (objects and all)."""
    created: list[str] = []

    def _make(prefix: str) -> str:
        name = f"{prefix}-{len(created)}-{int(time.time() * 1000) % 100000}"
        created.append(local_cluster.namespace(name))
        return name

    yield _make
    for name in created:
        local_cluster.kubectl.run("delete", "namespace", name, "--wait=false", check=False)
