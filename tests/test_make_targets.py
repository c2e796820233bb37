"""Each make target builds only what it uses: `make check` on a fresh clone needs the virtualenv
and helm, not the control plane, the real node's Debian packages or its images. Read from what
`make -n` would run (a dry run: nothing is built), with the requirements taken as changed
(`-W`) so that the virtualenv step shows too."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from bootstrap.go_tools import GROUPS
from harness.tools import REPO

ALL = frozenset(GROUPS)
# target -> the Go tool groups it builds. Targets whose recipe runs `$(MAKE)` (make executes
# those lines even in a dry run) are left out: serve, up.
EXPECTED = {
    "check": {"helm"},
    "lint": {"helm"},
    "generate": {"helm"},
    "render": {"helm"},
    "package": {"helm"},
    "repo-index": {"helm"},
    "release": {"helm", "release"},
    "release-local": {"helm", "release"},
    "setup": ALL,
    "test": ALL,
}
LIGHT = [target for target, groups in EXPECTED.items() if groups != ALL]
GO_TOOLS = re.compile(r"-m bootstrap\.go_tools(?: --group (\S+))?\s*$")
# What the light targets must not start: apt-get steps, the real node's image build.
HEAVY_STEPS = ("install_debian_packages.sh", "install_promtool.sh", "images.build")


def dry_run(target: str) -> list[str]:
    if shutil.which("make") is None:
        pytest.fail("make is not installed (apt-get install make)")
    result = subprocess.run(
        ["make", "-n", "-W", "requirements/test.txt", target, "VALUES=values/dev.yaml",
         "REGISTRY=oci://registry.example.com/charts", "URL=https://charts.example.com"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def groups_built(lines: list[str]) -> set[str]:
    groups: set[str] = set()
    for line in lines:
        match = GO_TOOLS.search(line)
        if match:
            groups |= {match.group(1)} if match.group(1) else set(ALL)
    return groups


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_each_target_builds_the_tool_groups_it_uses(target: str) -> None:
    lines = dry_run(target)
    assert groups_built(lines) == EXPECTED[target]
    assert any("pip install" in line for line in lines), "the virtualenv step is missing"


@pytest.mark.parametrize("target", sorted(LIGHT))
def test_light_targets_start_no_system_install_and_no_image_build(target: str) -> None:
    lines = dry_run(target)
    assert not [line for line in lines if any(step in line for step in HEAVY_STEPS)]
    # The harness's requirements only: not the Serve app's Ray and torch (requirements/serve.txt).
    installs = [line for line in lines if "pip install" in line]
    assert installs and all("requirements/test.txt" in line and "serve.txt" not in line
                            for line in installs), installs


def test_every_group_has_a_target() -> None:
    for group in GROUPS:
        assert groups_built(dry_run(f"tools-{group}")) == {group}
