"""A chart-shaped Serve config on a local Ray: adapted to the tiny model on CPU, PUT to the
dashboard's Serve REST API as KubeRay does it, and waited for until its applications run."""
from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional

if TYPE_CHECKING:
    from serving.local_ray import LocalRay

MODEL_DEPLOYMENT = "StableDiffusionModel"
INGRESS_DEPLOYMENT = "APIIngress"


def find_deployment(app: Dict[str, Any], name: str) -> Dict[str, Any]:
    for dep in app.get("deployments", []):
        if dep.get("name") == name:
            return dep
    raise KeyError(f"deployment {name!r} not in application {app.get('name')!r}")


def adapt_for_local(config: Dict[str, Any], model_dir: os.PathLike) -> Dict[str, Any]:
    """A copy of a chart-shaped Serve config that runs the tiny model on CPU.

    Sets model_id to model_dir (and drops revision/variant, which belong to a hub id),
    device cpu, dtype float32, and num_gpus 0 for every deployment. Nothing else changes.
    """
    cfg = copy.deepcopy(config)
    for app in cfg["applications"]:
        for dep in app.get("deployments", []):
            opts = dep.get("ray_actor_options")
            if opts is not None:
                opts["num_gpus"] = 0
                opts.pop("accelerator_type", None)
        try:
            model = find_deployment(app, MODEL_DEPLOYMENT)
        except KeyError:
            continue
        uc = model.setdefault("user_config", {})
        uc["model_id"] = str(model_dir)
        uc["device"] = "cpu"
        uc["dtype"] = "float32"
        uc.pop("revision", None)
        uc.pop("variant", None)
    return cfg


def deploy(dashboard_url: str, config: Dict[str, Any], http_port: Optional[int] = None) -> None:
    """PUT a full Serve config (all applications) to the dashboard, as KubeRay does."""
    import requests

    body = copy.deepcopy(config)
    if http_port is not None:
        body.setdefault("http_options", {}).update({"host": "127.0.0.1", "port": http_port})
    r = requests.put(f"{dashboard_url}/api/serve/applications/", json=body, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"deploy failed: HTTP {r.status_code}: {r.text[:2000]}")


def serve_status(dashboard_url: str) -> Dict[str, Any]:
    import requests

    r = requests.get(f"{dashboard_url}/api/serve/applications/", timeout=10)
    r.raise_for_status()
    return r.json()


def wait_for_app(
    dashboard_url: str,
    app_name: str,
    want: Iterable[str] = ("RUNNING",),
    timeout_s: float = 120.0,
    fail_on: Iterable[str] = ("DEPLOY_FAILED", "UNHEALTHY"),
) -> Dict[str, Any]:
    """Poll until app_name's status is in want; raise on fail_on statuses or timeout."""
    import requests

    want, fail_on = set(want), set(fail_on) - set(want)
    deadline = time.monotonic() + timeout_s
    last: Dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = serve_status(dashboard_url).get("applications", {}).get(app_name, {})
        except requests.RequestException:
            last = {}
        status = last.get("status")
        if status in want:
            return last
        if status in fail_on:
            raise RuntimeError(f"application {app_name} is {status}: {json.dumps(last)[:4000]}")
        time.sleep(0.5)
    raise TimeoutError(f"application {app_name} not {sorted(want)} after {timeout_s}s: "
                       f"{json.dumps(last)[:4000]}")


def deploy_and_wait(
    ray: "LocalRay", config: Dict[str, Any], timeout_s: float = 120.0
) -> Dict[str, Dict[str, Any]]:
    """Deploy config on ray and wait until every application in it is RUNNING."""
    deploy(ray.dashboard_url, config, http_port=ray.http_port)
    return {
        app["name"]: wait_for_app(ray.dashboard_url, app["name"], timeout_s=timeout_s)
        for app in config["applications"]
    }


def wait_http_ready(url: str, timeout_s: float = 60.0, poll_s: float = 0.3) -> None:
    """Wait until url answers 200 (the proxy may lag the RUNNING status a little)."""
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(poll_s)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s}s")


def app_url(ray: "LocalRay", config: Dict[str, Any], name: Optional[str] = None) -> str:
    """Base URL of an application of config on ray (the first one unless named)."""
    app = next(a for a in config["applications"] if name is None or a["name"] == name)
    return ray.http_url + app.get("route_prefix", "/").rstrip("/")


def deploy_app(ray: "LocalRay", config: Dict[str, Any], name: Optional[str] = None, timeout_s: float = 180.0) -> str:
    """Deploy config, wait until its applications run and the app's /healthz answers; its base URL."""
    deploy_and_wait(ray, config, timeout_s=timeout_s)
    base = app_url(ray, config, name)
    wait_http_ready(base + "/healthz")
    return base


def chart_config_for_local(values_files: Iterable[os.PathLike], model_dir: os.PathLike) -> Dict[str, Any]:
    """The Serve config the chart renders with values_files, adapted to the tiny model on CPU."""
    from harness.serveconfig import render_serve_config

    return adapt_for_local(render_serve_config(Path(v) for v in values_files), model_dir)
