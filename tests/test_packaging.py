"""`make package` and `make repo-index` produce an archive and index that helm accepts, and the
Artifact Hub metadata agrees with the chart."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

import package_chart
from harness.render import dependency_archive, parse_manifests
from harness.tools import CHART_DIR, VALUES_DIR, helm_binary

CHART = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def helm(*args: str) -> str:
    proc = subprocess.run([str(helm_binary(4)), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def offline_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_chart.package(tmp_path_factory.mktemp("dist"), offline=True, helm=str(helm_binary(4)))


def test_archive_is_a_chart_helm_accepts(offline_archive: Path) -> None:
    shown = yaml.safe_load(helm("show", "chart", str(offline_archive)))
    assert (shown["name"], shown["version"]) == ("ray-platform", CHART["version"])
    objects = parse_manifests(helm("template", "ray", str(offline_archive), "-f", str(VALUES_DIR / "dev.yaml")))
    assert {"RayCluster", "RayService"} <= {obj["kind"] for obj in objects}


def test_archive_carries_the_serve_app_and_not_bytecode(offline_archive: Path) -> None:
    import tarfile

    with tarfile.open(offline_archive) as archive:
        names = archive.getnames()
    assert "ray-platform/files/serve/ray_platform_sd/app.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_repo_index_points_at_the_base_url(offline_archive: Path) -> None:
    index = yaml.safe_load(package_chart.repo_index(offline_archive.parent, "https://charts.example.com/ray",
                                                    str(helm_binary(4))).read_text())
    (entry,) = index["entries"]["ray-platform"]
    assert entry["urls"] == [f"https://charts.example.com/ray/{offline_archive.name}"]
    assert entry["version"] == CHART["version"]


def test_package_without_the_subchart_needs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package_chart, "fetch_dependency", lambda helm: False)
    with pytest.raises(SystemExit, match="OFFLINE=1"):
        package_chart.package(tmp_path, offline=False, helm=str(helm_binary(4)))


@pytest.mark.skipif(dependency_archive() is None, reason="the kuberay-operator archive is not in "
                    "charts/ray-platform/charts/ (`helm dependency build` needs the KubeRay Helm repository)")
def test_archive_with_the_subchart(tmp_path: Path) -> None:
    archive = package_chart.package(tmp_path, offline=False, helm=str(helm_binary(4)))
    objects = parse_manifests(helm("template", "ray", str(archive)))
    assert "Deployment" in {obj["kind"] for obj in objects}


def test_artifact_hub_images_match_the_values() -> None:
    listed = {entry["image"] for entry in yaml.safe_load(CHART["annotations"]["artifacthub.io/images"])}
    image = VALUES["image"]
    gpu_tag = VALUES["stableDiffusion"]["workerGroups"]["gpu"]["image"]["tag"]
    assert listed == {f"{image['repository']}:{image['tag']}", f"{image['repository']}:{gpu_tag}"}


def test_changelog_has_the_chart_version() -> None:
    changelog = (CHART_DIR.parent.parent / "CHANGELOG.md").read_text()
    assert f"## {CHART['version']}" in changelog
