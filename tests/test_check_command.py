"""`make check VALUES=...` (harness.cli): passes on a good overlay, fails naming a typo'd key."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.tools import VALUES_DIR
from harness.versions import SUPPORTED_KUBE_MINORS


def test_dev_overlay_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(VALUES_DIR / "dev.yaml"), "--kube-version", "1.33"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "ok   crd-schema" in out


def test_production_overlay_passes_on_the_newest_kubernetes(capsys: pytest.CaptureFixture[str]) -> None:
    assert SUPPORTED_KUBE_MINORS[0] == "1.30" and SUPPORTED_KUBE_MINORS[-1] == "1.37"
    assert cli.main([str(VALUES_DIR / "production.yaml"), "--kube-version", "1.37"]) == 0
    assert "PASSED: 0 problem(s); Kubernetes 1.37;" in capsys.readouterr().out


@pytest.mark.parametrize("requested, minors", [("1.36", ["1.36"]), ("v1.37.2", ["1.37"]), (None, list(SUPPORTED_KUBE_MINORS))])
def test_every_supported_kubernetes_can_be_asked_for(requested: str | None, minors: list[str]) -> None:
    assert cli.kube_minors(requested) == minors


def test_typo_fails_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("rayCluster:\n  workerGroups:\n    cpu:\n      maxReplicsa: 3\n")
    assert cli.main([str(overlay)]) == 1
    out = capsys.readouterr().out
    assert "rayCluster.workerGroups.cpu" in out and "maxReplicsa" in out and "FAILED" in out


def test_missing_file_and_unsupported_kubernetes_are_clear(tmp_path: Path, capsys) -> None:
    assert cli.main([str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not supported"):
        cli.main(["--kube-version", "1.20"])
    with pytest.raises(SystemExit, match="not supported; pick one of 1.30, .*, 1.37"):
        cli.main(["--kube-version", "1.38"])
