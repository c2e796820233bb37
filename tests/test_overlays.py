"""Overlays compose: values files merge, and an overlay that changes one worker group keeps the
others (worker groups are a map keyed by name; Helm would replace a list wholesale)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.render import of_kind
from harness.scenarios import Scenario, scenarios
from harness.tools import VALUES_DIR

OVERLAYS = sorted(VALUES_DIR.glob("*.yaml"))


def groups(objects, kind: str) -> dict[str, dict]:
    (obj,) = of_kind(objects, kind)
    spec = obj["spec"] if kind == "RayCluster" else obj["spec"]["rayClusterConfig"]
    return {group["groupName"]: group for group in spec["workerGroupSpecs"]}


def test_every_overlay_says_who_it_is_for() -> None:
    for path in OVERLAYS:
        first = path.read_text().splitlines()[0]
        assert first.startswith(f"# {path.stem}:"), f"{path.name} must start with '# {path.stem}: <who it is for>'"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_a_team_overlay_changes_one_group_and_keeps_the_others(render, overlay: Path, tmp_path: Path) -> None:
    base = render(Scenario(overlay.name, (overlay,)))
    before = groups(base, "RayCluster")
    target = sorted(before)[0]
    team = tmp_path / "my-team.yaml"
    team.write_text(yaml.safe_dump({"rayCluster": {"workerGroups": {
        target: {"maxReplicas": before[target]["maxReplicas"] + 3},
        "team-extra": {"minReplicas": 0, "maxReplicas": 1, "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}}}}}))
    after = groups(render(Scenario(f"{overlay.name}+team", (overlay, team))), "RayCluster")
    assert after[target]["maxReplicas"] == before[target]["maxReplicas"] + 3
    assert set(after) == set(before) | {"team-extra"}
    for name in before:
        if name != target:
            assert after[name] == before[name], f"{name} changed although the team overlay did not touch it"
    # Everything else in the overlay's render is unchanged too.
    assert of_kind(render(Scenario(f"{overlay.name}+team", (overlay, team))), "RayService") == of_kind(base, "RayService")


def test_later_files_win(render, tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("rayCluster:\n  autoscaler:\n    idleTimeoutSeconds: 11\n")
    second.write_text("rayCluster:\n  autoscaler:\n    idleTimeoutSeconds: 22\n")
    (cluster,) = of_kind(render(Scenario("a+b", (first, second))), "RayCluster")
    assert cluster["spec"]["autoscalerOptions"]["idleTimeoutSeconds"] == 22


def test_overlays_are_in_the_scenario_matrix() -> None:
    names = {scenario.name for scenario in scenarios()}
    assert all(f"values/{path.name}" in names for path in OVERLAYS)
