"""Monitoring: PodMonitors and the PrometheusRule render where the monitoring.coreos.com/v1 API
is (or when forced), select the pods the operator labels and name ports the pod templates
declare; the rules parse (promtool check rules) and every alert fires on crafted series and stays
silent on healthy ones (promtool test rules, tests/data/monitoring/rules/); the heads get the Grafana
embedding environment; the runbook and the README's alert table cover every alert."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generate import alert_table
from harness import monitoring
from harness.render import Renderer, RenderRequest, dependency_archive, of_kind
from harness.scenarios import Scenario, scenarios
from harness.tools import CHART_DIR, NAMESPACE, RELEASE, REPO, TEST_DATA_DIR
from harness.values import merged_values

API = ("monitoring.coreos.com/v1",)
MONITORING_KINDS = ("PodMonitor", "ServiceMonitor", "PrometheusRule")
RULE_TESTS = TEST_DATA_DIR / "monitoring" / "rules"
RUNBOOK = REPO / "docs" / "runbook.md"
DEFAULTS = Scenario("defaults", ())
# With these values a head declares the metrics ports; the KubeRay operator (v1.7.0,
# DefaultHeadPodTemplate) adds only a port named `metrics` (8080), and only when none is declared.
HEAD_METRICS_PORTS = {"metrics": 8080, "as-metrics": 44217, "dash-metrics": 44227}


@pytest.fixture
def promtool_required() -> None:
    """Tests that run promtool: skipped where it cannot be installed, failed under CI (CI=true)."""
    outcome = monitoring.promtool_missing_outcome()
    if outcome is not None:
        (pytest.fail if outcome[0] == "fail" else pytest.skip)(outcome[1])


def monitored(values: dict[str, Any]) -> bool:
    own = any(service.get("enabled", True) for service in (values.get("rayServices") or {}).values())
    return values["monitoring"]["enabled"] and (values["rayCluster"]["enabled"] or values["stableDiffusion"]["enabled"] or own)


def podmonitor(objects: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    (found,) = [obj for obj in of_kind(objects, "PodMonitor") if obj["metadata"]["name"].endswith(suffix)]
    return found


# --------------------------------------------------------------------------- when they render


def test_monitoring_objects_need_the_api_unless_forced(render, scenario: Scenario) -> None:
    values = merged_values(scenario.values_files)
    without = [obj["kind"] for obj in render(scenario) if obj["kind"] in MONITORING_KINDS]
    if values["monitoring"]["force"] and monitored(values):
        assert sorted(without) == ["PodMonitor", "PodMonitor", "PrometheusRule"]
    else:
        assert without == [], f"{scenario} renders {without} although the cluster has no monitoring.coreos.com/v1"
    present = [obj["kind"] for obj in render(scenario, api_versions=API) if obj["kind"] in MONITORING_KINDS]
    assert sorted(present) == (["PodMonitor", "PodMonitor", "PrometheusRule"] if monitored(values) else [])


def test_the_forced_scenario_exists_so_the_matrix_validates_monitoring_objects() -> None:
    forced = [s for s in scenarios() if merged_values(s.values_files)["monitoring"]["force"]]
    assert forced, "a charts/ray-platform/ci scenario must set monitoring.force so every matrix test (CRD schemas, helm majors) sees the objects"


def test_switches_turn_parts_off(render) -> None:
    kinds = lambda *sets: sorted(o["kind"] for o in render(DEFAULTS, api_versions=API, set_values=sets)  # noqa: E731
                                 if o["kind"] in MONITORING_KINDS or o["metadata"]["name"].endswith(("-dashboard-ray-cluster-overview", "-dashboard-ray-serve-stable-diffusion")))
    assert kinds() == ["ConfigMap", "ConfigMap", "PodMonitor", "PodMonitor", "PrometheusRule"]
    assert kinds("monitoring.enabled=false") == []
    assert kinds("monitoring.prometheusRule.enabled=false") == ["ConfigMap", "ConfigMap", "PodMonitor", "PodMonitor"]
    assert kinds("monitoring.dashboards.enabled=false") == ["PodMonitor", "PodMonitor", "PrometheusRule"]
    assert kinds("rayCluster.enabled=false", "stableDiffusion.enabled=false") == ["ConfigMap", "ConfigMap"]


# --------------------------------------------------------------------------- PodMonitors


def test_podmonitors_select_the_ray_pods_and_name_declared_ports(render, scenario: Scenario) -> None:
    objects = render(scenario, api_versions=API)
    pods = monitoring.ray_pods(objects)
    if not monitored(merged_values(scenario.values_files)):
        assert not of_kind(objects, "PodMonitor")
        return
    for suffix, node_type in (("-ray-head", "head"), ("-ray-workers", "worker")):
        monitor = podmonitor(objects, suffix)
        expected = sorted(pod.where for pod, labels, _ in pods if labels[monitoring.RAY_NODE_TYPE] == node_type)
        selected = monitoring.selected_pods(monitor, objects)
        assert sorted(pod.where for pod, _ in selected) == expected, f"{suffix} selects the wrong pods"
        # It selects on a label only the operator sets, so it can never pick up a non-Ray pod.
        assert monitor["spec"]["selector"]["matchLabels"][monitoring.RAY_NODE_TYPE] == node_type
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            for pod, _ in selected:
                assert endpoint["port"] in monitoring.container_ports(pod), \
                    f"{suffix} scrapes port {endpoint['port']!r}, not declared by {pod.where}"
            relabeled = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
            assert relabeled["ray_io_cluster"] == ["__meta_kubernetes_pod_label_ray_io_cluster"]
            assert relabeled["ray_node_type"] == ["__meta_kubernetes_pod_label_ray_io_node_type"]
    head = podmonitor(objects, "-ray-head")
    assert [e["port"] for e in head["spec"]["podMetricsEndpoints"]] == list(HEAD_METRICS_PORTS)
    assert [e["port"] for e in podmonitor(objects, "-ray-workers")["spec"]["podMetricsEndpoints"]] == ["metrics"]


def test_podmonitors_leave_other_releases_alone(render) -> None:
    objects = render(DEFAULTS, api_versions=API)
    monitor = podmonitor(objects, "-ray-head")
    (pod, labels, _), *_ = monitoring.ray_pods(objects)
    assert monitoring.selector_matches(monitor["spec"]["selector"], labels)
    other = {**labels, "app.kubernetes.io/instance": "another-release"}
    assert not monitoring.selector_matches(monitor["spec"]["selector"], other)
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_heads_declare_the_metrics_ports_without_clashes(render, scenario: Scenario) -> None:
    for pod, labels, _ in monitoring.ray_pods(render(scenario)):
        ports = pod.spec["containers"][0].get("ports") or []
        names = [port["name"] for port in ports]
        numbers = [port["containerPort"] for port in ports]
        assert len(set(names)) == len(names) and len(set(numbers)) == len(numbers), f"{pod.where}: {ports}"
        if labels[monitoring.RAY_NODE_TYPE] == "head":
            declared = {port["name"]: port["containerPort"] for port in ports}
            assert {name: declared.get(name) for name in HEAD_METRICS_PORTS} == HEAD_METRICS_PORTS, pod.where


def test_release_label_lets_kube_prometheus_stack_pick_them_up(render) -> None:
    objects = render(DEFAULTS, api_versions=API)
    for obj in objects:
        if obj["kind"] in MONITORING_KINDS:
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", obj["metadata"]["name"]
    custom = render(DEFAULTS, api_versions=API, set_values=("monitoring.prometheusStack.release=", "monitoring.labels.prometheus=main"))
    for obj in custom:
        if obj["kind"] in MONITORING_KINDS:
            assert "release" not in obj["metadata"]["labels"] and obj["metadata"]["labels"]["prometheus"] == "main"


def test_interval_and_timeout_reach_every_endpoint(render) -> None:
    objects = render(DEFAULTS, api_versions=API, set_values=("monitoring.podMonitors.interval=1m", "monitoring.podMonitors.scrapeTimeout=50s"))
    for monitor in of_kind(objects, "PodMonitor"):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("1m", "50s")


# --------------------------------------------------------------------------- rules


def cluster_regexes(objects: list[dict[str, Any]]) -> set[str]:
    return {match for _, expr in monitoring.rule_queries(objects) for match in re.findall(r'ray_io_cluster=~"([^"]+)"', expr)}


def test_rules_only_look_at_this_releases_clusters(render) -> None:
    objects = render(DEFAULTS, api_versions=API)
    (regex,) = cluster_regexes(objects) - {f"{RELEASE}-sd-[a-z0-9]+"}
    for cluster in (RELEASE, f"{RELEASE}-sd{monitoring.RAYSERVICE_CLUSTER_SUFFIX}"):
        assert re.fullmatch(regex, cluster), (regex, cluster)
    for cluster in ("other", f"{RELEASE}-x", f"{RELEASE}-sd"):
        assert not re.fullmatch(regex, cluster), (regex, cluster)
    for _, expr in monitoring.rule_queries(objects):
        assert f'namespace="{NAMESPACE}"' in expr, expr
    only_rc = render(DEFAULTS, api_versions=API, set_values=("stableDiffusion.enabled=false",))
    assert cluster_regexes(only_rc) == {RELEASE}


def test_every_recorded_name_an_alert_uses_is_recorded(render) -> None:
    objects = render(DEFAULTS, api_versions=API)
    recorded = {rule["record"] for rule in monitoring.rules(objects) if "record" in rule}
    used = {name for _, expr in monitoring.rule_queries(objects) for name in monitoring.metric_names(expr) if ":" in name}
    assert used <= recorded, used - recorded
    assert all(":" in name for name in recorded)


def test_alerts_carry_severity_summary_description_and_runbook(render) -> None:
    for alert in monitoring.alerts(render(DEFAULTS, api_versions=API)):
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"])
        assert alert["annotations"]["runbook_url"].endswith(f"runbook.md#{alert['alert'].lower()}")


def overlay(tmp_path: Path, values: dict[str, Any]) -> Scenario:
    """A scenario of one values file (`--set` would turn numbers such as 0.8 into strings)."""
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(values))
    return Scenario(str(path), (path,))


def test_alert_settings_come_from_values(render, tmp_path: Path) -> None:
    objects = render(overlay(tmp_path, {"monitoring": {"prometheusRule": {
        "alerts": {"RayHeadDown": {"enabled": False},
                   "RayNodeMemoryPressure": {"severity": "critical", "for": "1h", "threshold": 0.8}},
        "alertLabels": {"team": "ml"}, "runbookBaseUrl": ""}}}), api_versions=API)
    alerts = {alert["alert"]: alert for alert in monitoring.alerts(objects)}
    assert "RayHeadDown" not in alerts
    memory = alerts["RayNodeMemoryPressure"]
    assert (memory["labels"], memory["for"]) == ({"severity": "critical", "team": "ml"}, "1h")
    assert memory["expr"].endswith("> 0.8")
    assert all("runbook_url" not in alert["annotations"] for alert in alerts.values())


@pytest.mark.usefixtures("promtool_required")
def test_rendered_rules_pass_promtool_check(render, scenario: Scenario, tmp_path: Path) -> None:
    objects = render(scenario, api_versions=API)
    if not of_kind(objects, "PrometheusRule"):
        pytest.skip(f"{scenario} renders no PrometheusRule (no Ray cluster or monitoring off)")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": monitoring.rule_groups(objects)}))
    result = monitoring.run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def run_rule_tests(objects: list[dict[str, Any]], workdir: Path) -> subprocess.CompletedProcess[str]:
    (workdir / "ray-platform-rules.yaml").write_text(yaml.safe_dump({"groups": monitoring.rule_groups(objects)}))
    files = sorted(RULE_TESTS.glob("*.yaml"))
    for path in files:
        shutil.copy(path, workdir / path.name)
    return monitoring.run_promtool("test", "rules", *(path.name for path in files), cwd=workdir)


@pytest.mark.usefixtures("promtool_required")
def test_alert_unit_tests_pass(render, tmp_path: Path) -> None:
    result = run_rule_tests(render(DEFAULTS, api_versions=API), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(list(RULE_TESTS.glob("*.yaml")))


@pytest.mark.usefixtures("promtool_required")
def test_alert_unit_tests_catch_a_changed_rule(render, tmp_path: Path) -> None:
    # A threshold the tests do not expect: the firing case no longer fires, promtool says so.
    objects = render(overlay(tmp_path, {"monitoring": {"prometheusRule": {"alerts": {"RayNodeMemoryPressure": {"threshold": 0.95}}}}}),
                     api_versions=API)
    result = run_rule_tests(objects, tmp_path)
    assert result.returncode != 0 and "RayNodeMemoryPressure" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test(render) -> None:
    fires, silent = set(), set()
    for path in RULE_TESTS.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test") or []:
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {alert["alert"] for alert in monitoring.alerts(render(DEFAULTS, api_versions=API))}
    assert names - fires == set(), f"alerts never made to fire: {sorted(names - fires)}"
    assert names - silent == set(), f"alerts never shown silent on healthy series: {sorted(names - silent)}"
    assert fires | silent <= names, f"tests of alerts that do not exist: {sorted((fires | silent) - names)}"


# --------------------------------------------------------------------------- docs


def test_runbook_has_a_section_per_alert(render) -> None:
    sections = re.findall(r"^## (\w+)\s*$", RUNBOOK.read_text(), re.M)
    names = [alert["alert"] for alert in monitoring.alerts(render(DEFAULTS, api_versions=API))]
    assert sorted(set(sections) & set(names)) == sorted(names), f"no runbook section: {sorted(set(names) - set(sections))}"
    assert not [s for s in sections if s.startswith("Ray") and s not in names], "runbook sections of alerts that do not exist"


def test_readme_alert_table_is_generated_from_the_rules() -> None:
    assert alert_table.main(["--check"]) == 0, "run `make generate`"


# --------------------------------------------------------------------------- head environment


def head_envs(objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{env["name"]: env.get("value") for env in pod.spec["containers"][0].get("env") or []}
            for pod, labels, _ in monitoring.ray_pods(objects) if labels[monitoring.RAY_NODE_TYPE] == "head"]


def test_heads_get_the_grafana_embedding_environment(render) -> None:
    objects = render(DEFAULTS)
    envs = head_envs(objects)
    assert len(envs) == 2
    for env in envs:
        assert env["RAY_GRAFANA_HOST"] == "http://kube-prometheus-stack-grafana.monitoring.svc"
        assert env["RAY_PROMETHEUS_HOST"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
        assert env["RAY_GRAFANA_IFRAME_HOST"] == "http://localhost:3000"
        assert (env["RAY_PROMETHEUS_NAME"], env["RAY_GRAFANA_ORG_ID"]) == ("Prometheus", "1")
    for pod, labels, _ in monitoring.ray_pods(objects):
        if labels[monitoring.RAY_NODE_TYPE] == "worker":
            names = {env["name"] for env in pod.spec["containers"][0].get("env") or []}
            assert not any(name.startswith("RAY_GRAFANA") for name in names), pod.where


def test_embedding_urls_follow_the_stack_release_and_user_env_wins(render) -> None:
    (env, *_) = head_envs(render(DEFAULTS, set_values=("monitoring.prometheusStack.release=prometheus",
                                                       "monitoring.prometheusStack.namespace=prometheus-system")))
    # kube-prometheus-stack truncates its fullname to 26 characters.
    assert env["RAY_PROMETHEUS_HOST"] == "http://prometheus-kube-prometheus-prometheus.prometheus-system.svc:9090"
    assert env["RAY_GRAFANA_HOST"] == "http://prometheus-grafana.prometheus-system.svc"
    objects = render(DEFAULTS, set_values=("rayCluster.head.env[0].name=RAY_GRAFANA_HOST",
                                           "rayCluster.head.env[0].value=http://my-grafana"))
    (cluster,) = of_kind(objects, "RayCluster")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    assert [e.get("value") for e in head if e["name"] == "RAY_GRAFANA_HOST"] == ["http://my-grafana"]
    assert all("RAY_GRAFANA_HOST" not in env for env in head_envs(render(DEFAULTS, set_values=("monitoring.grafanaEmbedding.enabled=false",))))


# --------------------------------------------------------------------------- dashboards


def test_each_dashboard_is_its_own_configmap_for_the_grafana_sidecar(render) -> None:
    files = sorted((CHART_DIR / "files" / "dashboards").glob("*.json"))
    assert len(files) >= 2
    maps = [obj for obj in render(DEFAULTS) if obj["kind"] == "ConfigMap" and "-dashboard-" in obj["metadata"]["name"]]
    assert len(maps) == len(files)
    for path, config_map in zip(files, sorted(maps, key=lambda m: m["metadata"]["name"])):
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "Ray"}
        assert config_map["data"] == {path.name: path.read_text().rstrip("\n")}
        assert len(path.read_bytes()) < 900 * 1024, "ConfigMaps are limited to about 1 MiB"
    moved = render(DEFAULTS, set_values=("monitoring.dashboards.namespace=grafana", "monitoring.dashboards.label=dash",
                                         "monitoring.dashboards.labelValue=yes", "monitoring.dashboards.folder=ML"))
    for config_map in [obj for obj in moved if "-dashboard-" in obj["metadata"]["name"]]:
        assert config_map["metadata"]["namespace"] == "grafana"
        assert config_map["metadata"]["labels"]["dash"] == "yes" and "grafana_dashboard" not in config_map["metadata"]["labels"]
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "ML"}


# --------------------------------------------------------------------------- NOTES.txt


def notes(renderer: Renderer, *set_values: str) -> str:
    return renderer.install_output(set_values).split("NOTES:", 1)[1]


def test_notes_say_when_monitoring_objects_are_skipped(renderer: Renderer) -> None:
    # `helm install --dry-run=client` renders NOTES.txt without a cluster: no monitoring.coreos.com/v1.
    skipped = notes(renderer)
    assert "SKIPPED: PodMonitors and PrometheusRule" in skipped and "monitoring.force=true" in skipped
    forced = notes(renderer, "monitoring.force=true")
    assert "SKIPPED" not in forced
    assert "PodMonitors and PrometheusRule for Prometheus (label release=kube-prometheus-stack)" in forced
    assert "Grafana dashboards: ConfigMaps labelled grafana_dashboard=1" in forced
    assert "Monitoring:" not in notes(renderer, "monitoring.enabled=false")


# --------------------------------------------------------------------------- the operator's ServiceMonitor


@pytest.mark.skipif(dependency_archive() is None, reason="the kuberay-operator chart archive is not in charts/ray-platform/charts/ "
                    "(`helm dependency build` needs network access to the KubeRay Helm repository)")
def test_operator_servicemonitor_is_passed_through_to_the_subchart() -> None:
    renderer = Renderer(with_dependency=True)
    try:
        objects = renderer.render(RenderRequest((), 4, set_values=("kuberay-operator.metrics.serviceMonitor.enabled=true",)))
    finally:
        renderer.close()
    (monitor,) = of_kind(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
