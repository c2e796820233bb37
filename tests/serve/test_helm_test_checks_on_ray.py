"""The `helm test` dashboard and job checks (charts/ray-platform/files/tests/helm_test.py) against a
real local Ray 2.60 head started with token authentication, as the KubeRay operator starts Ray
when auth.mode is token: the checks send the token the way Ray expects it, Ray refuses requests
without it (401) or with a wrong one (403), and the job's remote tasks really run."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from harness.tools import CHART_DIR
from serving.local_ray import LocalRay

pytestmark = pytest.mark.serve

TOKEN = "ray-platform-helm-test-" + "0123456789abcdef" * 2


def load_checks():
    spec = importlib.util.spec_from_file_location("helm_test_on_ray", CHART_DIR / "files" / "tests" / "helm_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ray_with_token():
    pytest.importorskip("ray")
    import requests

    # PATH: the job's `python` must be this interpreter (in the Ray image it is the image's).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    cluster = LocalRay(num_cpus=2, extra_env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN, "PATH": path})
    # LocalRay.start() polls the dashboard until it answers 200: give that poll the token.
    real_get = requests.get

    def get_with_token(url, **kwargs):
        kwargs.setdefault("headers", {})["Authorization"] = f"Bearer {TOKEN}"
        return real_get(url, **kwargs)

    requests.get = get_with_token
    try:
        cluster.start()
    finally:
        requests.get = real_get
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def checks(ray_with_token, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    token_file = tmp_path / "auth_token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv("RAY_DASHBOARD_URL", ray_with_token.dashboard_url)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("TEST_TIMEOUT_S", "120")
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        yield load_checks()
    finally:
        sys.dont_write_bytecode = previous


def test_dashboard_check_on_a_token_auth_ray(checks, capsys) -> None:
    assert checks.main(["helm_test.py", "dashboard"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "(HTTP 401)" in out and "(HTTP 403)" in out and "Ray 2.60.0 (authenticated" in out


def test_job_check_runs_remote_tasks_on_ray(checks, capsys) -> None:
    status = checks.main(["helm_test.py", "job"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"returned {checks.JOB_EXPECTED}" in out
