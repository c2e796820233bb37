"""The chart's monitoring on live metrics: the real prometheus-operator (v0.93.0, from its Go
module) reconciles the session release's PodMonitors and PrometheusRule into a real Prometheus
(v3.16.0, from its Go module), both containers on the real node; Prometheus scrapes the release's
real Ray pods through the chart's NetworkPolicies.

The session release (values/dev.yaml, monitoring off) is upgraded once with
values/local/monitoring.yaml (monitoring on, the heads' pod templates unchanged: no Grafana
variables, so nothing restarts) and tests/node/monitoring_live_values.yaml (shorter alert
durations); the stack is removed at the end of this file.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from cluster.local.release import objects_of_kind
from cluster.node import monitoring_stack, platform, prometheus_api
from cluster.node.monitoring_stack import Stack
from tests_node_helpers import settled_pods

pytestmark = pytest.mark.node
OVERLAYS = (monitoring_stack.MONITORING_VALUES, Path(__file__).with_name("monitoring_live_values.yaml"))
# Prometheus needs a scrape or two after discovery; the PodMonitors scrape every 15 s here.
TARGETS_TIMEOUT = 180


@dataclasses.dataclass(frozen=True)
class Monitored:
    stack: Stack
    manifest: list[dict[str, Any]]


@pytest.fixture(scope="module")
def monitored(real_release) -> Iterator[Monitored]:
    cluster = real_release.cluster
    started = time.monotonic()
    # The CRDs first: the chart renders its PodMonitors and PrometheusRule only where the API
    # serves monitoring.coreos.com/v1.
    monitoring_stack.install_crds(cluster.kubectl)
    release = dataclasses.replace(real_release.release,
                                  values_files=(*real_release.release.values_files, *OVERLAYS))
    manifest = platform.install_release(cluster, release)
    try:
        stack = monitoring_stack.up(cluster.kubectl, cluster.node, cluster.images)
        print(f"monitoring stack up in {time.monotonic() - started:.0f} s: Prometheus {stack.url} "
              f"(pod {stack.pod})", flush=True)
        yield Monitored(stack, manifest)
    finally:
        monitoring_stack.down(cluster.kubectl)


def pod_matches(pod: dict[str, Any], selector: dict[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def container_port(pod: dict[str, Any], name: str) -> int | None:
    for container in pod["spec"]["containers"]:
        for port in container.get("ports") or []:
            if port.get("name") == name:
                return port["containerPort"]
    return None


def expected_targets(kubectl, monitors: list[dict[str, Any]]) -> dict[tuple[str, str, int], str]:
    """(scrape pool, pod, port) -> what it is, for every endpoint of every PodMonitor on every
    running pod it selects: what Prometheus must scrape."""
    expected = {}
    for monitor in monitors:
        meta = monitor["metadata"]
        namespaces = monitor["spec"].get("namespaceSelector", {}).get("matchNames") or [meta["namespace"]]
        for namespace in namespaces:
            pods = kubectl.get("pods", "-n", namespace)["items"]
            for pod in pods:
                if pod["status"].get("phase") != "Running" or not pod_matches(pod, monitor["spec"]["selector"]):
                    continue
                for index, endpoint in enumerate(monitor["spec"]["podMetricsEndpoints"]):
                    port = container_port(pod, endpoint["port"])
                    pool = f"podMonitor/{meta['namespace']}/{meta['name']}/{index}"
                    expected[(pool, pod["metadata"]["name"], port)] = (
                        f"{pool} pod {namespace}/{pod['metadata']['name']} port {endpoint['port']}"
                        + ("" if port else " (the pod declares no such port)"))
    return expected


def target_port(target: prometheus_api.Target) -> int:
    return int(target.endpoint.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def test_operator_reconciled_the_chart_monitors_into_prometheus(monitored: Monitored) -> None:
    """The operator turned each PodMonitor into a scrape pool and the PrometheusRule into rule
    groups Prometheus loaded: names from the release's manifest."""
    monitors = objects_of_kind(monitored.manifest, "PodMonitor")
    rules = objects_of_kind(monitored.manifest, "PrometheusRule")
    assert len(monitors) == 2 and len(rules) == 1, (
        f"the upgraded release renders {len(monitors)} PodMonitors and {len(rules)} PrometheusRules")
    deadline = time.monotonic() + TARGETS_TIMEOUT
    while True:
        pools = {t.pool.rsplit("/", 1)[0] for t in prometheus_api.active_targets(monitored.stack.url)}
        missing = [f"podMonitor/{m['metadata']['namespace']}/{m['metadata']['name']}"
                   for m in monitors
                   if f"podMonitor/{m['metadata']['namespace']}/{m['metadata']['name']}" not in pools]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not missing, f"no scrape pool in Prometheus for {missing}; it has {sorted(pools)}"


