"""Upgrades keep stateful and user-facing objects: nothing the previous release created (the
last `ray-platform-*` tag, else the committed baseline) is renamed or dropped unless CHANGELOG.md
says so; and any value the chart generates survives upgrades (`lookup`)."""
from __future__ import annotations

import re

import pytest

from harness.scenarios import Scenario, scenarios
from harness.tools import CHART_DIR, REPO
from release import upgrade_baseline

CHANGELOG = (REPO / "CHANGELOG.md").read_text()


@pytest.fixture(scope="module")
def previous() -> tuple[str, dict[str, list[str]]]:
    return upgrade_baseline.previous_release()


@pytest.mark.parametrize("scenario", scenarios(), ids=str)
def test_no_stateful_object_is_dropped_silently(render, previous, scenario: Scenario) -> None:
    source, before = previous
    if scenario.name not in before:
        pytest.skip(f"{scenario} is newer than {source}")
    now = set(upgrade_baseline.stateful_objects(render(scenario)))
    gone = [name for name in before[scenario.name] if name not in now and f"`{name}`" not in CHANGELOG]
    assert not gone, f"{scenario}: objects of {source} renamed or dropped without a CHANGELOG.md note: {gone}"


def test_the_check_sees_a_rename(render, previous) -> None:
    source, before = previous
    renamed = upgrade_baseline.stateful_objects(render(scenarios()[0], set_values=("stableDiffusion.name=renamed",)))
    assert set(before["defaults"]) - set(renamed), "renaming the RayService must be noticed"


def test_generated_values_survive_upgrades() -> None:
    # A template that generates a value (random password, key) must reuse the stored one via
    # `lookup`, or every `helm upgrade` rotates it.
    generators = re.compile(r"\b(randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|genPrivateKey|genCA|uuidv4)\b")
    offenders = [path.name for path in (CHART_DIR / "templates").rglob("*")
                 if path.is_file() and generators.search(path.read_text()) and "lookup" not in path.read_text()]
    assert not offenders, f"generated values without lookup: {offenders}"
