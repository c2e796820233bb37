"""Safe exposure in every scenario: what Ingresses and HTTPRoutes point at, that no dashboard is
reachable without authentication, the NGINX and cert-manager annotations, HTTPRoute schema checks,
ServiceAccounts and the autoscaler's token, PodDisruptionBudgets; and the NOTES warning for the
explicit allowUnauthenticated escape hatch."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.crds import CrdRegistry
from harness.pods import pod_templates, ray_cluster_specs
from harness.render import Renderer, RenderRequest, of_kind
from harness.scenarios import Scenario, scenarios
from harness.versions import HELM_MAJORS

TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
NGINX_AUTH = ("nginx.ingress.kubernetes.io/auth-type", "nginx.ingress.kubernetes.io/auth-url")
BY_NAME = {str(s): s for s in scenarios()}


def named(path: str) -> Scenario:
    return BY_NAME[f"charts/ray-platform/ci/{path}"]


def backends(obj: dict[str, Any]) -> list[tuple[str, int]]:
    """(Service, port) of every backend of an Ingress or HTTPRoute."""
    if obj["kind"] == "Ingress":
        return [(p["backend"]["service"]["name"], p["backend"]["service"]["port"]["number"])
                for rule in obj["spec"]["rules"] for p in rule["http"]["paths"]]
    return [(ref["name"], ref["port"]) for rule in obj["spec"]["rules"] for ref in rule["backendRefs"]]


def exposures(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return of_kind(objects, "Ingress") + of_kind(objects, "HTTPRoute")


def ray_auth_modes(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Cluster (RayCluster / RayService) name -> authOptions.mode."""
    return {obj["metadata"]["name"]: (spec.get("authOptions") or {}).get("mode", "disabled")
            for obj in objects for _, spec, _ in ray_cluster_specs(obj)}


def test_exposures_point_only_at_dashboard_or_serve(render, scenario: Scenario) -> None:
    for obj in exposures(render(scenario)):
        for service, port in backends(obj):
            assert port not in (6379, 10001), f"{obj['metadata']['name']} exposes port {port}"
            assert (service.endswith("-head-svc") and port == 8265) or (service.endswith("-serve-svc") and port == 8000), (
                f"{obj['kind']}/{obj['metadata']['name']} -> {service}:{port}")


def test_no_dashboard_is_reachable_without_authentication(render, scenario: Scenario) -> None:
    """The issue's done-criterion: in every overlay and ci scenario, a dashboard that leaves the
    cluster (Ingress, HTTPRoute, LoadBalancer/NodePort head) needs Ray's token or NGINX auth."""
    objects = render(scenario)
    modes = ray_auth_modes(objects)
    for obj in exposures(objects):
        for service, port in backends(obj):
            if port != 8265:
                continue
            cluster = service.removesuffix("-head-svc")
            annotations = obj["metadata"].get("annotations") or {}
            nginx_auth = obj["kind"] == "Ingress" and any(key in annotations for key in NGINX_AUTH)
            assert modes[cluster] == "token" or nginx_auth, f"{obj['kind']}/{obj['metadata']['name']}: dashboard without auth"
    for obj in objects:
        for where, spec, _ in ray_cluster_specs(obj):
            service_type = spec["headGroupSpec"].get("serviceType", "ClusterIP")
            assert service_type == "ClusterIP" or spec["authOptions"]["mode"] == "token", f"{where}: {service_type} without auth"


