"""Prometheus' HTTP API (v1) as the monitoring tests read it: targets, instant queries, rules
and alerts. Standard library only; the URL is the host's forward (monitoring_stack.up)."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class PrometheusError(RuntimeError):
    """The API answered an error (a bad expression, ...): its type and message."""


def get(url: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=30) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """The series of an instant query (a scalar or string answer as one pseudo-series)."""
    try:
        data = get(url, "/api/v1/query", query=expr)
    except urllib.error.HTTPError as error:  # 400/422 carry the parser's message in the body
        detail = json.loads(error.read() or b"{}")
        raise PrometheusError(f"{detail.get('errorType')}: {detail.get('error')}") from error
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    return data["result"]


@dataclass(frozen=True)
class Target:
    pool: str          # the scrape pool: podMonitor/<ns>/<name>/<endpoint index>, serviceMonitor/...
    job: str
    pod: str
    namespace: str
    endpoint: str      # the scrape URL
    health: str        # up / down / unknown
    error: str

    @property
    def name(self) -> str:
        return f"{self.pool} pod {self.namespace}/{self.pod} ({self.endpoint})"


def active_targets(url: str) -> list[Target]:
    targets = get(url, "/api/v1/targets", state="active")["activeTargets"]
    return [Target(t["scrapePool"], t["labels"].get("job", ""), t["labels"].get("pod", ""),
                   t["labels"].get("namespace", ""), t["scrapeUrl"], t["health"],
                   t.get("lastError", "")) for t in targets]


def rule_groups(url: str) -> list[dict[str, Any]]:
    return get(url, "/api/v1/rules")["groups"]


def alerts(url: str) -> list[dict[str, Any]]:
    """Pending and firing alerts, each with labels, state and activeAt."""
    return get(url, "/api/v1/alerts")["alerts"]
