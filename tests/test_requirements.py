"""The pinned Python dependencies: exact pins, one version per package across files, and the Ray
the Serve tests install equal to the chart's default rayVersion."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness.tools import CHART_DIR, REPO

FILES = sorted((REPO / "requirements").glob("*.txt"))
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==([^\s;#]+)")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: '{line}' is not an exact pin (name==version)"
        found[match.group(1).lower().replace("_", "-")] = match.group(3)
    return found


def test_every_requirement_is_pinned_and_files_agree() -> None:
    seen: dict[str, tuple[str, str]] = {}
    for path in FILES:
        for name, version in pins(path).items():
            if name in seen:
                assert seen[name][1] == version, f"{name}: {seen[name][0]} pins {seen[name][1]}, {path.name} pins {version}"
            seen[name] = (path.name, version)
    assert "pytest" in seen and "kubernetes-validate" in seen


def test_serve_tests_run_the_charts_ray_version() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert pins(REPO / "requirements" / "serve.txt")["ray"] == values["rayVersion"]
