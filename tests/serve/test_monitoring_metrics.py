"""Every metric name the chart's alert rules and Grafana dashboards use is exported by a real Ray.

Runs on the session's local Ray head (tests/serve/conftest.py: `ray start --head` with
metrics export, the Stable Diffusion app deployed from the chart's rendered Serve config), after a
few /imagine requests and one bad request. It scrapes the same endpoints the chart's PodMonitors
scrape on a head - node metrics (`metrics`), autoscaler (`as-metrics`), dashboard (`dash-metrics`)
- and checks the names against them. Names a CPU-only local head cannot export are listed, each
with its reason, in tests/data/monitoring/metric_allowlist.yaml.
"""
from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from harness import monitoring
from harness.scenarios import scenarios
from harness.tools import CHART_DIR, TEST_DATA_DIR

requests = pytest.importorskip("requests")

pytestmark = pytest.mark.serve


@pytest.fixture(autouse=True, scope="module")
def serve_stack() -> None:
    """Imported when these tests run, not at collection (seconds; see test_serve_app.py)."""
    pytest.importorskip("ray.serve")
    pytest.importorskip("diffusers")

ALLOWLIST = {entry["name"]: entry["reason"] for entry in
             yaml.safe_load((TEST_DATA_DIR / "monitoring" / "metric_allowlist.yaml").read_text())}
DASHBOARD_DIR = CHART_DIR / "files" / "dashboards"
# Ray writes metrics to its endpoints every few seconds; Serve's after the first requests.
SCRAPE_TIMEOUT_S = 90
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{|\s)")
FAMILY = re.compile(r"^# (?:TYPE|HELP) ([a-zA-Z_:][a-zA-Z0-9_:]*)\s")


def exported_names(text: str) -> set[str]:
    """Metric names in a Prometheus text exposition: samples and declared families."""
    names = set()
    for line in text.splitlines():
        match = FAMILY.match(line) or SAMPLE.match(line)
        if match:
            names.add(match.group(1))
    return names


def used_names(render) -> dict[str, set[str]]:
    """Metric name -> where it is used (rules of the default render, every dashboard)."""
    used: dict[str, set[str]] = {}
    objects = render(scenarios()[0], api_versions=("monitoring.coreos.com/v1",))
    queries = [(f"rule {where}", expr) for where, expr in monitoring.rule_queries(objects)]
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        queries += [(f"{path.stem} {where}", expr) for where, expr in monitoring.dashboard_queries(json.loads(path.read_text()))]
    assert len(queries) > 50
    for where, expr in queries:
        for name in monitoring.metric_names(expr):
            if ":" not in name:  # recorded by the chart's own rules from the names checked here
                used.setdefault(name, set()).add(where)
    return used


def scrape(urls: dict[str, str]) -> dict[str, set[str]]:
    found = {}
    for port, url in urls.items():
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, f"{port} ({url}): HTTP {response.status_code}"
        found[port] = exported_names(response.text)
    return found


def test_every_metric_of_rules_and_dashboards_is_exported(sd_app, local_ray, render) -> None:
    # Traffic for the Serve families: images, one refused request (400), one unknown route (404).
    for seed in range(3):
        response = requests.get(f"{sd_app}/imagine", params={"prompt": "a lighthouse", "img_size": 64,
                                                             "steps": 2, "seed": seed}, timeout=120)
        assert response.status_code == 200, response.text[:300]
    assert requests.get(f"{sd_app}/imagine", params={"img_size": 64}, timeout=60).status_code == 400
    requests.get(f"{local_ray.http_url}/no-such-route", timeout=60)

    used = used_names(render)
    wanted = set(used) - set(ALLOWLIST)
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    while True:
        by_port = scrape(local_ray.metrics_urls)
        exported = set().union(*by_port.values())
        missing = wanted - exported
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not missing, "metrics used by the rules/dashboards that a real Ray does not export:\n" + "\n".join(
        f"  {name}: used by {sorted(used[name])[:3]}" for name in sorted(missing))
    # Each head endpoint the PodMonitor scrapes serves something the rules or dashboards use.
    for port, names in by_port.items():
        assert names & wanted, f"nothing used comes from {port}"
    # The allow-list stays honest: every entry is still used.
    stale = sorted(set(ALLOWLIST) - set(used))
    assert not stale, f"allow-list entries no rule or dashboard uses any more: {stale}"
