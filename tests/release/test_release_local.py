"""`make release-local` end to end, as a developer runs it: everything it starts is stopped and
every consumption step passes with both helm majors."""
from __future__ import annotations

import re
import socket
import subprocess

import pytest

from harness.tools import REPO
from harness.versions import HELM_MAJORS

pytestmark = [pytest.mark.cluster, pytest.mark.release]


def test_make_release_local_publishes_verifies_and_stops() -> None:
    result = subprocess.run(["make", "--no-print-directory", "release-local"], cwd=REPO,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for major in HELM_MAJORS:
        for step in ("registry login", "pull --verify from the registry",
                     "pull --verify from the classic repository"):
            assert f"release-local: helm {major}: {step}: ok" in result.stdout, result.stdout
    assert result.stdout.count("release-local: cosign verify") == len(HELM_MAJORS)
    assert "registry and repository stopped" in result.stdout
    # The registry and the repository it started are gone: nothing answers on their ports.
    for port in re.findall(r"https://127\.0\.0\.1:(\d+)", result.stdout):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", int(port))) != 0, f"port {port} still answers"
