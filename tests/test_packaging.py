"""`make package` and `make repo-index` produce an archive and index that helm accepts
(Artifact Hub metadata: tests/test_artifacthub.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import helm
from harness.render import dependency_archive, parse_manifests
from harness.tools import CHART_DIR, VALUES_DIR
from release import package_chart

CHART = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())


def helm_output(*args: str) -> str:
    proc = helm.run(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def offline_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_chart.package(tmp_path_factory.mktemp("dist"), offline=True)


def test_archive_is_a_chart_helm_accepts(offline_archive: Path) -> None:
    shown = yaml.safe_load(helm_output("show", "chart", str(offline_archive)))
    assert (shown["name"], shown["version"]) == ("ray-platform", CHART["version"])
    objects = parse_manifests(helm_output("template", "ray", str(offline_archive), "-f", str(VALUES_DIR / "dev.yaml")))
    assert {"RayCluster", "RayService"} <= {obj["kind"] for obj in objects}


def test_archive_carries_the_serve_app_and_not_bytecode(offline_archive: Path) -> None:
    import tarfile

    with tarfile.open(offline_archive) as archive:
        names = archive.getnames()
    assert "ray-platform/files/serve/ray_platform_sd/app.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_repo_index_points_at_the_base_url(offline_archive: Path) -> None:
    index = yaml.safe_load(package_chart.repo_index(offline_archive.parent, "https://charts.example.com/ray").read_text())
    (entry,) = index["entries"]["ray-platform"]
    assert entry["urls"] == [f"https://charts.example.com/ray/{offline_archive.name}"]
    assert entry["version"] == CHART["version"]


def test_package_without_the_subchart_needs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package_chart, "fetch_dependency", lambda: False)
    with pytest.raises(SystemExit, match="OFFLINE=1"):
        package_chart.package(tmp_path, offline=False)


@pytest.mark.skipif(dependency_archive() is None, reason="the kuberay-operator archive is not in "
                    "charts/ray-platform/charts/ (`helm dependency build` needs the KubeRay Helm repository)")
def test_archive_with_the_subchart(tmp_path: Path) -> None:
    archive = package_chart.package(tmp_path, offline=False)
    objects = parse_manifests(helm_output("template", "ray", str(archive)))
    assert "Deployment" in {obj["kind"] for obj in objects}


def test_changelog_has_the_chart_version() -> None:
    changelog = (CHART_DIR.parent.parent / "CHANGELOG.md").read_text()
    assert f"## {CHART['version']}" in changelog


def test_archive_carries_the_chart_readme(offline_archive: Path) -> None:
    assert helm_output("show", "readme", str(offline_archive)).strip() == (CHART_DIR / "README.md").read_text().strip()
