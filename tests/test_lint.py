"""`make lint`'s checks run in the test suite too, so CI enforces them."""
from __future__ import annotations

from pathlib import Path

import pytest

import lint


@pytest.mark.parametrize("name", sorted(lint.CHECKS))
def test_lint_check_passes(name: str) -> None:
    problems = lint.CHECKS[name]()
    assert not problems, "\n".join(problems)


def test_yamllint_catches_a_broken_overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rayCluster:\n  enabled: true\n  enabled: false\n")
    monkeypatch.setattr(lint, "yaml_files", lambda: [bad])
    assert any("duplication" in problem for problem in lint.yamllint())
