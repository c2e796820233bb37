"""`helm test` checks of a ray-platform release, run by the chart's test hook Pods.

    python helm_test.py dashboard   # the Ray dashboard API answers (and enforces the token)
    python helm_test.py job         # a Ray job through the Jobs REST API runs remote tasks
    python helm_test.py imagine     # GET /imagine returns a PNG

Standard library only: it runs on the Ray image's Python, with no package installs. Settings come
from the environment the test Pod sets:
  RAY_DASHBOARD_URL   http://<cluster>-head-svc:8265
  RAY_AUTH_MODE       token | disabled
  RAY_AUTH_TOKEN_FILE file holding the cluster's token (mounted from its Secret), if known
  AUTH_SKIP_REASON    why the token is not available when RAY_AUTH_MODE is token
  IMAGINE_URL         the full /imagine URL with its query
  IMAGINE_SIZE        width and height the PNG must have (0: any)
  TEST_TIMEOUT_S      overall deadline of this check, in seconds
Exit status 0 when the check passed; 1 with a FAIL line saying why otherwise.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The job's tasks square 0..99 on the cluster's workers; the driver prints the sum.
JOB_TASKS = 100
JOB_EXPECTED = sum(i * i for i in range(JOB_TASKS))
JOB_SCRIPT = (
    "import ray; ray.init(); "
    "square = ray.remote(lambda x: x * x); "
    f"print('RESULT=%d' % sum(ray.get([square.remote(i) for i in range({JOB_TASKS})])))"
)
JOB_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class CheckFailed(Exception):
    pass


def log(message: str) -> None:
    print(message, flush=True)


def env(name: str, default: Optional[str] = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise CheckFailed(f"{name} is not set (the test Pod sets it)")
    return value


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.end = clock() + seconds

    def left(self) -> float:
        return self.end - self.clock()

    def passed(self) -> bool:
        return self.left() <= 0


def http(method: str, url: str, token: Optional[str] = None, body: Optional[Dict[str, Any]] = None,
         timeout: float = 30.0) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, body); HTTP errors are answers too. Raises OSError when nothing answers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("User-Agent", "ray-platform-helm-test")  # not a browser: Ray refuses those
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers or {}), error.read()


def until_answered(deadline: Deadline, what: str, call: Callable[[], Tuple[int, Dict[str, str], bytes]],
                   retry_statuses: Tuple[int, ...] = (502, 503, 504), pause: float = 5.0,
                   sleep: Callable[[float], None] = time.sleep) -> Tuple[int, Dict[str, str], bytes]:
    """Retry while nothing answers (or answers 'come back later') until the deadline."""
    last = "no attempt"
    while True:
        try:
            status, headers, body = call()
            if status not in retry_statuses:
                return status, headers, body
            last = f"HTTP {status}: {body[:300].decode(errors='replace')}"
        except OSError as error:  # refused, DNS, timeout: the Service may have no endpoint yet
            last = f"{type(error).__name__}: {error}"
        if deadline.passed():
            raise CheckFailed(f"{what}: no answer before the deadline; last: {last}")
        log(f"  {what}: {last}; retrying")
        sleep(min(pause, max(deadline.left(), 0.1)))


def read_token() -> Optional[str]:
    """The cluster's token, or None when auth is off. Raises when auth is on and it is missing."""
    if env("RAY_AUTH_MODE", "disabled") != "token":
        return None
    path = os.environ.get("RAY_AUTH_TOKEN_FILE", "")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as error:
        raise CheckFailed(f"cannot read the auth token from {path}: {error}") from None
    if not token:
        raise CheckFailed(f"the auth token file {path} is empty")
    return token


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise CheckFailed(f"{what}: not JSON: {body[:300].decode(errors='replace')}") from None


# --- the checks --------------------------------------------------------------------------------

def check_dashboard(deadline: Deadline, sleep: Callable[[float], None] = time.sleep) -> None:
    base = env("RAY_DASHBOARD_URL").rstrip("/")
    url = f"{base}/api/version"
    auth_on = env("RAY_AUTH_MODE", "disabled") == "token"
    token = read_token()
    status, _, body = until_answered(deadline, f"GET {url}", lambda: http("GET", url), sleep=sleep)
    if auth_on:
        if status != 401:
            raise CheckFailed(f"GET {url} without a token answered HTTP {status}, expected 401: "
                              "token authentication is not enforced")
        log(f"ok: the dashboard refuses a request without a token (HTTP 401)")
        if token is None:
            log(f"SKIPPED the authenticated call: {os.environ.get('AUTH_SKIP_REASON') or 'no token available'}")
            return
        status, _, body = http("GET", url, token="not-the-cluster-token")
        if status != 403:
            raise CheckFailed(f"GET {url} with a wrong token answered HTTP {status}, expected 403")
        log("ok: the dashboard refuses a wrong token (HTTP 403)")
        status, _, body = http("GET", url, token=token)
    if status != 200:
        raise CheckFailed(f"GET {url} answered HTTP {status}: {body[:300].decode(errors='replace')}")
    version = _json(body, f"GET {url}")
    if not isinstance(version, dict) or not version.get("ray_version"):
        raise CheckFailed(f"GET {url}: no ray_version in {version!r}")
    log(f"ok: the dashboard API answers: Ray {version['ray_version']}"
        + (" (authenticated with the cluster's token)" if token else ""))