def test_every_podmonitor_target_is_up(monitored: Monitored, real_release) -> None:
    kubectl = real_release.kubectl
    monitors = objects_of_kind(monitored.manifest, "PodMonitor")
    # The stand-in for the KubeRay operator subchart's ServiceMonitor (monitoring_stack).
    monitors.append(monitoring_stack.kuberay_operator_monitor())
    deadline = time.monotonic() + TARGETS_TIMEOUT
    while True:
        expected = expected_targets(kubectl, monitors)
        targets = {(t.pool, t.pod, target_port(t)): t
                   for t in prometheus_api.active_targets(monitored.stack.url)}
        missing = [what for key, what in expected.items() if key not in targets]
        down = [f"{expected[key]}: {targets[key].health} ({targets[key].error or 'no scrape yet'})"
                for key in expected if key in targets and targets[key].health != "up"]
        if (not missing and not down) or time.monotonic() > deadline:
            break
        time.sleep(5)
    print(f"{len(expected)} PodMonitor targets up:", flush=True)
    for what in sorted(expected.values()):
        print(f"  {what}", flush=True)
    assert expected, "the PodMonitors select no running pod"
    assert not missing, "targets missing from Prometheus:\n" + "\n".join(missing)
    assert not down, "targets not up:\n" + "\n".join(down)
    # Each kind the chart's PodMonitors cover: heads (Ray, autoscaler, dashboard) and workers,
    # the Stable Diffusion cluster's (its Serve replicas' metrics) among them; the operator.
    kinds = {pool.split("/")[2] for pool, _, _ in expected}
    assert {"kuberay-operator"} < kinds and len(kinds) == 3, kinds


def test_prometheus_operator_scrapes_itself(monitored: Monitored) -> None:
    """The operator's own ServiceMonitor (as its module ships it) through the same selector."""
    deadline = time.monotonic() + TARGETS_TIMEOUT
    while True:
        own = [t for t in prometheus_api.active_targets(monitored.stack.url)
               if t.pool.startswith(f"serviceMonitor/{monitoring_stack.NAMESPACE}/prometheus-operator/")]
        if (own and all(t.health == "up" for t in own)) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert own and all(t.health == "up" for t in own), [(t.name, t.health, t.error) for t in own]


# --------------------------------------------------------------------------- alerts

# A scrape (15 s), then the recording rule's and the alert's evaluations (15 s each) before the
# `for` clock even starts; slack for a busy 2-core machine.
EVALUATION_SLACK = 15 + 2 * 15 + 30


def alert_states(url: str, name: str) -> set[str]:
    return {a["state"] for a in prometheus_api.alerts(url) if a["labels"].get("alertname") == name}


def rule_for_seconds(manifest: list[dict[str, Any]], name: str) -> float:
    from harness import monitoring

    rule = next(r for r in monitoring.alerts(manifest) if r["alert"] == name)
    duration = rule["for"]
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]


def watch_alert(url: str, name: str, started: float, timeout: float) -> dict[str, float]:
    """Seconds from `started` to the alert's first pending and first firing state."""
    seen: dict[str, float] = {}
    while "firing" not in seen and time.monotonic() - started < timeout:
        for state in alert_states(url, name):
            seen.setdefault(state, time.monotonic() - started)
        time.sleep(2)
    return seen


def wait_resolved(url: str, name: str, timeout: float, keep_going=None) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if keep_going:
            keep_going()
        if not alert_states(url, name):
            return time.monotonic() - started
        time.sleep(2)
    return None


