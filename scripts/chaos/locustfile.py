"""The Locust user of the chaos scenarios: GET one path at a fixed rate per user and append every
request to a JSON-lines file (start time, seconds, status, error), so that a failure can be named
by its time and status afterwards, not just counted. Configured through the environment by
load.Load; run by Locust itself (`python -m locust -f locustfile.py --headless ...`): Locust
monkey-patches the standard library with gevent when imported, which no other process here may
suffer.

    CHAOS_PATH           the path to GET (on --host)
    CHAOS_RATE           requests per second per user (constant_throughput)
    CHAOS_RECORD         the JSON-lines file to append to
    CHAOS_MAX_REQUESTS   stop the run after this many requests (the count bound; -t bounds time)
    CHAOS_TIMEOUT        seconds before a request counts as failed (status 0)
"""
from __future__ import annotations

import json
import os
import time

import gevent
from locust import HttpUser, constant_throughput, events, task

PATH = os.environ.get("CHAOS_PATH", "/")
RATE = float(os.environ.get("CHAOS_RATE", "1"))
RECORD = os.environ.get("CHAOS_RECORD", "requests.jsonl")
MAX_REQUESTS = int(os.environ.get("CHAOS_MAX_REQUESTS", "100000"))
TIMEOUT = float(os.environ.get("CHAOS_TIMEOUT", "10"))

_record = open(RECORD, "a", buffering=1)  # line-buffered: a killed run keeps what it saw
_count = 0
_environment = None  # Locust's, from its init event: the runner to stop at the count bound


@events.request.add_listener
def record(request_type, name, response_time, response_length, response=None, exception=None,
           start_time=None, **_kwargs) -> None:
    global _count
    status = getattr(response, "status_code", 0) or 0
    error = "" if exception is None else f"{type(exception).__name__}: {exception}"[:300]
    _record.write(json.dumps({"start": start_time or time.time() - response_time / 1000,
                              "seconds": response_time / 1000, "status": status,
                              "error": error}) + "\n")
    _count += 1
    if _count == MAX_REQUESTS:
        # The count bound: stop every user from outside the request that reached it.
        gevent.spawn(_quit)


def _quit() -> None:
    runner = _environment.runner if _environment else None
    if runner is not None:
        runner.quit()


@events.init.add_listener
def keep_environment(environment, **_kwargs) -> None:
    global _environment
    _environment = environment


class ServeClient(HttpUser):
    """One client of the Serve application: a keep-alive HTTP connection like a real client's,
    so requests also meet what a pod's end does to an open connection."""
    wait_time = constant_throughput(RATE)

    @task
    def get(self) -> None:
        self.client.get(PATH, name=PATH, timeout=TIMEOUT)
