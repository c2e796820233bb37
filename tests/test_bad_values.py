"""Bad values are refused by helm itself (schema or template `fail`), with both majors, and the
message names the offending key."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.render import Renderer, RenderRequest, normalise_paths
from harness.scenarios import bad_value_cases
from harness.versions import HELM_MAJORS

CASES: list[dict[str, Any]] = bad_value_cases()
# Every case with the newest helm major; every third case with the older one too. A refusal's
# text comes from the schema validator or from a template `fail`, and every topic file mixes
# both, so each kind reaches every major from every topic; leaving the older major the rest is
# what keeps the offline suite under a minute on 2 cores (each render is a helm process).
PAIRS: list[tuple[int, dict[str, Any]]] = [
    (major, case) for index, case in enumerate(CASES) for major in HELM_MAJORS
    if major == HELM_MAJORS[-1] or index % 3 == 0]


def test_enough_distinct_cases() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)) >= 25


def write_shared(path: Path, text: str) -> Path:
    """Write a file that another worker may be writing, with the same text, at the same time."""
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(text)
    staged.replace(path)
    return path


@pytest.fixture(scope="module")
def case_files(renderer: Renderer, shared_dir: Path) -> dict[str, Path]:
    """Each case as a values file, all rendered up front in parallel (two per case). The files
    are where every worker finds them, so each case renders once per run."""
    folder = shared_dir / "bad-values"
    folder.mkdir(exist_ok=True)
    files = {}
    for case in CASES:
        files[case["id"]] = write_shared(folder / f"{case['id']}.yaml", yaml.safe_dump(case["values"]))
    renderer.prefetch(RenderRequest((files[case["id"]],), major) for major, case in PAIRS)
    return files


@pytest.mark.parametrize("helm_major, case", PAIRS,
                         ids=[f"helm{major}-{case['id']}" for major, case in PAIRS])
def test_bad_values_are_refused_naming_the_key(renderer: Renderer, helm_major: int,
                                               case: dict[str, Any], case_files: dict[str, Path]) -> None:
    error = renderer.error(RenderRequest((case_files[case["id"]],), helm_major))
    assert error is not None, f"helm {helm_major} rendered {case['id']} without complaint"
    message = normalise_paths(error)
    assert "goroutine" not in message and "panic" not in message
    missing = [text for text in case["expect"] if text not in message]
    assert not missing, f"helm {helm_major} message lacks {missing}:\n{message}"
