"""RayServices of your own (rayServices.<name>): the Serve config from the applications, the
cluster from the shared builder with the chart's security defaults, the exposure with its
authentication guard, NetworkPolicies, PodMonitors and per-cluster objects per service; and the
Stable Diffusion RayService, now built by the same builder, unchanged in shape."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

from harness.pods import pod_templates, ray_cluster_specs
from harness.render import Renderer, RenderRequest, load_yaml, of_kind
from harness.scenarios import Scenario, scenarios
from harness.serveconfig import serve_config_of, serve_configs_of
from harness.tools import REPO
from harness.versions import HELM_MAJORS

EXAMPLE_FILE = REPO / "values" / "examples" / "own-serve-app.yaml"
EXAMPLE = next(s for s in scenarios() if s.name == "values/examples/own-serve-app.yaml")
DEFAULTS = scenarios()[0]
NO_SD_VALUES = {"stableDiffusion": {"enabled": False}}
TEXT = "ray-platform-text"
MONITORING = ("monitoring.coreos.com/v1",)
WORKERS = {"cpu": {"minReplicas": 0, "maxReplicas": 2, "resources": {
    "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}}}


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert found, f"no {kind}/{name}; have {[o['metadata']['name'] for o in of_kind(objects, kind)]}"
    return found[0]


def service(applications: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"applications": applications, "cluster": {"workerGroups": WORKERS}, **more}


@pytest.fixture(scope="module")
def two_services(scenario_of) -> Scenario:
    """The Stable Diffusion service and two of your own side by side, one behind an HTTPRoute."""
    return scenario_of({"rayServices": {
        "echo": service([{"name": "echo", "import_path": "echo_app.main:app", "route_prefix": "/echo"}],
                        ingress={"enabled": True, "hosts": ["echo.example.com"],
                                 "auth": {"external": {"url": "https://auth.example.com/oauth2/auth"}}}),
        "llm": service([{"name": "chat", "import_path": "llm.serve.app", "route_prefix": "/v1"},
                        {"name": "embed", "import_path": "llm.embed:app", "route_prefix": None}],
                       ingress={"enabled": True, "kind": "HTTPRoute", "hosts": ["llm.example.com"],
                                "gateway": {"name": "web"}, "allowUnauthenticated": True},
                       serveConfig={"http_options": {"request_timeout_s": 120}}),
    }})


def test_serve_config_is_the_applications_as_given(render) -> None:
    values = yaml.safe_load(EXAMPLE_FILE.read_text())["rayServices"]["text"]
    config = serve_configs_of(render(EXAMPLE))[TEXT]
    assert config["applications"] == values["applications"]
    assert {k: v for k, v in config.items() if k != "applications"} == values["serveConfig"]


@pytest.mark.parametrize("helm_major", HELM_MAJORS, ids=lambda m: f"helm{m}")
def test_both_majors_render_the_same_serve_config_with_a_null_route(render, two_services, helm_major) -> None:
    config = serve_configs_of(render(two_services, helm_major))["ray-platform-llm"]
    assert [(a["name"], a["route_prefix"]) for a in config["applications"]] == [("chat", "/v1"), ("embed", None)]
    assert config["http_options"] == {"request_timeout_s": 120}


def test_own_cluster_comes_from_the_builder_with_the_security_defaults(render) -> None:
    objects = render(EXAMPLE)
    rayservice = named(objects, "RayService", TEXT)
    assert rayservice["metadata"]["labels"]["app.kubernetes.io/component"] == "rayservice-text"
    spec = rayservice["spec"]
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    assert spec["excludeHeadPodFromServeSvc"] is False
    cluster = spec["rayClusterConfig"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert cluster["enableInTreeAutoscaling"] is True
    head = cluster["headGroupSpec"]
    # Left out of the service's head: rayCluster.head's values.
    assert head["serviceType"] == "ClusterIP"
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert [g["groupName"] for g in cluster["workerGroupSpecs"]] == ["cpu"]
    templates = list(pod_templates(rayservice))
    assert len(templates) == 2
    for found in templates:
        pod = found.spec
        labels = found.template["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "rayservice-text"
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == f"{TEXT}-ray"
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "serve", "containerPort": 8000} in container["ports"]
        assert container["resources"]["limits"]
    head_pod = head["template"]["spec"]
    assert head_pod["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert "autoscaler-kube-api" in {v["name"] for v in head_pod["volumes"]}
    account = named(objects, "ServiceAccount", f"{TEXT}-ray")
    assert account["automountServiceAccountToken"] is False
    assert named(objects, "PodDisruptionBudget", f"{TEXT}-head")["spec"]["selector"]["matchLabels"][
        "app.kubernetes.io/component"] == "rayservice-text"


def test_ingress_points_at_the_serve_service_behind_authentication(render) -> None:
    ingress = named(render(EXAMPLE), "Ingress", TEXT)
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert annotations["nginx.ingress.kubernetes.io/auth-secret"] == "text-api-htpasswd"
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "60"  # request_timeout_s 30 + 30
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert ingress["spec"]["tls"] == [{"secretName": f"{TEXT}-tls", "hosts": ["text.example.com"]}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{TEXT}-serve-svc", "port": {"number": 8000}}


def test_each_service_gets_its_own_exposure(render, two_services) -> None:
    objects = render(two_services)
    echo = named(objects, "Ingress", "ray-platform-echo")
    assert echo["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-url"] == "https://auth.example.com/oauth2/auth"
    assert "nginx.ingress.kubernetes.io/proxy-read-timeout" not in echo["metadata"]["annotations"]  # no request timeout
    route = named(objects, "HTTPRoute", "ray-platform-llm")
    rule = route["spec"]["rules"][0]
    assert rule["backendRefs"][0]["name"] == "ray-platform-llm-serve-svc" and rule["backendRefs"][0]["port"] == 8000
    assert rule["timeouts"] == {"request": "150s"}
    assert route["spec"]["parentRefs"][0]["name"] == "web"
    assert {o["metadata"]["name"] for o in of_kind(objects, "Ingress") + of_kind(objects, "HTTPRoute")} == {
        "ray-platform-echo", "ray-platform-llm"}


@pytest.mark.parametrize("ingress, guard", [
    ({"enabled": True, "hosts": ["x.example.com"]}, "Ingress would put the Serve endpoint"),
    ({"enabled": True, "kind": "HTTPRoute", "hosts": ["x.example.com"], "gateway": {"name": "web"}},
     "HTTPRoute would put the Serve endpoint"),
], ids=["ingress", "httproute"])
def test_the_authentication_guard_holds_for_every_service(renderer: Renderer, scenario_of, ingress, guard) -> None:
    apps = [{"name": "a", "import_path": "m.app"}]
    scenario = scenario_of({"rayServices": {"ok": service(apps), "open": service(apps, ingress=ingress)}})
    error = renderer.error(RenderRequest(scenario.values_files, 4))
    assert error is not None and guard in error and "rayServices.open.ingress.allowUnauthenticated" in error
    allowed = scenario_of({"rayServices": {"open": service(apps, ingress={**ingress, "allowUnauthenticated": True})}})
    assert renderer.error(RenderRequest(allowed.values_files, 4)) is None


def test_network_policies_per_service(render, two_services) -> None:
    policies = {o["metadata"]["name"]: o for o in of_kind(render(two_services), "NetworkPolicy")}
    components = policies["ray-platform-ray-default-deny"]["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert set(components) >= {"raycluster", "stable-diffusion", "rayservice-echo", "rayservice-llm"}
    for name, component in (("ray-platform-echo", "rayservice-echo"), ("ray-platform-llm", "rayservice-llm")):
        within = policies[f"{name}-within-cluster"]
        assert within["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
        operator_ports = {p["port"] for p in policies[f"{name}-from-operator"]["spec"]["ingress"][0]["ports"]}
        assert operator_ports == {"dashboard", 52365, "serve"}
        from_ingress = policies[f"{name}-serve-from-ingress"]
        assert from_ingress["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": "serve"}]
        assert f"{name}-head-egress" in policies  # the autoscaler reaches the Kubernetes API
    assert "ray-platform-sd-serve-from-ingress" not in policies  # its ingress is off


def test_pod_monitors_and_rules_cover_the_service(render) -> None:
    objects = render(EXAMPLE, api_versions=MONITORING)
    rayservice = named(objects, "RayService", TEXT)
    monitors = {o["metadata"]["name"]: o for o in of_kind(objects, "PodMonitor")}
    for found in pod_templates(rayservice):
        labels = {**found.template["metadata"]["labels"],
                  "ray.io/node-type": "head" if "headGroupSpec" in found.path else "worker"}  # set by the operator
        ports = {p["name"] for p in found.spec["containers"][0]["ports"]}
        selecting = [m for m in monitors.values()
                     if m["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(selecting) == 1, found.where
        assert {e["port"] for e in selecting[0]["spec"]["podMetricsEndpoints"]} <= ports
    rules = yaml.safe_dump(of_kind(objects, "PrometheusRule")[0]["spec"])
    assert f"{TEXT}-[a-z0-9]+" in rules


def test_stable_diffusion_keeps_its_shape(render) -> None:
    objects = render(DEFAULTS)
    (sd,) = of_kind(objects, "RayService")
    assert sd["metadata"]["name"] == "ray-platform-sd"
    assert sd["metadata"]["labels"]["app.kubernetes.io/component"] == "stable-diffusion"
    spec = sd["spec"]
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    assert spec["excludeHeadPodFromServeSvc"] is True
    (app,) = load_yaml(spec["serveConfigV2"])["applications"]
    assert (app["name"], app["route_prefix"], app["import_path"]) == ("stable_diffusion", "/", "ray_platform_sd.app:entrypoint")
    assert [d["name"] for d in app["deployments"]] == ["APIIngress", "StableDiffusionModel"]
    cluster = spec["rayClusterConfig"]
    assert [g["groupName"] for g in cluster["workerGroupSpecs"]] == ["gpu"]
    head = cluster["headGroupSpec"]["template"]
    assert "ray-platform.io/app-checksum" in head["metadata"]["annotations"]
    container = head["spec"]["containers"][0]
    assert {"name": "PYTHONPATH", "value": "/opt/ray-platform/apps"} in container["env"]
    assert {"name": "serve", "containerPort": 8000} in container["ports"]
    assert head["spec"]["serviceAccountName"] == "ray-platform-sd-ray"
    assert serve_config_of(objects) == load_yaml(spec["serveConfigV2"])


def test_two_services_side_by_side(render, two_services) -> None:
    objects = render(two_services)
    services = {o["metadata"]["name"]: o for o in of_kind(objects, "RayService")}
    assert set(services) == {"ray-platform-sd", "ray-platform-echo", "ray-platform-llm"}
    assert {o["metadata"]["name"] for o in of_kind(objects, "ServiceAccount")} >= {
        "ray-platform-ray", "ray-platform-sd-ray", "ray-platform-echo-ray", "ray-platform-llm-ray"}
    budgets = {o["metadata"]["name"]: o for o in of_kind(objects, "PodDisruptionBudget")}
    assert set(budgets) >= {"ray-platform-echo-head", "ray-platform-llm-head",
                            "ray-platform-echo-worker-cpu", "ray-platform-llm-worker-cpu"}
    assert budgets["ray-platform-llm-worker-cpu"]["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/part-of": "ray-platform", "app.kubernetes.io/instance": "ray-platform",
        "app.kubernetes.io/component": "rayservice-llm", "ray-platform.io/node-type": "worker",
        "ray-platform.io/group": "cpu"}
    # The Stable Diffusion helpers still find the Stable Diffusion service among others.
    assert serve_config_of(objects)["applications"][0]["name"] == "stable_diffusion"
    components = {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in services.values()}
    assert components == {"stable-diffusion", "rayservice-echo", "rayservice-llm"}


def test_a_disabled_service_renders_nothing(render, scenario_of) -> None:
    scenario = scenario_of({"rayServices": {"off": {**service([{"name": "a", "import_path": "m.app"}]), "enabled": False}}})
    objects = render(scenario)
    assert not [o for o in objects if "ray-platform-off" in o["metadata"]["name"]]


BIG_HEAD = {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}


@pytest.mark.parametrize("kind", ["RayService", "RayJob"])
def test_head_resources_given_replace_the_default_resources_whole_in_both_derived_clusters(render, scenario_of, kind) -> None:
    """One rule for the clusters derived from rayCluster: a head asking 4 CPUs gets no 2-CPU limit
    from rayCluster.head (requests above limits, which the API server refuses); a head without
    resources keeps rayCluster.head's."""
    def head_resources(cluster: dict[str, Any]) -> dict[str, Any]:
        if kind == "RayService":
            values = {"rayServices": {"big": service([{"name": "a", "import_path": "a:app"}], cluster=cluster)}}
        else:
            values = {"rayJobs": {"big": {"entrypoint": "python big.py", "cluster": cluster}}}
        found = of_kind(render(scenario_of({**NO_SD_VALUES, **values})), kind)
        assert len(found) == 1
        (_, spec, _), = ray_cluster_specs(found[0])
        return spec["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]

    assert head_resources({"head": {"resources": BIG_HEAD}, "workerGroups": WORKERS}) == BIG_HEAD
    chart_head = of_kind(render(DEFAULTS), "RayCluster")[0]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert chart_head["resources"]["limits"]["cpu"] == "2", "rayCluster.head's default limit changed: the test lost its point"
    assert head_resources({"workerGroups": WORKERS}) == chart_head["resources"]


def test_one_host_serves_several_endpoints_on_different_paths_or_ingress_classes(render, scenario_of) -> None:
    """The refusal of a host and path taken twice (tests/data/bad_values/ray-services.yaml) is only
    for the same path on the same ingress class or Gateway."""
    def exposed(**ingress: Any) -> dict[str, Any]:
        return service([{"name": "a", "import_path": "a:app"}],
                       ingress={"enabled": True, "hosts": ["apps.example.com"], "allowUnauthenticated": True, **ingress})

    objects = render(scenario_of({**NO_SD_VALUES, "rayServices": {
        "root": exposed(), "chat": exposed(path="/chat"), "internal": exposed(className="internal-nginx")}}))
    rules = sorted((o["metadata"]["name"], o["spec"].get("ingressClassName", ""), r["host"], p["path"])
                   for o in of_kind(objects, "Ingress") for r in o["spec"]["rules"] for p in r["http"]["paths"])
    assert rules == [("ray-platform-chat", "", "apps.example.com", "/chat"),
                     ("ray-platform-internal", "internal-nginx", "apps.example.com", "/"),
                     ("ray-platform-root", "", "apps.example.com", "/")]


@pytest.mark.parametrize("delay", [0, 15])
def test_the_old_clusters_deletion_delay_is_passed_on_when_set(render, scenario_of, delay: int) -> None:
    """0 is a real setting (delete at once), so it must render, not fall back to the default."""
    text = yaml.safe_load(EXAMPLE_FILE.read_text())["rayServices"]["text"]
    objects = render(scenario_of({"stableDiffusion": {"rayClusterDeletionDelaySeconds": delay},
                                  "rayServices": {"text": {**text, "rayClusterDeletionDelaySeconds": delay + 1}}}))
    assert named(objects, "RayService", "ray-platform-sd")["spec"]["rayClusterDeletionDelaySeconds"] == delay
    assert named(objects, "RayService", TEXT)["spec"]["rayClusterDeletionDelaySeconds"] == delay + 1


def test_unset_deletion_delay_leaves_the_operators_default(render) -> None:
    for rayservice in of_kind(render(EXAMPLE), "RayService"):
        assert "rayClusterDeletionDelaySeconds" not in rayservice["spec"], rayservice["metadata"]["name"]