def test_rules_loaded_and_healthy(monitored: Monitored) -> None:
    """Prometheus loaded every rule of the chart's PrometheusRule, each evaluating without error."""
    from harness import monitoring

    wanted = {r.get("alert") or r.get("record") for r in monitoring.rules(monitored.manifest)}
    deadline = time.monotonic() + 120
    while True:
        loaded = {r["name"]: r for g in prometheus_api.rule_groups(monitored.stack.url)
                  for r in g["rules"]}
        if wanted <= set(loaded) and all(loaded[n]["health"] == "ok" for n in wanted):
            break
        if time.monotonic() > deadline:
            missing = sorted(wanted - set(loaded))
            bad = [f"{n}: {loaded[n]['health']} {loaded[n].get('lastError', '')}"
                   for n in sorted(wanted & set(loaded)) if loaded[n]["health"] != "ok"]
            pytest.fail(f"rules not loaded: {missing}; rules not ok: {bad}")
        time.sleep(5)
    print(f"{len(wanted)} rules loaded, health ok", flush=True)


# RayService name -> (host URL, route prefix): one forward per Service for the whole file; a
# second node.expose of the same name would stop the first and leave its URL refusing.
_SERVE_URLS: dict[str, tuple[str, str]] = {}


def serve_url(real_release, manifest: list[dict[str, Any]]) -> tuple[str, str]:
    from cluster.local.up import serve_route_prefix
    from cluster.node import node

    service = objects_of_kind(manifest, "RayService")[0]
    name = service["metadata"]["name"]
    if name not in _SERVE_URLS:
        address = platform.service_ip(real_release.kubectl, f"{name}-serve-svc", real_release.namespace)
        url = node.expose(real_release.cluster.node, f"monitoring-{name}", address, 8000)
        _SERVE_URLS[name] = (url, serve_route_prefix(service).rstrip("/"))
    return _SERVE_URLS[name]


def get_status(url: str, timeout: float = 300) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_serve_overload_fires_high_error_rate_and_resolves(monitored: Monitored, real_release) -> None:
    """More concurrent /imagine calls than the model's replicas and queue hold: Serve answers the
    rest 503 at once (the backpressure path); RayServeHighErrorRate goes pending, then firing
    within its `for` plus the scrape and evaluation intervals. Fast 400s (an img_size that is not
    a multiple of 8) then bring the 5xx share under the threshold and the alert resolves."""
    from concurrent.futures import ThreadPoolExecutor

    name = "RayServeHighErrorRate"
    url, prefix = serve_url(real_release, monitored.manifest)
    # Ray exports a counter from its first increment: a series born at 28 (a whole burst within
    # one scrape) has no increase rate() can see. The first burst makes the 503 series exist; the
    # fault measured is the second, a scrape later.
    first = burst(real_release, monitored.manifest)
    time.sleep(20)
    started = time.monotonic()
    statuses = burst(real_release, monitored.manifest)
    overloaded = statuses.count(503)
    print(f"overload: 2 x {len(statuses)} concurrent /imagine -> {first.count(503)}, then "
          f"{overloaded} x 503 (the second burst took {time.monotonic() - started:.0f} s)", flush=True)
    assert overloaded, f"no 503 from an overloaded Serve app: {statuses}"
    limit = rule_for_seconds(monitored.manifest, name) + EVALUATION_SLACK
    seen = watch_alert(monitored.stack.url, name, started, timeout=limit + 120)
    print(f"{name}: pending after {seen.get('pending', float('nan')):.0f} s, firing after "
          f"{seen.get('firing', float('nan')):.0f} s (for {rule_for_seconds(monitored.manifest, name):.0f} s)",
          flush=True)
    assert "firing" in seen, f"{name} never fired within {limit + 120:.0f} s (states seen: {seen})"
    assert seen["firing"] <= limit, f"{name} fired after {seen['firing']:.0f} s, bound {limit:.0f} s"
    bad = f"{url}{prefix}/imagine?prompt=x&img_size=65"

    def dilute() -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = set(pool.map(lambda _: get_status(bad, 30), range(40)))
        assert codes == {400}, codes

    resolved = wait_resolved(monitored.stack.url, name, timeout=300, keep_going=dilute)
    print(f"{name}: resolved {resolved} s after the 400s began", flush=True)
    assert resolved is not None, f"{name} still {alert_states(monitored.stack.url, name)} after 300 s"


