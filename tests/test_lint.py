"""`make lint`'s checks run in the test suite too, so CI enforces them."""
from __future__ import annotations

from pathlib import Path

import pytest

from release import lint


@pytest.mark.parametrize("name", sorted(lint.CHECKS))
def test_lint_check_passes(name: str) -> None:
    problems = lint.CHECKS[name]()
    assert not problems, "\n".join(problems)


def test_yamllint_catches_a_broken_overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rayCluster:\n  enabled: true\n  enabled: false\n")
    monkeypatch.setattr(lint, "yaml_files", lambda: [bad])
    assert any("duplication" in problem for problem in lint.yamllint())


@pytest.mark.parametrize("released, complaints", [("0.1.0", 1), ("0.0.9", 0)])
def test_version_increment_against_the_last_tag(monkeypatch: pytest.MonkeyPatch, released: str, complaints: int) -> None:
    import subprocess

    monkeypatch.setattr(lint.upgrade_baseline, "last_release_tag", lambda: f"ray-platform-{released}")
    # As if `git diff --quiet <tag> -- charts/ray-platform` found changes.
    monkeypatch.setattr(lint.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    assert len(lint.version_increment()) == complaints
