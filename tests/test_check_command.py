"""`make check VALUES=...` (harness.cli): passes on a good overlay, fails naming a typo'd key."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.tools import VALUES_DIR


def test_dev_overlay_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(VALUES_DIR / "dev.yaml"), "--kube-version", "1.33"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "ok   crd-schema" in out


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