# The agent's process title (Ray sets it); its command line as started names no unique word: the
# raylet's own arguments mention dashboard/agent.py too.
AGENT = "^ray::DashboardAgent$"


def test_hung_worker_fires_worker_not_ready_and_resolves(monitored: Monitored, real_release) -> None:
    """A worker whose Ray node agent hangs (SIGSTOP: what the kubelet's readiness probe calls,
    KubeRay's httpGet /api/healthz on 52365) turns not ready while Running; kube-state-metrics
    reports it and RayWorkerPodsNotReady goes pending, then firing within the probe's failure
    time plus the alert's `for` and the scrape and evaluation intervals. SIGCONT: ready again, the
    alert resolves. (Killing the raylet instead makes the pod fail and KubeRay replace it, with
    autoscaler v2's restartPolicy Never: the new pod is ready again before any `for` could pass.)"""
    name = "RayWorkerPodsNotReady"
    cluster = real_release.ray_cluster()["metadata"]["name"]
    worker = settled_pods(real_release, f"ray.io/cluster={cluster},ray.io/node-type=worker")[0]
    pod_name = worker["metadata"]["name"]
    probe = next(c for c in worker["spec"]["containers"] if c["name"] == "ray-worker")["readinessProbe"]
    not_ready_after = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3) + probe.get(
        "timeoutSeconds", 1)
    limit = not_ready_after + rule_for_seconds(monitored.manifest, name) + EVALUATION_SLACK
    started = time.monotonic()
    stop = real_release.exec(worker, "ray-worker", "pkill", "-STOP", "-f", AGENT)
    assert stop.returncode == 0, f"no process {AGENT} to stop in {pod_name}: {stop.stdout}{stop.stderr}"
    try:
        seen = watch_alert(monitored.stack.url, name, started, timeout=limit + 120)
        fired = [a for a in prometheus_api.alerts(monitored.stack.url)
                 if a["labels"].get("alertname") == name]
    finally:
        real_release.exec(worker, "ray-worker", "pkill", "-CONT", "-f", AGENT)
    print(f"{name} for {pod_name}: pending after {seen.get('pending', float('nan')):.0f} s, firing "
          f"after {seen.get('firing', float('nan')):.0f} s (probe {not_ready_after} s, for "
          f"{rule_for_seconds(monitored.manifest, name):.0f} s)", flush=True)
    assert "firing" in seen, f"{name} never fired within {limit + 120:.0f} s (states seen: {seen})"
    assert {a["labels"].get("pod") for a in fired} == {pod_name}, fired
    assert seen["firing"] <= limit, f"{name} fired after {seen['firing']:.0f} s, bound {limit:.0f} s"
    resolved = wait_resolved(monitored.stack.url, name, timeout=180)
    print(f"{name}: resolved {resolved} s after SIGCONT", flush=True)
    assert resolved is not None, f"{name} still {alert_states(monitored.stack.url, name)} 180 s after SIGCONT"


# --------------------------------------------------------------------------- dashboards

JOB = ("import ray; ray.init(); "
       "print(sum(ray.get([ray.remote(lambda x: x * x).remote(i) for i in range(50)])))")
# Grafana's interval macros for a 15 s scrape: $__rate_interval is max(4 x scrape, ...).
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "${__rate_interval}": "1m",
                     "$__interval": "15s", "${__interval}": "15s",
                     "$__range": "10m", "${__range}": "10m"}


