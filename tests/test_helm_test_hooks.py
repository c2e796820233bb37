"""The `helm test` hooks (templates/tests/): they render for every scenario, validate like every
other object (tests/test_validation.py runs every check on them: Kubernetes schema per minor, Pod
Security "restricted", resources, pinned image), are cleaned up when they pass, find the cluster's
token Secret where the KubeRay operator puts it, and ask /imagine for something the app accepts."""
from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from harness import readiness, rules
from harness.pods import pod_templates
from harness.render import of_kind
from harness.scenarios import Scenario, scenarios
from harness.serveconfig import serve_config_of
from harness.tools import CHART_DIR

TEST_SCRIPT = CHART_DIR / "files" / "tests" / "helm_test.py"
DEFAULTS = scenarios()[0]


def hooks(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]


def test_pods(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["labels"]["ray-platform.io/test"]: o for o in hooks(objects) if o["kind"] == "Pod"}


test_pods.__test__ = False  # a helper, not a test


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    (container,) = pod["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def token_secret(pod: dict[str, Any]) -> str | None:
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    return volumes["auth-token"]["secret"]["secretName"] if "auth-token" in volumes else None


def test_defaults_render_the_three_checks_and_their_script(render) -> None:
    objects = render(DEFAULTS)
    pods = test_pods(objects)
    assert sorted(pods) == ["dashboard", "imagine", "ray-job"]
    (configmap,) = [o for o in hooks(objects) if o["kind"] == "ConfigMap"]
    assert configmap["data"]["helm_test.py"] == TEST_SCRIPT.read_text()
    assert configmap["metadata"]["annotations"]["helm.sh/hook-weight"] == "-10"  # before the Pods
    for pod in pods.values():
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["scripts"]["configMap"]["name"] == configmap["metadata"]["name"]


@pytest.mark.parametrize("scenario", scenarios(), ids=str)
def test_hooks_are_cleaned_up_and_run_to_completion(render, scenario: Scenario) -> None:
    objects = render(scenario)
    found = hooks(objects)
    if not [o for o in objects if o["kind"] in {"RayCluster", "RayService"}]:
        # Only RayJobs/RayCronJobs: nothing runs between runs, so there is nothing to test.
        assert not found, f"{scenario}: helm test hooks without a cluster to test"
        return
    assert found, f"{scenario}: no helm test hooks"
    for hook in found:
        policy = hook["metadata"]["annotations"]["helm.sh/hook-delete-policy"].split(",")
        assert {"before-hook-creation", "hook-succeeded"} <= set(policy), hook["metadata"]["name"]
        assert "hook-failed" not in policy  # a failed test keeps its Pod, logs and events
    for pod in test_pods(objects).values():
        spec = pod["spec"]
        assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] >= 60
        assert spec["automountServiceAccountToken"] is False
        (container,) = spec["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["command"][:2] == ["python", "/opt/ray-platform-tests/helm_test.py"]


def test_hook_pods_go_through_every_pod_policy(render) -> None:
    """The harness checks hook Pods like any pod template; `probes` does not apply to them (they
    run to completion: a readiness probe means nothing for a Pod that is done when it exits)."""
    for pod in test_pods(render(DEFAULTS)).values():
        (template,) = pod_templates(copy.deepcopy(pod))  # the render is shared: mutate a copy
        assert template.owner.startswith("Pod/") and not template.ray_node
        assert rules.pod_problems(template) == {policy: [] for policy in rules.POD_POLICIES}
        assert "readinessProbe" not in template.spec["containers"][0]
        # ...and the policies do look at them: a root container is caught.
        template.spec["containers"][0]["securityContext"]["runAsUser"] = 0
        assert rules.pod_problems(template)["pod-security"]


def test_hook_pods_run_the_ray_image_and_their_resources(render) -> None:
    objects = render(DEFAULTS, set_values=("tests.resources.limits.memory=300Mi",))
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    for pod in test_pods(objects).values():
        (container,) = pod["spec"]["containers"]
        assert container["image"] == image
        assert container["resources"]["limits"]["memory"] == "300Mi"
    override = render(DEFAULTS, set_values=("tests.image.tag=2.60.0-py312", "tests.timeoutSeconds=900"))
    for pod in test_pods(override).values():
        assert pod["spec"]["containers"][0]["image"].endswith(":2.60.0-py312")
        assert pod["spec"]["activeDeadlineSeconds"] == 900
        assert env_of(pod)["TEST_TIMEOUT_S"] == "870"


def test_tests_enabled_false_renders_no_hooks(render) -> None:
    assert not hooks(render(DEFAULTS, set_values=("tests.enabled=false",)))


def test_token_comes_from_the_secret_the_operator_generates(render) -> None:
    objects = render(DEFAULTS)
    (cluster,) = of_kind(objects, "RayCluster")
    pods = test_pods(objects)
    for name in ("dashboard", "ray-job"):
        assert token_secret(pods[name]) == cluster["metadata"]["name"]
        assert env_of(pods[name])["RAY_AUTH_TOKEN_FILE"] == "/var/run/secrets/ray-platform/auth_token"
        assert env_of(pods[name])["RAY_DASHBOARD_URL"] == f"http://{cluster['metadata']['name']}-head-svc:8265"
    assert token_secret(pods["imagine"]) is None  # Serve's HTTP proxy has no Ray token auth


@pytest.mark.parametrize("name", ["r" * 50, "r" * 51, "ray-" + "x" * 49, "ray-platform-" + "a" * 35 + "-9abc", "ab-9" + "c" * 49])
def test_secret_name_matches_kuberay_check_name(render, name: str) -> None:
    pods = test_pods(render(DEFAULTS, set_values=(f"rayCluster.name={name}",)))
    assert token_secret(pods["dashboard"]) == readiness.operator_secret_name(name)
    assert len(token_secret(pods["dashboard"])) <= 50


def test_existing_secret_and_disabled_auth(render) -> None:
    pods = test_pods(render(DEFAULTS, set_values=("auth.existingSecret=my-ray-token",)))
    assert token_secret(pods["dashboard"]) == token_secret(pods["ray-job"]) == "my-ray-token"
    pods = test_pods(render(DEFAULTS, set_values=("auth.mode=disabled",)))
    assert token_secret(pods["dashboard"]) is None and "RAY_AUTH_TOKEN_FILE" not in env_of(pods["dashboard"])
    assert env_of(pods["dashboard"])["RAY_AUTH_MODE"] == "disabled"


def test_without_the_raycluster_the_service_dashboard_is_checked(render) -> None:
    pods = test_pods(render(DEFAULTS, set_values=("rayCluster.enabled=false",)))
    assert sorted(pods) == ["dashboard", "imagine"]  # jobs go to the RayCluster only
    env = env_of(pods["dashboard"])
    assert env["RAY_DASHBOARD_URL"] == "http://ray-platform-sd-head-svc:8265"
    # Its Secret is named after a generated RayCluster name: not known at render time.
    assert token_secret(pods["dashboard"]) is None
    assert "set auth.existingSecret" in env["AUTH_SKIP_REASON"]
    pods = test_pods(render(DEFAULTS, set_values=("rayCluster.enabled=false", "auth.existingSecret=tok")))
    assert token_secret(pods["dashboard"]) == "tok" and "AUTH_SKIP_REASON" not in env_of(pods["dashboard"])


def test_without_stable_diffusion_there_is_no_imagine_check(render) -> None:
    assert "imagine" not in test_pods(render(DEFAULTS, set_values=("stableDiffusion.enabled=false",)))
    assert not hooks(render(DEFAULTS, set_values=("stableDiffusion.enabled=false", "rayCluster.enabled=false")))


def ingress_user_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    config = serve_config_of(objects)
    for app in config["applications"]:
        for deployment in app.get("deployments", []):
            if deployment["name"] == "APIIngress":
                return deployment.get("user_config") or {}
    raise AssertionError("no APIIngress deployment in the Serve config")


@pytest.mark.parametrize("scenario", scenarios(), ids=str)
def test_imagine_request_is_one_the_app_accepts(render, scenario: Scenario) -> None:
    objects = render(scenario)
    pods = test_pods(objects)
    if "imagine" not in pods:
        pytest.skip(f"{scenario} has no Stable Diffusion service")
    services = of_kind(objects, "RayService")
    url = urlsplit(env_of(pods["imagine"])["IMAGINE_URL"])
    assert url.netloc == f"{services[0]['metadata']['name']}-serve-svc:8000"
    from ray_platform_sd.config import parse_ingress_config
    from ray_platform_sd.params import parse_request

    app = serve_config_of(objects)["applications"][0]
    assert url.path == app.get("route_prefix", "/").rstrip("/") + "/imagine"
    request = parse_request(dict(parse_qsl(url.query)), parse_ingress_config(ingress_user_config(objects)))
    assert request.width == int(env_of(pods["imagine"])["IMAGINE_SIZE"])
    assert request.steps <= 2  # a short run, even on a CPU


def test_imagine_query_under_a_route_prefix(render) -> None:
    pods = test_pods(render(DEFAULTS, set_values=("stableDiffusion.app.routePrefix=/sd/",)))
    assert urlsplit(env_of(pods["imagine"])["IMAGINE_URL"]).path == "/sd/imagine"
