"""Fixtures for the Ray Serve Stable Diffusion tests (marker: serve).

The app is deployed the way KubeRay deploys it: the Serve config (the `applications:`
part of a RayService serveConfigV2) is PUT to the dashboard's /api/serve/applications/
of a real local Ray head, with the app's code found through PYTHONPATH.

rendered_serve_config is the serveConfigV2 the chart renders, for every values scenario;
default_serve_config (the chart's defaults) is the one deployed on the local Ray.
"""

import sys
from pathlib import Path

import pytest

# No __pycache__ next to the app's files in the chart (they ship as a ConfigMap).
sys.dont_write_bytecode = True

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "scripts", ROOT / "charts" / "ray-platform" / "files" / "serve"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import serve_local  # noqa: E402  (scripts/serve_local.py)
from harness.scenarios import scenarios  # noqa: E402
from harness.serveconfig import serve_config_of  # noqa: E402

APP_NAME = "stable_diffusion"


@pytest.fixture(params=scenarios(), ids=str)
def rendered_serve_config(request, render):
    """The serveConfigV2 of the RayService the chart renders for a values scenario."""
    config = serve_config_of(render(request.param))
    if config is None:
        pytest.skip(f"{request.param} disables stableDiffusion: no Serve config to check")
    return config


@pytest.fixture(scope="session")
def default_serve_config(render):
    """The Serve config of the chart's defaults: the one deployed on the local Ray."""
    return serve_config_of(render(scenarios()[0]))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    pytest.importorskip("diffusers")
    return serve_local.build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def local_ray():
    pytest.importorskip("ray.serve")
    ray = serve_local.LocalRay(num_cpus=2).start()
    try:
        yield ray
    finally:
        ray.stop()


@pytest.fixture(scope="session")
def local_serve_config(default_serve_config, tiny_model_dir):
    return serve_local.adapt_for_local(default_serve_config, tiny_model_dir)


def app_base_url(ray, config, name=APP_NAME):
    app = next(a for a in config["applications"] if a["name"] == name)
    return ray.http_url + app.get("route_prefix", "/").rstrip("/")


@pytest.fixture(scope="session")
def sd_app(local_ray, local_serve_config):
    """Base URL of the deployed app (all applications of the config RUNNING)."""
    try:
        serve_local.deploy_and_wait(local_ray, local_serve_config, timeout_s=180)
    except Exception as e:
        pytest.fail(f"{e}\n{local_ray.logs('*replica*')}")
    base = app_base_url(local_ray, local_serve_config)
    serve_local.wait_http_ready(base + "/healthz")
    return base
