"""The kuberay-operator dependency: Chart.lock agrees with Chart.yaml, where `helm dependency
build` has fetched the archive the real chart (subchart included) renders and validates, and
everywhere the values that reach the subchart give its operator requests and limits."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import helm
from harness.check import check_objects, values_problems
from harness.crds import CrdRegistry
from harness.render import RenderError, Renderer, RenderRequest, dependency_archive, normalise_paths, of_kind
from harness.scenarios import Scenario, scenarios
from harness.tools import CHART_DIR, VALUES_DIR
from harness.values import merged_values
from harness.versions import SUPPORTED_KUBE_MINORS

SCENARIOS_DEFAULTS = Scenario("defaults", ())

NO_ARCHIVE = ("the kuberay-operator chart archive is not in charts/ray-platform/charts/ "
              "(`helm dependency build` needs network access to the KubeRay Helm repository)")


def test_chart_lock_is_in_sync_with_chart_yaml(tmp_path: Path, helm_major: int) -> None:
    # `helm dependency build` checks the lock digest before it needs the network: "out of sync"
    # is the lock's fault, anything after that (no repository, no network) is not.
    chart = tmp_path / "ray-platform"
    shutil.copytree(CHART_DIR, chart, ignore=shutil.ignore_patterns("charts"))
    proc = helm.run("dependency", "build", str(chart), major=helm_major, timeout=120,
                    env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert "out of sync" not in proc.stderr, proc.stderr


def test_out_of_sync_lock_is_detected(tmp_path: Path) -> None:
    chart = tmp_path / "ray-platform"
    shutil.copytree(CHART_DIR, chart, ignore=shutil.ignore_patterns("charts"))
    lock = chart / "Chart.lock"
    lock.write_text(lock.read_text().replace("version: 1.7.0", "version: 1.6.0"))
    proc = helm.run("dependency", "build", str(chart), timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert "out of sync" in proc.stderr


@pytest.mark.skipif(dependency_archive() is None, reason=NO_ARCHIVE)
def test_chart_with_kuberay_operator_renders_and_validates(crds: CrdRegistry, helm_major: int) -> None:
    renderer = Renderer(with_dependency=True)
    objects = renderer.render(RenderRequest((), helm_major))
    assert of_kind(objects, "Deployment"), "the operator Deployment is missing"
    problems = [p for p in check_objects(objects, crds, SUPPORTED_KUBE_MINORS) if p.check != "probes"]
    assert not problems, "\n".join(map(str, problems))
    off = Renderer(with_dependency=True)
    disabled = off.render(RenderRequest((), helm_major, set_values=("kuberay-operator.enabled=false",)))
    assert not of_kind(disabled, "Deployment")


# --- the operator's resources: the values that reach the subchart ----------------------------------
# Offline the subchart's Deployment is not rendered; its container takes `resources` from the
# values under `kuberay-operator`, so those are what the harness checks (check.values_problems).

@pytest.mark.parametrize("scenario", scenarios(), ids=str)
def test_every_scenario_gives_the_operator_requests_and_limits(scenario: Scenario) -> None:
    values = merged_values(scenario.values_files)
    assert not values_problems(values), values_problems(values)
    resources = values["kuberay-operator"]["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]


def test_production_gives_the_operator_more_than_the_defaults() -> None:
    defaults = merged_values(())["kuberay-operator"]["resources"]
    production = merged_values((VALUES_DIR / "production.yaml",))["kuberay-operator"]["resources"]
    assert production != defaults and production["limits"]["memory"] == "2Gi"


def test_an_operator_without_requests_is_flagged(tmp_path: Path) -> None:
    overlay = tmp_path / "no-requests.yaml"
    overlay.write_text("kuberay-operator:\n  resources:\n    requests: null\n")
    problems = values_problems(merged_values((overlay,)))
    assert [p.message.split(" is not set")[0] for p in problems] == [
        "kuberay-operator.resources.requests.cpu", "kuberay-operator.resources.requests.memory"]
    assert all(p.check == "resources" for p in problems)
    overlay.write_text("kuberay-operator:\n  enabled: false\n  resources: null\n")
    assert not values_problems(merged_values((overlay,)))


def test_the_schema_checks_the_operators_resources(render) -> None:
    good = render(SCENARIOS_DEFAULTS, set_values=("kuberay-operator.resources.limits.memory=1Gi",))
    assert good == render(SCENARIOS_DEFAULTS)  # the offline render has no operator Deployment
    with pytest.raises(RenderError) as refused:
        render(SCENARIOS_DEFAULTS, set_values=("kuberay-operator.resources.limits.memory=lots",))
    assert "kuberay-operator" in normalise_paths(str(refused.value)) and "memory" in str(refused.value)
    with pytest.raises(RenderError, match="cpus"):
        render(SCENARIOS_DEFAULTS, set_values=("kuberay-operator.resources.requests.cpus=1",))
