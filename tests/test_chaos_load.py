"""The chaos load driver (scripts/chaos/load.py) against a real HTTP server on 127.0.0.1: Locust
runs headless as its own process, every request is recorded with its status, and a window in
which the server answers 503 shows up as failures at their times and as the longest gap."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from chaos.load import Load, LoadResult, Record, loopback_url


class Switchable(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"ok" if self.status == 200 else b"down"
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Switchable]]]:
    handler = type("Handler", (Switchable,), {"status": 200})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()


def test_every_request_is_recorded_and_an_outage_is_named(server, tmp_path: Path) -> None:
    url, handler = server
    with Load(url, "/answer", tmp_path, users=2, rate=5) as load:
        time.sleep(2)
        handler.status = 503
        outage = time.time()
        time.sleep(2)
        handler.status = 200
        time.sleep(2)
    result = load.result
    assert result is not None
    # 2 users at 5/s for about 6 s: a fixed rate, not as fast as possible.
    assert 40 <= result.requests <= 80, result.summary()
    failures = result.failures
    assert failures and all(r.status == 503 for r in failures), result.failure_lines()
    assert all(outage - 0.5 <= r.start <= outage + 2.5 for r in failures), result.failure_lines()
    assert 1.5 <= result.longest_gap <= 3.5, result.summary()
    assert "failures" in result.summary() and "status 503" in result.failure_lines()


def test_the_count_bound_stops_the_run(server, tmp_path: Path) -> None:
    url, _ = server
    with Load(url, "/", tmp_path, users=2, rate=20, max_requests=15) as load:
        time.sleep(3)
    assert load.result is not None and 15 <= load.result.requests <= 17, load.result.summary()


def test_the_gap_counts_the_windows_edges() -> None:
    records = [Record(10.0, 0.1, 200, ""), Record(11.0, 0.1, 0, "ConnectionError"),
               Record(15.0, 0.1, 200, "")]
    result = LoadResult(records, started=10.0, ended=20.0)
    assert (result.requests, len(result.failures)) == (3, 1)
    assert result.longest_gap == pytest.approx(5.0)  # 10.1 -> 15.1 without a success
    assert "status 0" in result.failure_lines()


def test_the_driver_sends_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="127.0.0.0/8"):
        loopback_url("http://10.0.0.7:8000")
