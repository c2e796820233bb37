"""The load driver: Locust, headless, from this machine against a URL on 127.0.0.1 (a Serve
Service forwarded out of the node's namespace), a fixed number of users at a fixed rate, bounded
in time (-t) and in count (CHAOS_MAX_REQUESTS), every request recorded (locustfile.py). A Load is
started before a scenario's action and stopped after it; its LoadResult says requests, failures
(each with its time and status), p50/p99 and the longest gap without a success.

    with Load("http://127.0.0.1:41234", "/answer", workdir) as load:
        ...  # helm upgrade, a pod deleted, ...
    print(load.result.summary())
"""
from __future__ import annotations

import ipaddress
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class Record:
    start: float  # epoch seconds the request was sent
    seconds: float
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    error: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400 and not self.error

    @property
    def end(self) -> float:
        return self.start + self.seconds


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class LoadResult:
    records: list[Record]
    started: float  # epoch seconds of the window's start and end
    ended: float

    @property
    def requests(self) -> int:
        return len(self.records)

    @property
    def failures(self) -> list[Record]:
        return [r for r in self.records if not r.ok]

    def p(self, q: float) -> float:
        return percentile([r.seconds for r in self.records], q)

    @property
    def longest_gap(self) -> float:
        """The longest time inside the window in which no request succeeded (answers counted at
        the moment they arrived), the window's edges included: what a user waiting on the
        service would have seen as an outage."""
        times = sorted(r.end for r in self.records if r.ok)
        edges = [self.started, *times, max(self.ended, times[-1] if times else self.ended)]
        return max(b - a for a, b in zip(edges, edges[1:]))

    def summary(self) -> str:
        return (f"{self.requests} requests, {len(self.failures)} failures, p50 "
                f"{self.p(50) * 1000:.0f} ms, p99 {self.p(99) * 1000:.0f} ms, longest gap without "
                f"a success {self.longest_gap:.1f} s over {self.ended - self.started:.0f} s")

    def failure_lines(self, limit: int = 20) -> str:
        """The failed requests by time since the window's start: status, seconds and error."""
        lines = [f"  +{r.start - self.started:6.1f} s status {r.status} after {r.seconds:.2f} s"
                 f"{': ' + r.error if r.error else ''}" for r in self.failures[:limit]]
        more = len(self.failures) - limit
        return "\n".join(lines + ([f"  ... and {more} more"] if more > 0 else []))


def read_records(path: Path) -> list[Record]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            data = json.loads(line)
            records.append(Record(data["start"], data["seconds"], data["status"], data["error"]))
    return sorted(records, key=lambda r: r.start)


def loopback_url(url: str) -> str:
    """The driver only ever sends to 127.0.0.0/8 (the forward), never elsewhere."""
    host = urlsplit(url).hostname or ""
    if ipaddress.ip_address(host) not in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError(f"{url}: the load driver sends to 127.0.0.0/8 only")
    return url


@dataclass
class Load:
    url: str  # http://127.0.0.1:<port>
    path: str
    workdir: Path
    users: int = 2
    rate: float = 2.0  # requests per second per user
    max_seconds: int = 900  # -t: a run nobody stops ends by itself
    max_requests: int = 10000
    timeout: float = 10.0
    name: str = "load"
    result: LoadResult | None = field(default=None, init=False)
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _started: float = field(default=0.0, init=False, repr=False)

    @property
    def record_path(self) -> Path:
        return self.workdir / f"{self.name}.jsonl"

    def start(self) -> "Load":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.record_path.unlink(missing_ok=True)
        env = {**os.environ, "CHAOS_PATH": self.path, "CHAOS_RATE": str(self.rate),
               "CHAOS_RECORD": str(self.record_path), "CHAOS_MAX_REQUESTS": str(self.max_requests),
               "CHAOS_TIMEOUT": str(self.timeout)}
        log = (self.workdir / f"{self.name}.locust.log").open("w")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
             "--host", loopback_url(self.url), "-u", str(self.users), "-r", str(self.users),
             "-t", f"{self.max_seconds}s", "--stop-timeout", str(int(self.timeout) + 1),
             "--exit-code-on-error", "0"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # The window starts with traffic flowing: at the first request recorded.
        deadline = time.monotonic() + 60
        while not (first := read_records(self.record_path)):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Locust sent nothing to {self.url}{self.path}:\n"
                                   + (self.workdir / f"{self.name}.locust.log").read_text()[-2000:])
            time.sleep(0.2)
        self._started = first[0].start
        return self

    def stop(self) -> LoadResult:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # Locust stops its users and exits
            try:
                process.wait(timeout=self.timeout + 15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.result = LoadResult(read_records(self.record_path), self._started, time.time())
        return self.result

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
