"""Bad values are refused by helm itself (schema or template `fail`), with both majors, and the
message names the offending key."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.render import Renderer, RenderRequest, normalise_paths

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "cases" / "bad_values.yaml").read_text())


def test_enough_distinct_cases() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["id"])
def test_bad_values_are_refused_naming_the_key(renderer: Renderer, helm_major: int,
                                               case: dict[str, Any], tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(case["values"]))
    error = renderer.error(RenderRequest((values,), helm_major))
    assert error is not None, f"helm {helm_major} rendered {case['id']} without complaint"
    message = normalise_paths(error)
    assert "goroutine" not in message and "panic" not in message
    missing = [text for text in case["expect"] if text not in message]
    assert not missing, f"helm {helm_major} message lacks {missing}:\n{message}"
