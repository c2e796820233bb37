"""The kuberay-operator dependency: Chart.lock agrees with Chart.yaml, and where `helm dependency
build` has fetched the archive, the real chart (subchart included) renders and validates."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import helm
from harness.check import check_objects
from harness.crds import CrdRegistry
from harness.render import Renderer, RenderRequest, dependency_archive, of_kind
from harness.tools import CHART_DIR
from harness.versions import SUPPORTED_KUBE_MINORS

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