def test_nginx_annotations_tls_and_auth(render) -> None:
    objects = render(named("ingress-tls-auth-values.yaml"))
    ingresses = {obj["metadata"]["name"]: obj for obj in of_kind(objects, "Ingress")}
    dashboard, sd = ingresses["ray-platform-dashboard"], ingresses["ray-platform-sd"]
    a = dashboard["metadata"]["annotations"]
    assert a["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert a["nginx.ingress.kubernetes.io/auth-secret"] == "ray-dashboard-htpasswd"
    assert a["nginx.ingress.kubernetes.io/proxy-body-size"] == "100m"
    assert a["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert dashboard["spec"]["tls"] == [{"secretName": "ray-platform-dashboard-tls", "hosts": ["ray.example.com"]}]
    b = sd["metadata"]["annotations"]
    assert b["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "600"  # the user's value wins
    assert b["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "330"  # request_timeout_s 300 + 30
    assert b["nginx.ingress.kubernetes.io/auth-url"] == "https://oauth2.example.com/oauth2/auth"
    assert b["nginx.ingress.kubernetes.io/auth-response-headers"] == "X-Auth-Request-User,X-Auth-Request-Email"
    assert sd["spec"]["tls"][0]["secretName"] == "sd-example-com-tls"
    assert [rule["host"] for rule in sd["spec"]["rules"]] == ["sd.example.com", "images.example.com"]
    # nginxAnnotations: false leaves only what authentication needs.
    quiet = {o["metadata"]["name"]: o for o in of_kind(render(named("auth-disabled-ingress-auth-values.yaml")), "Ingress")}
    assert set(quiet["ray-platform-dashboard"]["metadata"]["annotations"]) == {
        "nginx.ingress.kubernetes.io/auth-url", "nginx.ingress.kubernetes.io/auth-signin"}


def test_default_renders_no_exposure(default_objects) -> None:
    assert not exposures(default_objects)
    for obj in default_objects:
        for where, spec, _ in ray_cluster_specs(obj):
            assert spec["headGroupSpec"]["serviceType"] == "ClusterIP", where


# --- HTTPRoute: our own schema (harness.gatewayapi) ---------------------------------------

def _route(render) -> dict[str, Any]:
    routes = {o["metadata"]["name"]: o for o in of_kind(render(named("gateway-routes-values.yaml")), "HTTPRoute")}
    assert set(routes) == {"ray-platform-dashboard", "ray-platform-sd"}
    assert routes["ray-platform-dashboard"]["spec"]["rules"][0]["backendRefs"][0]["name"] == "ray-platform-sd-head-svc"
    return routes["ray-platform-sd"]


ROUTE_MUTATIONS = {
    "unknown spec field": lambda r: r["spec"].update(tls={}),
    "path with //": lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update(value="/a//b"),
    "relative path": lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update(value="imagine"),
    "unknown path type": lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update(type="Prefix"),
    "service backend without port": lambda r: r["spec"]["rules"][0]["backendRefs"][0].pop("port"),
    "bad timeout": lambda r: r["spec"]["rules"][0]["timeouts"].update(request="5 minutes"),
    "upper-case hostname": lambda r: r["spec"]["hostnames"].append("SD.example.com"),
    "parentRef without name": lambda r: r["spec"]["parentRefs"][0].pop("name"),
    "experimental retry": lambda r: r["spec"]["rules"][0].update(retry={"attempts": 2}),
}


def test_httproutes_validate_against_the_written_schema(render, crds: CrdRegistry) -> None:
    route = _route(render)
    assert crds.knows(route) and crds.problems(route) == []


@pytest.mark.parametrize("name", sorted(ROUTE_MUTATIONS))
def test_httproute_schema_catches_mistakes(render, crds: CrdRegistry, name: str) -> None:
    route = copy.deepcopy(_route(render))
    ROUTE_MUTATIONS[name](route)
    assert crds.problems(route), f"{name} was accepted"


# --- the escape hatch renders, and says so loudly -----------------------------------------

UNAUTHENTICATED = ("auth.mode=disabled", "ingress.dashboard.enabled=true", "ingress.dashboard.hosts[0]=ray.example.com",
                   "ingress.dashboard.allowUnauthenticated=true", "rayCluster.head.serviceType=LoadBalancer",
                   "rayCluster.head.allowUnauthenticated=true")


@pytest.mark.parametrize("major", HELM_MAJORS, ids=lambda m: f"helm{m}")
def test_allow_unauthenticated_renders(renderer: Renderer, major: int) -> None:
    objects = renderer.render(RenderRequest((), major, set_values=UNAUTHENTICATED))
    (ingress,) = of_kind(objects, "Ingress")
    assert backends(ingress) == [("ray-platform-head-svc", 8265)]
    (cluster,) = of_kind(objects, "RayCluster")
    assert cluster["spec"]["headGroupSpec"]["serviceType"] == "LoadBalancer"


def test_allow_unauthenticated_makes_notes_warn(renderer: Renderer) -> None:
    """helm 3 cannot dry-run an install without a cluster; helm 4 renders NOTES.txt offline."""
    safe = renderer.install_output()
    assert "DANGER" not in safe
    notes = renderer.install_output(UNAUTHENTICATED).split("NOTES:", 1)[1]
    assert "the Ray dashboard is exposed WITHOUT AUTHENTICATION" in notes
    assert "rayCluster.head.serviceType is LoadBalancer with authentication disabled" in notes


# --- ServiceAccounts and the autoscaler's token -------------------------------------------

def test_service_accounts_and_tokens(render, scenario: Scenario) -> None:
    objects = render(scenario)
    created = {sa["metadata"]["name"]: sa for sa in of_kind(objects, "ServiceAccount")}
    for sa in created.values():
        assert sa["automountServiceAccountToken"] is False
    for obj in objects:
        # A RayJob's own cluster is short-lived and named by the operator: the chart gives it no
        # ServiceAccount of its own, so its pods run as the operator's (the autoscaler's,
        # named after the cluster, with its RBAC) or the namespace default, still without a token.
        job_cluster = obj["kind"] in {"RayJob", "RayCronJob"}
        for where, spec, _ in ray_cluster_specs(obj):
            autoscaler = bool(spec.get("enableInTreeAutoscaling"))
            head_spec = spec["headGroupSpec"]["template"]["spec"]
            names = set()
            for pod in pod_templates({"kind": "RayCluster", "metadata": obj["metadata"], "spec": spec}):
                pod_spec = pod.spec
                assert pod_spec["automountServiceAccountToken"] is False, f"{where} {pod.path}"
                names.add(pod_spec.get("serviceAccountName") if job_cluster else pod_spec["serviceAccountName"])
                for container in pod_spec["containers"]:
                    mounts = {m["mountPath"] for m in container.get("volumeMounts") or []}
                    assert TOKEN_PATH not in mounts, f"{where} {pod.path}: {container['name']} mounts a token"
                token_volumes = [v["name"] for v in pod_spec.get("volumes") or []
                                 if any("serviceAccountToken" in s for s in (v.get("projected") or {}).get("sources") or [])]
                is_head = pod_spec is head_spec
                assert token_volumes == (["autoscaler-kube-api"] if is_head and autoscaler else []), f"{where} {pod.path}"
            assert len(names) == 1, f"{where}: pods of one cluster use {names}"
            if autoscaler:
                mounts = spec["autoscalerOptions"]["volumeMounts"]
                head_volumes = {v["name"] for v in head_spec.get("volumes") or []}
                assert [(m["mountPath"], m["readOnly"]) for m in mounts] == [(TOKEN_PATH, True)]
                assert {m["name"] for m in mounts} <= head_volumes, f"{where}: autoscaler mounts a missing volume"
            (name,) = names
            if job_cluster and name is None:
                continue
            assert name in created or name == "ray-jobs", f"{where}: ServiceAccount {name} neither created nor configured"


# --- PodDisruptionBudgets -----------------------------------------------------------------

def test_pod_disruption_budgets_select_ray_pods(render, scenario: Scenario) -> None:
    objects = render(scenario)
    # RayJob clusters are not budgeted: they exist for one run, and a budget would only hold
    # up a node drain for a job the operator tears down anyway.
    templates = [pod.template for obj in objects if obj["kind"] not in {"RayJob", "RayCronJob"}
                 for pod in pod_templates(obj) if pod.ray_node]
    budgets = of_kind(objects, "PodDisruptionBudget")
    heads = [t for t in templates if t["metadata"]["labels"].get("ray-platform.io/node-type") == "head"]
    # Serve workers: Stable Diffusion's and your RayServices' worker groups, one budget each.
    serve_workers = {(t["metadata"]["labels"]["app.kubernetes.io/component"], t["metadata"]["labels"]["ray-platform.io/group"])
                     for obj in of_kind(objects, "RayService") for pod in pod_templates(obj)
                     for t in [pod.template] if t["metadata"]["labels"].get("ray-platform.io/node-type") == "worker"}
    assert len(budgets) == len(heads) + len(serve_workers)
    for budget in budgets:
        spec = budget["spec"]
        assert isinstance(spec["minAvailable"], int) and "maxUnavailable" not in spec
        wanted = spec["selector"]["matchLabels"]
        matching = [t for t in templates if wanted.items() <= t["metadata"]["labels"].items()]
        assert len(matching) == 1, f"{budget['metadata']['name']} selects {len(matching)} pod templates"


def test_switches_turn_policies_and_budgets_off(renderer: Renderer) -> None:
    objects = renderer.render(RenderRequest((), 4, set_values=(
        "networkPolicy.enabled=false", "podDisruptionBudget.heads.enabled=false",
        "podDisruptionBudget.stableDiffusionWorkers.enabled=false",
        "podDisruptionBudget.rayServiceWorkers.enabled=false")))
    assert not of_kind(objects, "NetworkPolicy") and not of_kind(objects, "PodDisruptionBudget")


def test_no_two_objects_share_kind_and_name(render, scenario: Scenario) -> None:
    seen: set[tuple[str, str]] = set()
    for obj in render(scenario):
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in seen, f"{scenario}: two {key[0]} objects named {key[1]}"
        seen.add(key)
