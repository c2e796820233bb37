"""The values scenarios every check runs on: the defaults, each overlay in values/, and each
chart-testing scenario in charts/ray-platform/ci/."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.tools import CI_VALUES_DIR, REPO, VALUES_DIR


@dataclass(frozen=True)
class Scenario:
    name: str
    values_files: tuple[Path, ...]

    def __str__(self) -> str:
        return self.name


def scenarios() -> list[Scenario]:
    found = [Scenario("defaults", ())]
    for folder in (VALUES_DIR, CI_VALUES_DIR):
        for path in sorted(folder.glob("*.yaml")):
            found.append(Scenario(str(path.relative_to(REPO)), (path,)))
    return found
