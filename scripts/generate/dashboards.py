"""Generate the chart's Grafana dashboards (charts/ray-platform/files/dashboards/*.json) from code.

    python -m generate.dashboards           # write the JSON files
    python -m generate.dashboards --check   # exit 1 when a committed file is stale

Plain Python, no dashboards library: two dashboards do not need one, and the JSON stays stable
across library releases. Each dashboard has a data source variable and namespace / cluster
variables (`ray_io_cluster`, the label the chart's PodMonitors copy from the pods' ray.io/cluster),
and every query filters by them. templates/configmap-dashboards.yaml ships each file as its own
ConfigMap for Grafana's dashboard sidecar. The tests check that every query parses (promtool) and
that every metric exists in a real Ray (tests/serve/test_monitoring_metrics.py).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from generate.generated_file import check_flag
from harness.tools import CHART_DIR, REPO

WHAT = "files/dashboards/*.json"
TARGET_DIR = CHART_DIR / "files" / "dashboards"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Every query of both dashboards carries these matchers.
CLUSTER = 'namespace=~"$namespace",ray_io_cluster=~"$cluster"'
APP = CLUSTER + ',application=~"$application"'
DEPLOYMENT = APP + ',deployment=~"$deployment"'
RATE = "$__rate_interval"
SCHEMA_VERSION = 39
TAGS = ["ray", "ray-platform"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass
class Panel:
    title: str
    description: str
    queries: list[Query]
    kind: str = "timeseries"  # timeseries | stat
    unit: str = "short"
    width: int = 12
    height: int = 8
    stack: bool = False
    minimum: float | None = None
    maximum: float | None = None
    decimals: int | None = None
    # stat panels: value -> text, and colour steps [(from value, colour)]
    mappings: dict[int, str] = field(default_factory=dict)
    steps: list[tuple[float | None, str]] = field(default_factory=list)
    # Only nodes with GPUs export its metrics (Ray's GPU gauges): on a CPU-only cluster the panel
    # is empty by design. tests/node/test_monitoring_live.py checks such a query is valid
    # against a live Prometheus instead of asking it for data. Not written into the JSON.
    gpu_only: bool = False


@dataclass
class Row:
    title: str
    panels: list[Panel]


def histogram_quantile(q: float, metric: str, matchers: str, by: str = "") -> str:
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{matchers}}}[{RATE}])))"


def deployment_percentiles(metric: str) -> list[Query]:
    """p50 and p99 of a Serve histogram, one series per deployment."""
    return [Query(histogram_quantile(q, metric, DEPLOYMENT, "deployment"), f"{{{{deployment}}}} p{int(q * 100)}")
            for q in (0.5, 0.99)]


# --------------------------------------------------------------------------- JSON building


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if panel.stack else 5,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
        }
    steps = panel.steps or [(None, "green")]
    defaults["thresholds"] = {"mode": "absolute",
                              "steps": [{"color": colour, "value": value} for value, colour in steps]}
    defaults["color"] = {"mode": "thresholds" if panel.kind == "stat" else "palette-classic"}
    if panel.mappings:
        defaults["mappings"] = [{"type": "value", "options": {
            str(value): {"text": text, "index": index} for index, (value, text) in enumerate(sorted(panel.mappings.items()))}}]
    return {"defaults": defaults, "overrides": []}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                "orientation": "auto", "textMode": "auto"}
    return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"}}


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [{"refId": chr(ord("A") + index), "datasource": DATASOURCE, "expr": query.expr,
                     "legendFormat": query.legend or "__auto", "range": True}
                    for index, query in enumerate(panel.queries)],
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
    }


def _variable(name: str, label: str, query: str, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": multi,
        "multi": multi,
        "allValue": ".*",
        "current": {},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def base_variables() -> list[dict[str, Any]]:
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "includeAll": False, "multi": False,
         "options": []},
        _variable("namespace", "Namespace", "label_values(ray_node_cpu_count, namespace)"),
        _variable("cluster", "Ray cluster", 'label_values(ray_node_cpu_count{namespace=~"$namespace"}, ray_io_cluster)'),
    ]


# dashboard uid -> titles of its GPU-only panels, filled as each dashboard is built.
_GPU_ONLY: dict[str, list[str]] = {}


def gpu_only_panels() -> dict[str, list[str]]:
    """Dashboard uid -> titles of the panels that only GPU nodes give data (Panel.gpu_only)."""
    for build in DASHBOARDS.values():
        build()
    return {uid: list(titles) for uid, titles in _GPU_ONLY.items()}


def dashboard(uid: str, title: str, description: str, rows: list[Row],
              variables: list[dict[str, Any]]) -> dict[str, Any]:
    """Lay rows out top to bottom and panels left to right (24 columns), ids from 1."""
    _GPU_ONLY[uid] = [panel.title for row in rows for panel in row.panels if panel.gpu_only]
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in rows:
        panels.append({"id": next_id, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id, y = next_id + 1, y + 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel_json(panel, next_id, x, y))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": variables},
        "panels": panels,
    }


# --------------------------------------------------------------------------- the dashboards

HEALTHY_STEPS = [(None, "red"), (1, "green")]


def cluster_overview() -> dict[str, Any]:
    by_pod = "{{ray_io_cluster}} {{pod}}"
    rows = [
        Row("Cluster", [
            Panel("Alive nodes", "Ray nodes the GCS counts as alive.",
                  [Query(f"sum(ray_cluster_active_nodes{{{CLUSTER}}})")], kind="stat", width=4, height=4,
                  steps=HEALTHY_STEPS),
            Panel("Pending nodes", "Worker pods the autoscaler asked for that have not joined yet.",
                  [Query(f"sum(autoscaler_pending_nodes{{{CLUSTER}}})")], kind="stat", width=4, height=4,
                  steps=[(None, "green"), (1, "orange")]),
            Panel("Scrape targets up", "Ray metrics endpoints Prometheus reaches, of all it tries.",
                  [Query(f"sum(up{{{CLUSTER}}})", "up"), Query(f"count(up{{{CLUSTER}}})", "all")],
                  kind="stat", width=4, height=4),
            Panel("Running tasks", "Tasks in state RUNNING.",
                  [Query(f'sum(ray_tasks{{{CLUSTER},State="RUNNING"}})')], kind="stat", width=4, height=4),
            Panel("Alive actors", "Actors in state ALIVE (Serve replicas and controllers included).",
                  [Query(f'sum(ray_actors{{{CLUSTER},State="ALIVE"}})')], kind="stat", width=4, height=4),
            Panel("Object store used", "Share of the object store in use, all nodes.",
                  [Query(f"sum(ray_object_store_used_memory{{{CLUSTER}}}) / (sum(ray_object_store_used_memory{{{CLUSTER}}}) + sum(ray_object_store_available_memory{{{CLUSTER}}}))")],
                  kind="stat", unit="percentunit", width=4, height=4, decimals=1,
                  steps=[(None, "green"), (0.8, "orange"), (0.9, "red")]),
        ]),
        Row("CPU, GPU and memory", [
            Panel("CPU utilisation per node", "CPU use of each Ray node (its pod), percent of the node's CPUs.",
                  [Query(f"ray_node_cpu_utilization{{{CLUSTER}}}", by_pod)], unit="percent", minimum=0),
            Panel("Logical CPUs and GPUs", "Ray's logical resources: used and available, summed over nodes.",
                  [Query(f'sum by (Name, State) (ray_resources{{{CLUSTER},Name=~"CPU|GPU"}})', "{{Name}} {{State}}")],
                  stack=True, minimum=0),
            Panel("Memory used per node", "Memory in use on each Ray node, and the node's total.",
                  [Query(f"ray_node_mem_used{{{CLUSTER}}}", f"{by_pod} used"),
                   Query(f"ray_node_mem_total{{{CLUSTER}}}", f"{by_pod} total")], unit="bytes", minimum=0),
            Panel("Memory used share per node", "Used / total memory of each node; Ray's OOM killer acts at 95%.",
                  [Query(f"ray_node_mem_used{{{CLUSTER}}} / ray_node_mem_total{{{CLUSTER}}}", by_pod)],
                  unit="percentunit", minimum=0, maximum=1),
            Panel("GPU utilisation", "Utilisation of each GPU (only nodes with GPUs report it).",
                  [Query(f"ray_node_gpus_utilization{{{CLUSTER}}}", by_pod + " GPU {{GpuIndex}}")],
                  unit="percent", minimum=0, maximum=100, gpu_only=True),
            Panel("GPU memory used", "GPU memory in use per GPU (only nodes with GPUs report it).",
                  [Query(f"ray_node_gram_used{{{CLUSTER}}}", by_pod + " GPU {{GpuIndex}}")], unit="mbytes", minimum=0,
                  gpu_only=True),
        ]),
        Row("Object store", [
            Panel("Object store use per node", "Share of each node's object store in use.",
                  [Query(f"sum by (ray_io_cluster, pod) (ray_object_store_used_memory{{{CLUSTER}}}) / (sum by (ray_io_cluster, pod) (ray_object_store_used_memory{{{CLUSTER}}}) + sum by (ray_io_cluster, pod) (ray_object_store_available_memory{{{CLUSTER}}}))", by_pod)],
                  unit="percentunit", minimum=0, maximum=1),
            Panel("Object store memory by location", "Object bytes in shared memory, in the fallback (disk-backed) store and spilled to disk.",
                  [Query(f"sum by (Location) (ray_object_store_memory{{{CLUSTER}}})", "{{Location}}")],
                  unit="bytes", stack=True, minimum=0),
            Panel("Spilled objects", "Bytes of objects spilled to disk, per node.",
                  [Query(f'sum by (ray_io_cluster, pod) (ray_spill_manager_objects_bytes{{{CLUSTER},State="Spilled"}})', by_pod)],
                  unit="bytes", minimum=0),
            Panel("Disk used per node", "Used share of the disk holding Ray's session directory (/tmp/ray).",
                  [Query(f"ray_node_disk_usage{{{CLUSTER}}} / (ray_node_disk_usage{{{CLUSTER}}} + ray_node_disk_free{{{CLUSTER}}})", by_pod)],
                  unit="percentunit", minimum=0, maximum=1),
        ]),
        Row("Tasks and actors", [
            Panel("Tasks by state", "Tasks of every job by state.",
                  [Query(f"sum by (State) (ray_tasks{{{CLUSTER}}})", "{{State}}")], stack=True, minimum=0),
            Panel("Actors by state", "Actors by state.",
                  [Query(f"sum by (State) (ray_actors{{{CLUSTER}}})", "{{State}}")], stack=True, minimum=0),
            Panel("Running jobs", "Ray jobs running (Jobs API and drivers).",
                  [Query(f"sum by (ray_io_cluster) (ray_running_jobs{{{CLUSTER}}})", "{{ray_io_cluster}}")], minimum=0),
            Panel("Tasks that cannot be scheduled", "Tasks waiting, by reason: no node could ever fit them (Infeasible), or resources, workers or memory are busy.",
                  [Query(f"sum by (Reason) (ray_scheduler_unscheduleable_tasks{{{CLUSTER}}})", "{{Reason}}")], minimum=0),
        ]),
        Row("Head: dashboard and Jobs API", [
            Panel("Dashboard API requests by status", "Requests to the head's dashboard and Jobs API per second, by status class.",
                  [Query(f"sum by (http_status) (rate(ray_dashboard_api_requests_count_requests_total{{{CLUSTER}}}[{RATE}]))", "{{http_status}}")],
                  unit="reqps", stack=True, minimum=0, width=8),
            Panel("Dashboard API p99 latency", "99th percentile of the dashboard's answer time per endpoint.",
                  [Query(histogram_quantile(0.99, "ray_dashboard_api_requests_duration_seconds", CLUSTER, "endpoint"), "{{endpoint}}")],
                  unit="s", minimum=0, width=8),
            Panel("Dashboard event loop lag", "How late the dashboard's event loop runs: a busy or starved head.",
                  [Query(f"max by (ray_io_cluster) (ray_dashboard_event_loop_lag_seconds{{{CLUSTER}}})", "{{ray_io_cluster}}")],
                  unit="s", minimum=0, width=8),
        ]),
        Row("Autoscaler", [
            Panel("Nodes by type", "Active, pending and recently failed nodes per node type, as the autoscaler sees them.",
                  [Query(f"sum by (NodeType) (autoscaler_active_nodes{{{CLUSTER}}})", "active {{NodeType}}"),
                   Query(f"sum by (NodeType) (autoscaler_pending_nodes{{{CLUSTER}}})", "pending {{NodeType}}"),
                   Query(f"sum by (NodeType) (autoscaler_recently_failed_nodes{{{CLUSTER}}})", "failed {{NodeType}}")],
                  minimum=0),
            Panel("Pending resources", "Resources requested by waiting tasks and actors that no node offers yet.",
                  [Query(f"sum by (resource) (autoscaler_pending_resources{{{CLUSTER}}})", "{{resource}}")], minimum=0),
        ]),
    ]
    return dashboard("ray-platform-cluster", "Ray / Cluster overview",
                     "Nodes, CPU/GPU/memory, object store, tasks, actors and the autoscaler of the Ray clusters of ray-platform.",
                     rows, base_variables())


STATUS_APPLICATION = {0: "UNKNOWN", 1: "DEPLOY_FAILED", 2: "UNHEALTHY", 3: "NOT_STARTED", 4: "DELETING",
                      5: "DEPLOYING", 6: "RUNNING"}
STATUS_DEPLOYMENT = {0: "UNKNOWN", 1: "DEPLOY_FAILED", 2: "UNHEALTHY", 3: "UPDATING", 4: "UPSCALING",
                     5: "DOWNSCALING", 6: "HEALTHY"}


def serve_dashboard() -> dict[str, Any]:
    requests = f"ray_serve_num_http_requests_total{{{APP}}}"
    rows = [
        Row("Overview", [
            Panel("Requests per second", "HTTP requests the Serve proxies answered, per second.",
                  [Query(f"sum(rate({requests}[{RATE}]))")], kind="stat", unit="reqps", width=4, height=4, decimals=2),
            Panel("5xx share", "Share of HTTP requests answered with a 5xx status.",
                  [Query(f'sum(rate(ray_serve_num_http_requests_total{{{APP},status_code=~"5.."}}[{RATE}])) / sum(rate({requests}[{RATE}]))')],
                  kind="stat", unit="percentunit", width=4, height=4, decimals=1,
                  steps=[(None, "green"), (0.01, "orange"), (0.05, "red")]),
            Panel("p99 latency", "99th percentile of HTTP latency at the proxies.",
                  [Query(histogram_quantile(0.99, "ray_serve_http_request_latency_ms", APP))],
                  kind="stat", unit="ms", width=4, height=4, decimals=0),
            Panel("Healthy replicas", "Replicas passing their health checks, all deployments.",
                  [Query(f"sum(ray_serve_deployment_replica_healthy{{{DEPLOYMENT}}})")], kind="stat", width=4, height=4,
                  steps=HEALTHY_STEPS),
            Panel("Application status", "Serve's status of each application.",
                  [Query(f"max by (application) (ray_serve_application_status{{{APP}}})", "{{application}}")],
                  kind="stat", width=4, height=4, mappings=STATUS_APPLICATION,
                  steps=[(None, "red"), (5, "orange"), (6, "green")]),
            Panel("Queued requests", "Requests waiting in handles for a free replica.",
                  [Query(f"sum(ray_serve_deployment_queued_queries{{{DEPLOYMENT}}})")], kind="stat", width=4, height=4,
                  steps=[(None, "green"), (1, "orange")]),
        ]),
        Row("Traffic and latency", [
            Panel("Requests per second by route and status", "HTTP requests per route and status code.",
                  [Query(f"sum by (route, status_code) (rate({requests}[{RATE}]))", "{{route}} {{status_code}}")],
                  unit="reqps", stack=True, minimum=0),
            Panel("Errors per second by route and code", "HTTP requests answered with an error, by route and error code.",
                  [Query(f"sum by (route, error_code) (rate(ray_serve_num_http_error_requests_total{{{APP}}}[{RATE}]))", "{{route}} {{error_code}}")],
                  unit="reqps", stack=True, minimum=0),
            Panel("HTTP latency percentiles", "Latency at the proxies: p50, p90, p99 (one image takes seconds).",
                  [Query(histogram_quantile(q, "ray_serve_http_request_latency_ms", APP), f"p{int(q * 100)}")
                   for q in (0.5, 0.9, 0.99)], unit="ms", minimum=0),
            Panel("Processing latency by deployment", "p50 and p99 of the time replicas of each deployment spend on a request.",
                  deployment_percentiles("ray_serve_deployment_processing_latency_ms"), unit="ms", minimum=0),
        ]),
        Row("Replicas", [
            Panel("Healthy replicas by deployment", "Replicas passing health checks, and Serve's autoscaling target.",
                  [Query(f"sum by (deployment) (ray_serve_deployment_replica_healthy{{{DEPLOYMENT}}})", "{{deployment}} healthy"),
                   Query(f"max by (deployment) (ray_serve_autoscaling_target_replicas{{{DEPLOYMENT}}})", "{{deployment}} target")],
                  minimum=0),
            Panel("Deployment status", "Serve's status of each deployment (6 is HEALTHY).",
                  [Query(f"max by (deployment) (ray_serve_deployment_status{{{DEPLOYMENT}}})", "{{deployment}}")],
                  kind="stat", width=12, mappings=STATUS_DEPLOYMENT,
                  steps=[(None, "red"), (3, "orange"), (6, "green")]),
            Panel("Ongoing requests per replica", "Requests each replica is working on.",
                  [Query(f"sum by (deployment, replica) (ray_serve_replica_processing_queries{{{DEPLOYMENT}}})", "{{deployment}} {{replica}}")],
                  minimum=0),
            Panel("Replica start time", "p50 and p99 of the time a replica takes to start (model loading included).",
                  deployment_percentiles("ray_serve_replica_startup_latency_ms"), unit="ms", minimum=0),
        ]),
        Row("Queues and batching", [
            Panel("Queued requests by deployment", "Requests waiting in handles for a replica, and requests open at the proxies.",
                  [Query(f"sum by (deployment) (ray_serve_deployment_queued_queries{{{DEPLOYMENT}}})", "{{deployment}} queued"),
                   Query(f"sum(ray_serve_num_ongoing_http_requests{{{CLUSTER}}})", "open at proxies")],
                  minimum=0),
            Panel("Batch size", "Requests per batched model call: average and p90.",
                  [Query(f"sum by (deployment) (rate(ray_serve_actual_batch_size_sum{{{DEPLOYMENT}}}[{RATE}])) / sum by (deployment) (rate(ray_serve_actual_batch_size_count{{{DEPLOYMENT}}}[{RATE}]))", "{{deployment}} average"),
                   Query(histogram_quantile(0.9, "ray_serve_actual_batch_size", DEPLOYMENT, "deployment"), "{{deployment}} p90")],
                  minimum=0),
            Panel("Batch queue length", "Requests waiting to join a batch, per deployment.",
                  [Query(f"sum by (deployment) (ray_serve_batch_queue_length{{{DEPLOYMENT}}})", "{{deployment}}")], minimum=0),
            Panel("Batch execution time", "p50 and p99 of one batched model call.",
                  [Query(histogram_quantile(q, "ray_serve_batch_execution_time_ms", DEPLOYMENT, "deployment"),
                         f"{{{{deployment}}}} p{int(q * 100)}") for q in (0.5, 0.99)], unit="ms", minimum=0),
            Panel("GPU utilisation", "Utilisation of each GPU of the cluster (only nodes with GPUs report it).",
                  [Query(f"ray_node_gpus_utilization{{{CLUSTER}}}", "{{pod}} GPU {{GpuIndex}}")],
                  unit="percent", minimum=0, maximum=100, width=24, gpu_only=True),
        ]),
    ]
    variables = base_variables() + [
        _variable("application", "Application", f"label_values(ray_serve_application_status{{{CLUSTER}}}, application)"),
        _variable("deployment", "Deployment", f"label_values(ray_serve_deployment_status{{{APP}}}, deployment)"),
    ]
    return dashboard("ray-platform-serve", "Ray / Serve - Stable Diffusion",
                     "Traffic, latency, errors, replicas, queues and batching of the Ray Serve applications (the Stable Diffusion service of ray-platform).",
                     rows, variables)


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "ray-cluster-overview": cluster_overview,
    "ray-serve-stable-diffusion": serve_dashboard,
}


def render(build: Callable[[], dict[str, Any]]) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    return {TARGET_DIR / f"{name}.json": render(build) for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    wanted = expected_files()
    present = set(TARGET_DIR.glob("*.json"))
    if check_flag(__doc__.splitlines()[0], argv):
        stale = [path.name for path, text in wanted.items() if not path.exists() or path.read_text() != text]
        stray = [path.name for path in present - set(wanted)]
        if stale or stray:
            print(f"dashboards stale {stale} or not generated {stray}: run `make generate`", file=sys.stderr)
            return 1
        return 0
    TARGET_DIR.mkdir(parents=True, exist_ok=True)
    for path in present - set(wanted):
        path.unlink()
    for path, text in wanted.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
