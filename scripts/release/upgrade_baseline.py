"""Upgrade safety: the stateful and user-facing objects of the previous release.

An upgrade must not rename or drop a RayCluster, RayService, PersistentVolumeClaim, Secret,
Service or ConfigMap without a note in CHANGELOG.md. The previous release is the newest git tag
`ray-platform-<version>` (rendered from that tag's chart); until a tag exists, it is the committed
baseline tests/data/upgrade/baseline-<version>.yaml, written from the first release with `--write`.

    python -m release.upgrade_baseline [--write]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

from harness.render import Renderer, RenderRequest
from harness.scenarios import scenarios
from harness.tools import CHART_DIR, REPO, TEST_DATA_DIR

STATEFUL_KINDS = ("RayCluster", "RayService", "PersistentVolumeClaim", "Secret", "Service", "ConfigMap")
BASELINE_DIR = TEST_DATA_DIR / "upgrade"
TAG_PREFIX = "ray-platform-"


def stateful_objects(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects if o.get("kind") in STATEFUL_KINDS)


def snapshot(renderer: Renderer) -> dict[str, list[str]]:
    """Scenario name -> its stateful objects, for every scenario the renderer's chart accepts."""
    found = {}
    for scenario in scenarios():
        error = renderer.error(RenderRequest(scenario.values_files, 4))
        if error is None:
            found[scenario.name] = stateful_objects(renderer.render(RenderRequest(scenario.values_files, 4)))
    return found


def last_release_tag() -> str | None:
    proc = subprocess.run(["git", "-C", str(REPO), "tag", "--list", f"{TAG_PREFIX}*", "--sort=-v:refname"],
                          capture_output=True, text=True, check=False)
    tags = proc.stdout.split()
    return tags[0] if tags else None


def previous_release() -> tuple[str, dict[str, list[str]]]:
    """(what it is, scenario -> stateful objects) of the previous release."""
    tag = last_release_tag()
    if tag is None:
        baselines = sorted(BASELINE_DIR.glob("baseline-*.yaml"))
        if not baselines:
            raise FileNotFoundError(f"no release tag and no baseline in {BASELINE_DIR}")
        return baselines[-1].name, yaml.safe_load(baselines[-1].read_text())
    with tempfile.TemporaryDirectory(prefix="ray-platform-previous-") as workdir:
        renderer = Renderer(chart_dir=chart_of_tag(tag, Path(workdir)))
        try:
            return tag, snapshot(renderer)
        finally:
            renderer.close()


def chart_of_tag(tag: str, workdir: Path) -> Path:
    """The chart as a release tag has it, extracted from git into workdir (the work tree untouched)."""
    chart_path = CHART_DIR.relative_to(REPO).as_posix()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", tag, chart_path],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / chart_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the baseline of the current chart version")
    args = parser.parse_args(argv)
    renderer = Renderer()
    try:
        current = snapshot(renderer)
    finally:
        renderer.close()
    if args.write:
        version = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"]
        path = BASELINE_DIR / f"baseline-{version}.yaml"
        header = (f"# Stateful and user-facing objects of ray-platform {version} per values scenario,\n"
                  "# written by `python -m release.upgrade_baseline --write` at release time; read by tests/test_upgrade_safety.py.\n")
        path.write_text(header + yaml.safe_dump(current, sort_keys=True))
        print(f"wrote {path}")
    else:
        print(yaml.safe_dump(current, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
