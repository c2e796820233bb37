"""The Grafana dashboards: generated from scripts/generate_dashboards.py and committed (a
staleness test), valid JSON with unique panel ids, the data source / namespace / cluster
variables, every query filtered by cluster and parsed by promtool."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import generate_dashboards
from harness import monitoring

FILES = sorted(generate_dashboards.TARGET_DIR.glob("*.json"))
DASHBOARDS = {path.stem: json.loads(path.read_text()) for path in FILES}
CLUSTER_FILTER = 'ray_io_cluster=~"$cluster"'


@pytest.fixture
def promtool_required() -> None:
    """Tests that run promtool: skipped where it cannot be installed, failed under CI (CI=true)."""
    outcome = monitoring.promtool_missing_outcome()
    if outcome is not None:
        (pytest.fail if outcome[0] == "fail" else pytest.skip)(outcome[1])


def test_committed_dashboards_are_generated_and_current() -> None:
    assert sorted(DASHBOARDS) == sorted(generate_dashboards.DASHBOARDS)
    assert generate_dashboards.main(["--check"]) == 0, "run `make generate`"


def test_staleness_check_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate_dashboards, "TARGET_DIR", tmp_path)
    assert generate_dashboards.main(["--check"]) == 1  # missing
    assert generate_dashboards.main([]) == 0 and generate_dashboards.main(["--check"]) == 0
    first = sorted(tmp_path.glob("*.json"))[0]
    first.write_text(first.read_text().replace("Ray", "Rey", 1))
    assert generate_dashboards.main(["--check"]) == 1  # edited by hand
    (tmp_path / "stray.json").write_text("{}")
    generate_dashboards.main([])
    assert not (tmp_path / "stray.json").exists()


@pytest.fixture(params=sorted(DASHBOARDS), ids=str)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return DASHBOARDS[request.param]


def test_unique_uid_and_panel_ids(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in monitoring.all_panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {dashboard['uid']}"
    assert len({d["uid"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in monitoring.all_panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{panel['title']!r} overlaps another panel"
        taken |= cells


def test_datasource_and_cluster_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name, label in (("namespace", "namespace"), ("cluster", "ray_io_cluster")):
        variable = variables[name]
        assert variable["type"] == "query" and variable["datasource"]["uid"] == "${datasource}"
        assert variable["query"]["query"].startswith("label_values(") and variable["query"]["query"].endswith(f", {label})")
        assert variable["includeAll"] and variable["multi"]


def test_every_panel_uses_the_datasource_variable_and_filters_by_cluster(dashboard: dict[str, Any]) -> None:
    panels = [p for p in monitoring.all_panels(dashboard) if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            # Every selector of the query carries the cluster filter.
            selectors = target["expr"].count("{")
            assert target["expr"].count(CLUSTER_FILTER) == selectors, f"{panel['title']!r}: {target['expr']}"


def test_stable_diffusion_dashboard_covers_what_the_issue_asks() -> None:
    serve = DASHBOARDS["ray-serve-stable-diffusion"]
    text = " ".join(p["title"].lower() for p in monitoring.all_panels(serve))
    for topic in ("requests per second", "latency", "error", "replicas", "queue", "batch size"):
        assert topic in text, topic
    overview = " ".join(p["title"].lower() for p in monitoring.all_panels(DASHBOARDS["ray-cluster-overview"]))
    for topic in ("nodes", "cpu", "gpu", "memory", "object store", "tasks", "actors"):
        assert topic in overview, topic


@pytest.mark.usefixtures("promtool_required")
def test_every_query_parses(dashboard: dict[str, Any], tmp_path: Path) -> None:
    queries = monitoring.dashboard_queries(dashboard)
    assert len(queries) > 10
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(monitoring.queries_as_rules_file(queries, dashboard["uid"])))
    result = monitoring.run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


@pytest.mark.usefixtures("promtool_required")
def test_the_parse_check_can_fail(tmp_path: Path) -> None:
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(monitoring.queries_as_rules_file([("broken", 'sum(rate(x{a="b"}[5m])')], "broken")))
    assert monitoring.run_promtool("check", "rules", str(path)).returncode != 0


def test_metric_name_extraction() -> None:
    assert monitoring.metric_names(
        'histogram_quantile(0.99, sum by (le, deployment) (rate(ray_serve_x_bucket{a=~"$b"}[$__rate_interval])))'
        ' / on (deployment) group_left (app) max(up{a="b"} offset 5m) > 1e+06 and absent(kube_pod_info)'
    ) == {"ray_serve_x_bucket", "up", "kube_pod_info"}
    assert monitoring.metric_names("ray_io_cluster:ray_serve_http_requests:rate5m > 0.05") == {
        "ray_io_cluster:ray_serve_http_requests:rate5m"}
