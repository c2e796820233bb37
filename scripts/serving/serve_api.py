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


def adapt_for_local(config: Dict[str, Any], model_dir: os.PathLike,
                    num_cpus: Optional[float] = None) -> Dict[str, Any]:
    """A copy of a chart-shaped Serve config that runs the tiny model on CPU.

    Sets model_id to model_dir (and drops revision/variant, which belong to a hub id),
    device cpu, dtype float32, and num_gpus 0 for every deployment; drops the runtime_env
    packages this Python already has at the asked version (no pip step for them, see
    drop_installed_packages). With num_cpus (the local Ray's CPUs), the model deployment is fitted
    to them (fit_to_cpus) and, unless the values set torch_threads, runs with that many torch
    threads. Nothing else changes.
    """
    cfg = copy.deepcopy(config)
    for app in cfg["applications"]:
        for dep in app.get("deployments", []):
            opts = dep.get("ray_actor_options")
            if opts is not None:
                opts["num_gpus"] = 0
                opts.pop("accelerator_type", None)
        drop_installed_packages(app)
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
        if num_cpus is not None:
            fit_to_cpus(app, num_cpus)
            # The model is the one deployment that computes: on a CPU Ray of its own it gets every
            # core (Ray would give it OMP_NUM_THREADS = its num_cpus, 1 by default).
            if uc.get("torch_threads") is None:
                uc["torch_threads"] = max(1, int(num_cpus))
    return cfg


def missing_packages(requirements: Iterable[str]) -> list:
    """The requirements this Python's environment does not satisfy (name and version)."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    missing = []
    for line in requirements:
        try:
            req = Requirement(line)
            installed = metadata.version(req.name)
        except (InvalidRequirement, metadata.PackageNotFoundError):
            missing.append(line)
            continue
        if not req.specifier.contains(installed, prereleases=True):
            missing.append(line)
    return missing


def drop_installed_packages(app: Dict[str, Any]) -> list:
    """Remove from app's runtime_env.pip what is already installed; returns what was removed.

    Ray's pip step builds a virtualenv on top of this Python and runs pip in it even when every
    package is there already: 12-22 s of a local cold start for nothing. Packages that are
    missing (or at another version) stay, and Ray installs just those.
    """
    env = app.get("runtime_env") or {}
    pip = env.get("pip")
    if not pip:
        return []
    packages = pip["packages"] if isinstance(pip, dict) else list(pip)
    missing = missing_packages(packages)
    dropped = [p for p in packages if p not in missing]
    if missing:
        env["pip"] = dict(pip, packages=missing) if isinstance(pip, dict) else missing
    else:
        env.pop("pip")
        if not env:
            app.pop("runtime_env", None)
    return dropped


def _cpus(dep: Dict[str, Any]) -> float:
    return float((dep.get("ray_actor_options") or {}).get("num_cpus", 1))


def fit_to_cpus(app: Dict[str, Any], num_cpus: float) -> None:
    """Fit the model deployment of app to a Ray with num_cpus CPUs: no more replicas (and no
    bigger ones) than the CPUs the other deployments leave, so Serve never asks for a replica
    that cannot start (and warns about it forever)."""
    model = find_deployment(app, MODEL_DEPLOYMENT)
    others = sum(_cpus(d) * int(d.get("num_replicas", 1)) for d in app.get("deployments", [])
                 if d is not model)
    free = max(num_cpus - others, 0.0)
    per_replica = _cpus(model)
    if per_replica > free:
        per_replica = free
        model.setdefault("ray_actor_options", {})["num_cpus"] = free
    fits = max(1, int(free // per_replica)) if per_replica > 0 else None
    scaling = model.get("autoscaling_config")
    if fits is None:
        return
    if scaling:
        scaling["max_replicas"] = min(int(scaling.get("max_replicas", 1)), fits)
        for key in ("min_replicas", "initial_replicas"):
            if scaling.get(key) is not None:
                scaling[key] = min(int(scaling[key]), scaling["max_replicas"])
    elif int(model.get("num_replicas", 1)) > fits:
        model["num_replicas"] = fits


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


def redeploy(ray: "LocalRay", config: Dict[str, Any], app_name: str, timeout_s: float = 120.0) -> None:
    """PUT an updated config (the same applications, other options or user_config) and wait
    until app_name runs it: deployed after the PUT, RUNNING, every deployment HEALTHY."""
    import requests

    before = serve_status(ray.dashboard_url).get("applications", {}).get(app_name, {})
    deploy(ray.dashboard_url, config, http_port=ray.http_port)
    deadline = time.monotonic() + timeout_s
    last: Dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = serve_status(ray.dashboard_url).get("applications", {}).get(app_name, {})
        except requests.RequestException:
            last = {}
        if (last.get("last_deployed_time_s") != before.get("last_deployed_time_s")
                and last.get("status") == "RUNNING"
                and all(d.get("status") == "HEALTHY" for d in last.get("deployments", {}).values())):
            return
        time.sleep(0.5)
    raise TimeoutError(f"application {app_name} did not run the new config within {timeout_s}s: "
                       f"{json.dumps(last)[:4000]}")


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


def chart_config_for_local(values_files: Iterable[os.PathLike], model_dir: os.PathLike,
                           num_cpus: Optional[float] = None) -> Dict[str, Any]:
    """The Serve config the chart renders with values_files, adapted to the tiny model on CPU
    (and fitted to num_cpus CPUs when given)."""
    from harness.serveconfig import render_serve_config

    return adapt_for_local(render_serve_config(Path(v) for v in values_files), model_dir, num_cpus)
