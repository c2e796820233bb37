"""The Stable Diffusion RayService: app delivery, model weight modes and the serve port."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.pods import pod_templates
from harness.render import of_kind
from harness.scenarios import Scenario, scenarios
from harness.serveconfig import serve_config_of
from harness.tools import CHART_DIR, CI_VALUES_DIR, VALUES_DIR

DEFAULTS = scenarios()[0]
APP_FILES = sorted(p.name for p in (CHART_DIR / "files" / "serve" / "ray_platform_sd").glob("*.py"))


def service(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (rayservice,) = of_kind(objects, "RayService")
    return rayservice


def containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [pod.spec["containers"][0] for pod in pod_templates(service(objects))]


def model_user_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (app,) = serve_config_of(objects)["applications"]
    return next(d for d in app["deployments"] if d["name"] == "StableDiffusionModel")["user_config"]


def sd_configmaps(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's own ConfigMaps (not the helm test hooks' or the dashboards')."""
    return [c for c in of_kind(objects, "ConfigMap")
            if c["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "stable-diffusion"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_bundled_app_ships_as_a_configmap_on_pythonpath(render) -> None:
    objects = render(DEFAULTS)
    (configmap,) = sd_configmaps(objects)
    assert sorted(configmap["data"]) == APP_FILES and "__init__.py" in APP_FILES
    for name in APP_FILES:
        assert configmap["data"][name] == (CHART_DIR / "files" / "serve" / "ray_platform_sd" / name).read_text()
    for container in containers(objects):
        assert env_of(container)["PYTHONPATH"] == "/opt/ray-platform/apps"
        mount = next(m for m in container["volumeMounts"] if m["name"] == "serve-app")
        assert mount == {"name": "serve-app", "mountPath": "/opt/ray-platform/apps/ray_platform_sd", "readOnly": True}
    (app,) = serve_config_of(objects)["applications"]
    assert app["import_path"] == "ray_platform_sd.app:entrypoint"
    assert "working_dir" not in app.get("runtime_env", {})


def test_remote_app_uses_working_dir_and_no_configmap(render) -> None:
    objects = render(DEFAULTS, set_values=(
        "stableDiffusion.app.source=remote",
        "stableDiffusion.app.remote.workingDir=https://example.com/app.zip",
        "stableDiffusion.app.remote.importPath=mine.app:entrypoint"))
    assert not sd_configmaps(objects)
    (app,) = serve_config_of(objects)["applications"]
    assert app["import_path"] == "mine.app:entrypoint"
    assert app["runtime_env"]["working_dir"] == "https://example.com/app.zip"
    assert all("PYTHONPATH" not in env_of(c) for c in containers(objects))


def test_every_ray_pod_of_the_service_declares_the_serve_port(render) -> None:
    for container in containers(render(DEFAULTS)):
        assert {"name": "serve", "containerPort": 8000} in container["ports"]


def test_hub_weights_by_default(render) -> None:
    objects = render(DEFAULTS)
    assert not of_kind(objects, "PersistentVolumeClaim")
    config = model_user_config(objects)
    assert config["model_id"] == "stabilityai/stable-diffusion-xl-base-1.0"
    assert "cache_dir" not in config and not config.get("local_files_only")


def test_cache_weights_use_a_kept_pvc_and_the_hub_token(render) -> None:
    objects = render(Scenario("cache", (CI_VALUES_DIR / "sd-model-cache-values.yaml",)))
    (claim,) = of_kind(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "80Gi"
    assert model_user_config(objects)["cache_dir"] == "/models/cache"
    for container in containers(objects):
        env = env_of(container)
        assert env["HF_HOME"] == "/models/cache"
        assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
        assert {"name": "model-cache", "mountPath": "/models/cache", "readOnly": False} in container["volumeMounts"]


def test_read_only_cache_goes_offline(render) -> None:
    objects = render(Scenario("cache", (CI_VALUES_DIR / "sd-model-cache-values.yaml",)),
                     set_values=("stableDiffusion.weights.cache.readOnly=true",))
    assert model_user_config(objects)["local_files_only"] is True
    assert all(env_of(c)["HF_HUB_OFFLINE"] == "1" for c in containers(objects))


def test_local_weights_need_no_hub(render) -> None:
    objects = render(Scenario("local", (CI_VALUES_DIR / "sd-local-weights-values.yaml",)))
    config = model_user_config(objects)
    assert config["model_id"] == "/models/stable-diffusion-xl-base-1.0"
    assert config["local_files_only"] is True
    (app,) = serve_config_of(objects)["applications"]
    assert "runtime_env" not in app  # no pip installs
    for container in containers(objects):
        env = env_of(container)
        assert env["HF_HUB_OFFLINE"] == "1" and "HF_TOKEN" not in env
        assert {"name": "model-local", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]


@pytest.mark.parametrize("values_file", ["dev.yaml"])
def test_dev_overlay_runs_on_cpu(render, values_file: str) -> None:
    objects = render(Scenario(values_file, (VALUES_DIR / values_file,)))
    (app,) = serve_config_of(objects)["applications"]
    model = next(d for d in app["deployments"] if d["name"] == "StableDiffusionModel")
    assert model["ray_actor_options"]["num_gpus"] == 0
    assert model["user_config"]["device"] == "cpu"
    assert all("nvidia.com/gpu" not in c["resources"].get("limits", {}) for c in containers(objects))
