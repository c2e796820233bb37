"""The checks the `helm test` Pods run (charts/ray-platform/files/tests/helm_test.py), against a
local stand-in for the Ray dashboard, the Jobs REST API and the Serve /imagine endpoint that
behaves like Ray 2.60 does (401 without a token, 403 with a wrong one; job states; 503 while the
model loads): each check passes on a healthy platform and fails, saying why, on a broken one.
tests/serve/test_helm_test_checks_on_ray.py runs the dashboard and job checks on a real Ray."""
from __future__ import annotations

import ast
import importlib.util
import json
import struct
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.tools import CHART_DIR

SCRIPT = CHART_DIR / "files" / "tests" / "helm_test.py"
TOKEN = "cluster-token-123"


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("helm_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the chart
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = previous
    return module


helm_test = load_script()


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (helm_test.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class FakeRay:
    """What the stand-in answers; tests change these to break it."""

    def __init__(self) -> None:
        self.token: str | None = TOKEN  # None: auth disabled
        self.job_states = ["PENDING", "RUNNING", "SUCCEEDED"]
        self.job_logs = f"RESULT={helm_test.JOB_EXPECTED}\n"
        self.job_message = ""
        self.imagine_unavailable = 1  # answers 503 this many times first
        self.image = png(128, 128)
        self.image_type = "image/png"
        self.submitted: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self.seen_auth: list[str | None] = []


class Handler(BaseHTTPRequestHandler):
    fake: FakeRay

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes | str | dict, content_type: str = "application/json") -> None:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization")
        self.fake.seen_auth.append(header)
        if self.fake.token is None:
            return True
        if not header:
            self._send(401, "Unauthorized: Missing authentication token", "text/plain")
            return False
        if header != f"Bearer {self.fake.token}":
            self._send(403, "Forbidden: Invalid authentication token", "text/plain")
            return False
        return True

    def do_GET(self) -> None:
        fake = self.fake
        if self.path.startswith("/imagine"):
            if fake.imagine_unavailable > 0:
                fake.imagine_unavailable -= 1
                return self._send(503, {"error": "model_not_ready", "message": "loading"})
            return self._send(200, fake.image, fake.image_type)
        if not self._authorized():
            return
        if self.path == "/api/version":
            return self._send(200, {"version": "4", "ray_version": "2.60.0", "ray_commit": "x"})
        if self.path == "/api/jobs/raysubmit_1":
            state = fake.job_states.pop(0) if len(fake.job_states) > 1 else fake.job_states[0]
            return self._send(200, {"submission_id": "raysubmit_1", "status": state, "message": fake.job_message})
        if self.path == "/api/jobs/raysubmit_1/logs":
            return self._send(200, {"logs": fake.job_logs})
        self._send(404, "not found", "text/plain")

    def do_POST(self) -> None:
        if not self._authorized():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
        if self.path == "/api/jobs/":
            self.fake.submitted.append(body)
            return self._send(200, {"job_id": None, "submission_id": "raysubmit_1"})
        if self.path == "/api/jobs/raysubmit_1/stop":
            self.fake.stopped.append("raysubmit_1")
            return self._send(200, {"stopped": True})
        self._send(404, "not found", "text/plain")


@pytest.fixture
def fake() -> FakeRay:
    return FakeRay()


@pytest.fixture
def server(fake: FakeRay) -> Iterator[str]:
    handler = type("BoundHandler", (Handler,), {"fake": fake})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "auth_token"
    path.write_text(TOKEN + "\n")
    return path


def run(check: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, timeout: float = 30.0,
        **env: str) -> tuple[int, str]:
    for name in ("RAY_DASHBOARD_URL", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_FILE", "AUTH_SKIP_REASON",
                 "IMAGINE_URL", "IMAGINE_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEST_TIMEOUT_S", str(timeout))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status = helm_test.main(["helm_test.py", check], sleep=lambda _: None)
    return status, capsys.readouterr().out


def dashboard_env(server: str, token_file: Path) -> dict[str, str]:
    return {"RAY_DASHBOARD_URL": server, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_FILE": str(token_file)}


# --- dashboard ---------------------------------------------------------------------------------

def test_dashboard_with_token_auth(server, token_file, fake, monkeypatch, capsys) -> None:
    status, out = run("dashboard", monkeypatch, capsys, **dashboard_env(server, token_file))
    assert status == 0, out
    assert "refuses a request without a token (HTTP 401)" in out and "refuses a wrong token (HTTP 403)" in out
    assert "Ray 2.60.0 (authenticated with the cluster's token)" in out
    assert fake.seen_auth == [None, "Bearer not-the-cluster-token", f"Bearer {TOKEN}"]


def test_dashboard_without_auth(server, fake, monkeypatch, capsys) -> None:
    fake.token = None
    status, out = run("dashboard", monkeypatch, capsys, RAY_DASHBOARD_URL=server, RAY_AUTH_MODE="disabled")
    assert status == 0 and "the dashboard API answers: Ray 2.60.0" in out


def test_dashboard_that_does_not_enforce_the_token_fails(server, token_file, fake, monkeypatch, capsys) -> None:
    fake.token = None  # the cluster runs without auth although the chart asked for it
    status, out = run("dashboard", monkeypatch, capsys, **dashboard_env(server, token_file))
    assert status == 1 and "token authentication is not enforced" in out


def test_dashboard_with_the_wrong_token_fails(server, token_file, fake, monkeypatch, capsys) -> None:
    fake.token = "another-token"
    status, out = run("dashboard", monkeypatch, capsys, **dashboard_env(server, token_file))
    assert status == 1 and "answered HTTP 403" in out


def test_dashboard_without_a_known_token_says_what_it_skipped(server, fake, monkeypatch, capsys) -> None:
    status, out = run("dashboard", monkeypatch, capsys, RAY_DASHBOARD_URL=server, RAY_AUTH_MODE="token",
                      AUTH_SKIP_REASON="set auth.existingSecret to test the authenticated API")
    assert status == 0
    assert "SKIPPED the authenticated call: set auth.existingSecret" in out
    assert fake.seen_auth == [None]


def test_unreachable_dashboard_fails_at_the_deadline(monkeypatch, capsys, token_file) -> None:
    # Nothing listens on port 9 (discard) on loopback: connection refused, retried until the deadline.
    status, out = run("dashboard", monkeypatch, capsys, timeout=0.3,
                      **dashboard_env("http://127.0.0.1:9", token_file))
    assert status == 1 and "no answer before the deadline" in out and "Connection refused" in out


def test_empty_token_file_fails(server, tmp_path, monkeypatch, capsys) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    status, out = run("dashboard", monkeypatch, capsys, **dashboard_env(server, empty))
    assert status == 1 and "is empty" in out


# --- Ray job -------------------------------------------------------------------------------------

def test_job_runs_remote_tasks_and_returns_the_result(server, token_file, fake, monkeypatch, capsys) -> None:
    status, out = run("job", monkeypatch, capsys, **dashboard_env(server, token_file))
    assert status == 0, out
    assert f"returned {helm_test.JOB_EXPECTED}" in out
    (submission,) = fake.submitted
    assert "ray.remote" in submission["entrypoint"] and submission["entrypoint"].startswith("python -c ")
    assert all(header == f"Bearer {TOKEN}" for header in fake.seen_auth)


def test_job_entrypoint_computes_the_expected_result() -> None:
    # The driver's arithmetic, without Ray: the remote function is the identity on ray.remote.
    fake_ray = type(sys)("ray")
    fake_ray.init = lambda: None
    fake_ray.remote = lambda f: type("Remote", (), {"remote": staticmethod(f)})
    fake_ray.get = lambda values: values
    printed: list[str] = []
    exec(helm_test.JOB_SCRIPT.replace("import ray; ", ""), {"ray": fake_ray, "print": printed.append})
    assert printed == [f"RESULT={helm_test.JOB_EXPECTED}"] and helm_test.JOB_EXPECTED == 328350


def test_failed_job_fails_with_its_message_and_logs(server, token_file, fake, monkeypatch, capsys) -> None:
    fake.job_states = ["PENDING", "FAILED"]
    fake.job_message = "Job entrypoint command failed with exit code 1"
    fake.job_logs = "Traceback (most recent call last): ... RayTaskError"
    status, out = run("job", monkeypatch, capsys, **dashboard_env(server, token_file))
    assert status == 1 and "ended FAILED: Job entrypoint command failed" in out and "RayTaskError" in out


def test_job_with_a_wrong_result_fails(server, token_file, fake, monkeypatch, capsys) -> None:
    fake.job_logs = "RESULT=42\n"
    status, out = run("job", monkeypatch, capsys, **dashboard_env(server, token_file))
    assert status == 1 and f"did not print RESULT={helm_test.JOB_EXPECTED}" in out


def test_stuck_job_is_stopped_at_the_deadline(server, token_file, fake, monkeypatch, capsys) -> None:
    fake.job_states = ["PENDING"]  # never leaves PENDING (no worker can start, say)
    status, out = run("job", monkeypatch, capsys, timeout=0.5, **dashboard_env(server, token_file))
    assert status == 1 and "still PENDING at the deadline" in out
    assert fake.stopped == ["raysubmit_1"]


def test_job_without_a_token_under_token_auth_fails_clearly(server, monkeypatch, capsys) -> None:
    status, out = run("job", monkeypatch, capsys, RAY_DASHBOARD_URL=server, RAY_AUTH_MODE="token",
                      AUTH_SKIP_REASON="no Secret known")
    assert status == 1 and "the Jobs API needs the cluster's token: no Secret known" in out


# --- /imagine --------------------------------------------------------------------------------------

def test_imagine_returns_a_png_after_the_model_loads(server, fake, monkeypatch, capsys) -> None:
    status, out = run("imagine", monkeypatch, capsys, IMAGINE_URL=f"{server}/imagine?prompt=fox&img_size=128",
                      IMAGINE_SIZE="128")
    assert status == 0, out
    assert "HTTP 503" in out and "returned a 128x128 PNG" in out


@pytest.mark.parametrize("breakage,expected", [
    ({"image_type": "application/json"}, "expected image/png"),
    ({"image": b"GIF89a not a png"}, "not a PNG"),
    ({"image": png(64, 64)}, "returned a 64x64 PNG, expected 128x128"),
    ({"imagine_unavailable": 10**6}, "no answer before the deadline"),
])
def test_imagine_failures(server, fake, monkeypatch, capsys, breakage, expected) -> None:
    for name, value in breakage.items():
        setattr(fake, name, value)
    status, out = run("imagine", monkeypatch, capsys, timeout=0.5,
                      IMAGINE_URL=f"{server}/imagine?prompt=fox", IMAGINE_SIZE="128")
    assert status == 1 and expected in out, out


def test_usage_and_missing_settings(monkeypatch, capsys) -> None:
    assert helm_test.main(["helm_test.py"]) == 2
    status, out = run("imagine", monkeypatch, capsys)
    assert status == 1 and "IMAGINE_URL is not set" in out


def test_the_script_needs_only_the_standard_library() -> None:
    tree = ast.parse(SCRIPT.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
