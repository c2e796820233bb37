"""Fixtures for the Ray Serve Stable Diffusion tests (marker: serve).

The app is deployed the way KubeRay deploys it: the Serve config (the `applications:`
part of a RayService serveConfigV2) is PUT to the dashboard's /api/serve/applications/
of a real local Ray head, with the app's code found through PYTHONPATH.

rendered_serve_config is the config under test. Here it is read from
serve_config_example.yaml; override the fixture to test the chart's rendered RayService.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "scripts", ROOT / "charts" / "ray-platform" / "files" / "serve"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import serve_local  # noqa: E402  (scripts/serve_local.py)

APP_NAME = "stable_diffusion"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serve: tests of the Ray Serve Stable Diffusion app (a local Ray for some)"
    )


@pytest.fixture(scope="session")
def rendered_serve_config():
    """The Serve config with the `applications:` shape of a RayService serveConfigV2."""
    return serve_local.load_example_config(Path(__file__).with_name("serve_config_example.yaml"))


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
def local_serve_config(rendered_serve_config, tiny_model_dir):
    return serve_local.adapt_for_local(rendered_serve_config, tiny_model_dir)


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
