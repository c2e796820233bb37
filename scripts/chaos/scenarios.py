"""What the chaos scenarios share besides the load: the RayService's clusters as the operator
reports them, the dashboard's answers to no token, a wrong one and the right one, and the table
`make chaos` prints (scenario, requests, failures, p99, recovery seconds)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import requests

from chaos.load import LoadResult

Get = Callable[..., dict[str, Any]]  # kubectl.get


def active_and_pending(service: dict[str, Any]) -> tuple[str, str]:
    """(active, pending) RayCluster names of a RayService object; "" for none."""
    status = service.get("status") or {}
    return tuple((status.get(key) or {}).get("rayClusterName") or ""
                 for key in ("activeServiceStatus", "pendingServiceStatus"))


def clusters_of(get: Get, namespace: str, service: str) -> dict[str, dict[str, Any]]:
    """The RayClusters the operator made for the RayService, by name."""
    items = get("rayclusters", "-n", namespace,
                "-l", f"ray.io/originated-from-cr-name={service}")["items"]
    return {c["metadata"]["name"]: c for c in items}


def created_at(obj: dict[str, Any]) -> float:
    stamp = obj["metadata"]["creationTimestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Replacement:
    """A cluster replacement as observed: epoch seconds."""
    old: str
    new: str
    new_created: float
    switched: float  # the RayService's active cluster became the new one
    old_gone: float  # the old RayCluster object no longer listed

    @property
    def coexisted(self) -> float:
        return self.old_gone - self.new_created


def watch_replacement(get: Get, namespace: str, service: str, old: str, timeout: float,
                      on_pending: Callable[[str], None] | None = None) -> Replacement:
    """Poll (1 s) until the RayService serves from a cluster other than `old` and `old` is gone;
    on_pending(name) runs once, when the new cluster first shows up as pending (the
    operator-restart scenario strikes there)."""
    deadline = time.monotonic() + timeout
    new, switched, seen = "", 0.0, ""
    while True:
        active, pending = active_and_pending(get("rayservice", service, "-n", namespace))
        if pending and pending != old and not seen:
            seen = pending
            if on_pending:
                on_pending(pending)
        if active and active != old and not switched:
            new, switched = active, time.time()
        names = clusters_of(get, namespace, service)
        if switched and old not in names:
            return Replacement(old, new, created_at(names[new]), switched, time.time())
        if time.monotonic() > deadline:
            raise AssertionError(f"RayService {service}: not replaced within {timeout:.0f} s "
                                 f"(active {active or '-'}, pending {pending or '-'}, clusters "
                                 f"{sorted(names)}, old {old})")
        time.sleep(1)


def dashboard_statuses(url: str, token: str) -> dict[str, int]:
    """GET /api/version on the head's dashboard without a token, with a wrong one and with the
    cluster's: Ray's token auth answers 401, 403 and 200."""
    answers = {}
    for case, headers in (("no-token", {}),
                          ("wrong-token", {"Authorization": "Bearer not-the-cluster-token"}),
                          ("token", {"Authorization": f"Bearer {token}"})):
        answers[case] = requests.get(f"{url}/api/version", headers=headers, timeout=30).status_code
    return answers


DASHBOARD_EXPECTED = {"no-token": 401, "wrong-token": 403, "token": 200}


@dataclass
class Row:
    scenario: str
    result: LoadResult
    recovery: float  # seconds from the action to the steady state again (each test says which)
    bound: int  # failures allowed: 0 for the zero-failure scenarios
    note: str = ""


def table(rows: list[Row]) -> str:
    lines = ["| scenario | requests | failures (bound) | p50 ms | p99 ms | longest gap s "
             "| recovery s | |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        r = row.result
        lines.append(f"| {row.scenario} | {r.requests} | {len(r.failures)} ({row.bound}) | "
                     f"{r.p(50) * 1000:.0f} | {r.p(99) * 1000:.0f} | {r.longest_gap:.1f} | "
                     f"{row.recovery:.0f} | {row.note} |")
    return "\n".join(lines)
