"""`make serve`: the app on a local Ray with the tiny pipeline, announced as
`Serving on http://127.0.0.1:<port>/imagine`, until Ctrl-C (SIGINT to the terminal's process group)
or SIGTERM (to make, which passes it on); then no process of that Ray is left and its temporary
folder is gone."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.tools import REPO
from serving.local_ray import end_session, session_pids

requests = pytest.importorskip("requests")
Image = pytest.importorskip("PIL.Image")

pytestmark = pytest.mark.serve

SERVING = re.compile(r"^Serving on (http://127\.0\.0\.1:(\d+)/imagine)$")
RAY = re.compile(r"process session (\d+), (/\S+)\)")
START_TIMEOUT_S = 300


class Output:
    """make's output, read on a thread, with a wait for the first line that matches."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if match := pattern.search(line):
                        return match
                left = deadline - time.monotonic()
                assert left > 0 and self._thread.is_alive(), "\n".join(self.lines[-40:])
                self._changed.wait(min(left, 1.0))


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_make_serve_serves_until_stopped_then_leaves_no_ray_process(stop: str) -> None:
    pytest.importorskip("ray.serve")
    pytest.importorskip("diffusers")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKEFLAGS", "MFLAGS", "MAKELEVEL"))}
    # Its own process group, as a terminal gives a foreground job: Ctrl-C signals that group.
    proc = subprocess.Popen(["make", "-s", "serve"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = Output(proc)
    session = None
    try:
        ray = output.wait_for(RAY, START_TIMEOUT_S)
        session, temp_dir = int(ray.group(1)), Path(ray.group(2))
        url = output.wait_for(SERVING, START_TIMEOUT_S).group(1)
        assert session_pids(session), "no Ray process in the announced session"
        response = requests.get(url, params={"prompt": "a red fox", "img_size": 64, "steps": 2}, timeout=120)
        assert response.status_code == 200, response.text[:300]
        Image.open(io.BytesIO(response.content)).load()

        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        output.wait_for(re.compile(r"^stopped \(SIG(INT|TERM)\): every process of this Ray has ended$"), 10)
        assert session_pids(session) == [], "Ray processes left behind"
        assert not temp_dir.exists()
        with pytest.raises(requests.ConnectionError):
            requests.get(url, params={"prompt": "gone"}, timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if session is not None and session_pids(session):  # clean up after a failure
            end_session(session)