def check_job(deadline: Deadline, sleep: Callable[[float], None] = time.sleep, poll: float = 3.0) -> None:
    base = env("RAY_DASHBOARD_URL").rstrip("/")
    token = read_token()
    if env("RAY_AUTH_MODE", "disabled") == "token" and token is None:
        raise CheckFailed(f"the Jobs API needs the cluster's token: {os.environ.get('AUTH_SKIP_REASON') or 'none mounted'}")
    submission = {"entrypoint": f'python -c "{JOB_SCRIPT}"',
                  "metadata": {"submitted-by": "ray-platform helm test"}}
    status, _, body = until_answered(deadline, f"POST {base}/api/jobs/",
                                     lambda: http("POST", f"{base}/api/jobs/", token, submission), sleep=sleep)
    if status != 200:
        raise CheckFailed(f"job submission answered HTTP {status}: {body[:500].decode(errors='replace')}")
    job_id = _json(body, "job submission").get("submission_id") or _json(body, "job submission").get("job_id")
    log(f"submitted job {job_id}: {JOB_TASKS} remote tasks")
    state, info = "PENDING", {}
    while True:
        status, _, body = http("GET", f"{base}/api/jobs/{job_id}", token)
        if status == 200:
            info = _json(body, "job status")
            if info.get("status") != state:
                state = info.get("status") or "?"
                log(f"  job {job_id}: {state}")
            if state in JOB_TERMINAL:
                break
        if deadline.passed():
            http("POST", f"{base}/api/jobs/{job_id}/stop", token)
            raise CheckFailed(f"job {job_id} still {state} at the deadline (stopped it)")
        sleep(min(poll, max(deadline.left(), 0.1)))
    status, _, body = http("GET", f"{base}/api/jobs/{job_id}/logs", token)
    logs = _json(body, "job logs").get("logs", "") if status == 200 else ""
    if state != "SUCCEEDED":
        raise CheckFailed(f"job {job_id} ended {state}: {info.get('message') or ''}\n{logs[-2000:]}")
    if f"RESULT={JOB_EXPECTED}" not in logs:
        raise CheckFailed(f"job {job_id} succeeded but did not print RESULT={JOB_EXPECTED}; its logs:\n{logs[-2000:]}")
    log(f"ok: job {job_id} ran {JOB_TASKS} remote tasks and returned {JOB_EXPECTED}")


def png_size(data: bytes) -> Tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; CheckFailed if data is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise CheckFailed(f"not a PNG (starts with {data[:16]!r})")
    return struct.unpack(">II", data[16:24])


def check_imagine(deadline: Deadline, sleep: Callable[[float], None] = time.sleep) -> None:
    url = env("IMAGINE_URL")
    size = int(env("IMAGINE_SIZE", "0"))
    # 503 while the model replica is still loading; the request itself may take a while on CPU.
    status, headers, body = until_answered(
        deadline, f"GET {url}", lambda: http("GET", url, timeout=max(min(deadline.left(), 600.0), 1.0)), sleep=sleep)
    if status != 200:
        raise CheckFailed(f"GET {url} answered HTTP {status}: {body[:500].decode(errors='replace')}")
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if not content_type.startswith("image/png"):
        raise CheckFailed(f"GET {url} answered Content-Type {content_type!r}, expected image/png")
    width, height = png_size(body)
    if size and (width, height) != (size, size):
        raise CheckFailed(f"GET {url} returned a {width}x{height} PNG, expected {size}x{size}")
    log(f"ok: /imagine returned a {width}x{height} PNG ({len(body)} bytes)")


CHECKS = {"dashboard": check_dashboard, "job": check_job, "imagine": check_imagine}


def main(argv: list, sleep: Callable[[float], None] = time.sleep) -> int:
    if len(argv) != 2 or argv[1] not in CHECKS:
        log(f"usage: {argv[0]} {'|'.join(CHECKS)}")
        return 2
    try:
        deadline = Deadline(float(env("TEST_TIMEOUT_S", "600")))
        CHECKS[argv[1]](deadline, sleep=sleep)
    except CheckFailed as failed:
        log(f"FAIL {argv[1]}: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
