"""The values scenarios every check runs on: the defaults, each overlay in values/, each example in
values/examples/, and each chart-testing scenario in charts/ray-platform/ci/. Every matrix test
(render, validation, Pod Security, upgrade safety, the local cluster's install tests) takes them all."""
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
    for folder in (VALUES_DIR, VALUES_DIR / "examples", CI_VALUES_DIR):
        for path in sorted(folder.glob("*.yaml")):
            found.append(Scenario(str(path.relative_to(REPO)), (path,)))
    return found


def bad_value_cases() -> list[dict]:
    """The bad-values cases, {id, values, expect}, of every topic file in tests/data/bad_values/
    (one file per feature, so that work on two features touches two files)."""
    import yaml  # only the test suites need it, and they have the virtualenv

    from harness.tools import TEST_DATA_DIR

    return [case for path in sorted((TEST_DATA_DIR / "bad_values").glob("*.yaml"))
            for case in yaml.safe_load(path.read_text())]
