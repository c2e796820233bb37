"""Fixtures for the Ray Serve Stable Diffusion tests (marker: serve).

The app is deployed the way KubeRay deploys it: the Serve config (the `applications:`
part of a RayService serveConfigV2) is PUT to the dashboard's /api/serve/applications/
of a real local Ray head, with the app's code found through PYTHONPATH.

rendered_serve_config is the serveConfigV2 the chart renders, for every values scenario;
default_serve_config (the chart's defaults) is the one deployed on the local Ray.
"""

import sys

import pytest

from harness.scenarios import scenarios
from harness.serveconfig import serve_config_of
from serving import serve_api
from serving.local_ray import LocalRay
from serving.tiny_model import build_tiny_pipeline

# No __pycache__ next to the app's files in the chart (they ship as a ConfigMap); pyproject's
# pythonpath makes them importable.
sys.dont_write_bytecode = True

APP_NAME = "stable_diffusion"
# CPUs of the session's local Ray; the Serve config is fitted to them as `make serve` fits it.
LOCAL_CPUS = 2


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
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def local_ray():
    pytest.importorskip("ray.serve")
    ray = LocalRay(num_cpus=LOCAL_CPUS).start()
    try:
        yield ray
    finally:
        ray.stop()


@pytest.fixture(scope="session")
def local_serve_config(default_serve_config, tiny_model_dir):
    return serve_api.adapt_for_local(default_serve_config, tiny_model_dir, num_cpus=LOCAL_CPUS)


@pytest.fixture(scope="session")
def sd_app(local_ray, local_serve_config):
    """Base URL of the deployed app (all applications of the config RUNNING)."""
    try:
        return serve_api.deploy_app(local_ray, local_serve_config, APP_NAME)
    except Exception as e:
        pytest.fail(f"{e}\n{local_ray.logs('*replica*')}")