def traffic(real_release, manifest: list[dict[str, Any]]) -> list[str]:
    """What the panels plot: /imagine through the RayService's Serve Service (successes, a burst
    past its queues for the 5xx panels, one bad request for the 4xx ones) and a Ray job through
    the RayCluster head's Jobs API. The batch gauges exist only while requests wait for a batch,
    so the burst runs in the background while the panels are read (test below)."""
    from cluster.local.up import imagine

    url, prefix = serve_url(real_release, manifest)
    for _ in range(4):
        imagine(url, prefix)
    codes = [get_status(f"{url}{prefix}/imagine?prompt=x&img_size=65")]
    head = real_release.head_pod(real_release.ray_cluster()["metadata"]["name"])
    result = real_release.exec(head, "ray-head", "ray", "job", "submit", "--address",
                               "http://127.0.0.1:8265", "--", "python", "-c", JOB)
    assert result.returncode == 0, f"ray job submit failed: {result.stdout}{result.stderr}"
    return [f"4 x GET {prefix}/imagine, 1 x bad img_size ({codes})", "a Ray job of 50 tasks"]


def burst(real_release, manifest: list[dict[str, Any]], size: int = 64, steps: int = 2) -> list[int]:
    """More concurrent /imagine calls than the model's replicas and queue hold. All at once: past
    the model's maxOngoingRequests + maxQueuedRequests the ingress answers 503 at once, however
    short each image is (the smallest by default: the burst stays cheap)."""
    from concurrent.futures import ThreadPoolExecutor

    url, prefix = serve_url(real_release, manifest)
    heavy = f"{url}{prefix}/imagine?prompt=a+red+fox&img_size={size}&steps={steps}"
    with ThreadPoolExecutor(max_workers=48) as pool:
        return list(pool.map(lambda _: get_status(heavy), range(48)))


def fill(expr: str, variables: dict[str, str]) -> str:
    for macro, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(macro, value)
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", variables[name]).replace(f"${name}", variables[name])
    return expr


def test_every_dashboard_panel_answers(monitored: Monitored, real_release) -> None:
    import json
    import threading

    from generate import dashboards as generate_dashboards
    from harness import monitoring

    print("traffic: " + "; ".join(traffic(real_release, monitored.manifest)), flush=True)
    statuses: list[int] = []
    # Longer images here (about two minutes of queue on 2 cores): the batch gauges are exported
    # only while requests wait for a batch, and must still be there when the panels are read.
    background = threading.Thread(target=lambda: statuses.extend(
        burst(real_release, monitored.manifest, size=128, steps=20)))
    background.start()
    # Two scrapes into the burst, and a rule evaluation for the recorded series.
    time.sleep(40)
    clusters = "|".join(
        [o["metadata"]["name"] for o in objects_of_kind(monitored.manifest, "RayCluster")]
        + [f"{o['metadata']['name']}-[a-z0-9]+" for o in objects_of_kind(monitored.manifest, "RayService")])
    variables = {"namespace": real_release.namespace, "cluster": clusters,
                 "application": ".+", "deployment": ".+", "datasource": "prometheus"}
    gpu_only = generate_dashboards.gpu_only_panels()
    empty, answered, valid_gpu_only, panels = [], [], [], 0
    for path in sorted(generate_dashboards.TARGET_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in monitoring.all_panels(dashboard):
            if panel["type"] == "row":
                continue
            panels += 1
            for target in panel.get("targets") or []:
                expr = fill(target["expr"], variables)
                where = f"{dashboard['title']} / {panel['title']!r} {target.get('refId')}"
                try:
                    series = prometheus_api.query(monitored.stack.url, expr)
                except prometheus_api.PrometheusError as error:
                    empty.append(f"{where}: {expr} -> {error}")
                    continue
                if panel["title"] in gpu_only.get(dashboard["uid"], []):
                    # No GPU here: the query must be valid; data would come from GPU nodes only.
                    valid_gpu_only.append(where)
                elif series:
                    answered.append(where)
                else:
                    empty.append(f"{where}: {expr}")
    print(f"{panels} panels: {len(answered)} queries answered, {len(valid_gpu_only)} GPU-only "
          f"queries valid ({', '.join(valid_gpu_only)})", flush=True)
    background.join()
    print(f"burst: {len(statuses)} concurrent /imagine -> {sorted(set(statuses))}", flush=True)
    assert len(valid_gpu_only) == sum(len(titles) for titles in gpu_only.values()), valid_gpu_only
    assert not empty, f"{len(empty)} panel queries returned no series:\n" + "\n".join(empty)
