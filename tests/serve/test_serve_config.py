"""Checks of the Serve config and the app's own validation that need no Ray cluster."""

import re

import pytest

from harness.tools import CHART_DIR
from ray_platform_sd import config as sdconfig
from ray_platform_sd.params import MAX_SEED, ParamError, parse_request

pytestmark = pytest.mark.serve

CONFIG_MD = CHART_DIR / "files" / "serve" / "CONFIG.md"
APP_DIR = CHART_DIR / "files" / "serve" / "ray_platform_sd"
KNOWN_KEYS = {"APIIngress": sdconfig.INGRESS_CONFIG_KEYS,
              "StableDiffusionModel": sdconfig.MODEL_CONFIG_KEYS}
PARSERS = {"APIIngress": sdconfig.parse_ingress_config,
           "StableDiffusionModel": sdconfig.parse_model_config}


def _deployments(cfg):
    for app in cfg["applications"]:
        for dep in app.get("deployments", []):
            yield app, dep


# ---------------------------------------------------------------- the Serve config


def test_config_is_a_valid_serve_deploy_schema(rendered_serve_config):
    schema = pytest.importorskip("ray.serve.schema")
    parsed = schema.ServeDeploySchema.model_validate(rendered_serve_config)
    assert [a.name for a in parsed.applications] == [
        a["name"] for a in rendered_serve_config["applications"]]
    # ServeDeploySchema ignores unknown fields: catch typos ourselves.
    app_fields = set(schema.ServeApplicationSchema.model_fields)
    dep_fields = set(schema.DeploymentSchema.model_fields)
    for app, dep in _deployments(rendered_serve_config):
        assert set(app) <= app_fields, set(app) - app_fields
        assert set(dep) <= dep_fields, set(dep) - dep_fields


def test_autoscaling_configs_are_valid(rendered_serve_config):
    serve_config = pytest.importorskip("ray.serve.config")
    seen = 0
    for _, dep in _deployments(rendered_serve_config):
        if dep.get("autoscaling_config") is not None:
            ac = serve_config.AutoscalingConfig(**dep["autoscaling_config"])
            assert ac.min_replicas <= ac.max_replicas
            assert "num_replicas" not in dep, "num_replicas and autoscaling_config conflict"
            seen += 1
    assert seen >= 1


def test_app_shape(rendered_serve_config):
    apps = rendered_serve_config["applications"]
    assert len(apps) == 1
    app = apps[0]
    assert app["import_path"] == "ray_platform_sd.app:entrypoint"
    assert app.get("route_prefix", "/") == "/"
    assert {d["name"] for d in app["deployments"]} <= set(KNOWN_KEYS)


def test_import_path_resolves_to_an_application(rendered_serve_config):
    pytest.importorskip("ray.serve")
    import importlib

    from ray.serve import Application

    module, attr = rendered_serve_config["applications"][0]["import_path"].split(":")
    assert isinstance(getattr(importlib.import_module(module), attr), Application)


def test_user_config_keys_are_read_by_the_app(rendered_serve_config):
    for _, dep in _deployments(rendered_serve_config):
        uc = dep.get("user_config") or {}
        unknown = set(uc) - KNOWN_KEYS[dep["name"]]
        assert not unknown, f"{dep['name']}: keys the app does not read: {unknown}"
        PARSERS[dep["name"]](uc)  # values valid too


def test_model_replica_can_fill_a_batch(rendered_serve_config):
    for _, dep in _deployments(rendered_serve_config):
        if dep["name"] == "StableDiffusionModel":
            mbs = sdconfig.parse_model_config(dep.get("user_config")).max_batch_size
            assert dep.get("max_ongoing_requests", 8) >= mbs


def test_adapt_for_local_changes_only_what_it_says(rendered_serve_config, tmp_path):
    from serving import serve_api

    local = serve_api.adapt_for_local(rendered_serve_config, tmp_path)
    for (_, dep), (_, orig) in zip(_deployments(local), _deployments(rendered_serve_config)):
        assert dep.get("ray_actor_options", {}).get("num_gpus", 0) == 0
        if dep["name"] == "StableDiffusionModel":
            uc = dep["user_config"]
            assert (uc["model_id"], uc["device"], uc["dtype"]) == (str(tmp_path), "cpu",
                                                                   "float32")
            for k, v in orig["user_config"].items():
                if k not in ("model_id", "device", "dtype", "revision", "variant"):
                    assert uc[k] == v
        for k in set(orig) - {"ray_actor_options", "user_config"}:
            assert dep[k] == orig[k]


# ---------------------------------------------------------------- documentation


@pytest.mark.parametrize("deployment", sorted(KNOWN_KEYS))
def test_every_user_config_key_is_documented(deployment):
    md = CONFIG_MD.read_text(encoding="utf-8")
    doc = sdconfig.__doc__
    for key in KNOWN_KEYS[deployment]:
        assert re.search(rf"`{key}`", md), f"{key} missing from CONFIG.md"
        assert re.search(rf"^{key}\s", doc, re.M), f"{key} missing from config.py docstring"


def test_app_is_flat_and_small():
    files = list(APP_DIR.iterdir())
    assert all(f.is_file() and f.suffix == ".py" for f in files if f.name != "__pycache__")
    assert sum(f.stat().st_size for f in files if f.is_file()) < 200_000


# ---------------------------------------------------------------- user_config parsing


def test_user_config_defaults():
    assert sdconfig.parse_ingress_config(None) == sdconfig.IngressConfig()
    assert sdconfig.parse_model_config({}) == sdconfig.ModelConfig()
    assert sdconfig.IngressConfig().default_img_size == 512


@pytest.mark.parametrize(
    "parser,user_config,key",
    [
        (sdconfig.parse_model_config, {"model_idd": "x"}, "model_idd"),
        (sdconfig.parse_model_config, {"dtype": "float8"}, "dtype"),
        (sdconfig.parse_model_config, {"device": "tpu"}, "device"),
        (sdconfig.parse_model_config, {"scheduler": "nope"}, "scheduler"),
        (sdconfig.parse_model_config, {"max_batch_size": 0}, "max_batch_size"),
        (sdconfig.parse_model_config, {"max_batch_size": True}, "max_batch_size"),
        (sdconfig.parse_model_config, {"batch_wait_timeout_s": -1}, "batch_wait_timeout_s"),
        (sdconfig.parse_model_config, {"local_files_only": "yes"}, "local_files_only"),
        (sdconfig.parse_model_config, {"model_id": ""}, "model_id"),
        (sdconfig.parse_ingress_config, {"max_img_size": 1020}, "max_img_size"),
        (sdconfig.parse_ingress_config, {"default_img_size": 2048}, "default_img_size"),
        (sdconfig.parse_ingress_config, {"default_steps": 200}, "default_steps"),
        (sdconfig.parse_ingress_config, {"max_guidance": float("nan")}, "max_guidance"),
        (sdconfig.parse_ingress_config, {"request_timeout_s": "10"}, "request_timeout_s"),
    ],
)
def test_bad_user_config_is_rejected_naming_the_key(parser, user_config, key):
    with pytest.raises(ValueError, match=key):
        parser(user_config)


# ---------------------------------------------------------------- request parsing

CFG = sdconfig.IngressConfig(default_img_size=128, min_img_size=64, max_img_size=256,
                             default_steps=4, max_steps=10, default_guidance=5.0,
                             max_guidance=10.0, max_prompt_length=20)


def test_request_defaults_and_types():
    r = parse_request({"prompt": " a cat "}, CFG)
    assert (r.prompt, r.negative_prompt, r.height, r.width, r.steps, r.guidance) == (
        "a cat", None, CFG.default_img_size, CFG.default_img_size, CFG.default_steps,
        CFG.default_guidance)
    r = parse_request({"prompt": "a", "img_size": "64", "steps": "2", "guidance": "1.5",
                       "seed": "7"}, CFG)
    assert (r.height, r.width, r.steps, r.guidance, r.seed) == (64, 64, 2, 1.5, 7)
    r = parse_request({"prompt": "a", "img_size": 128, "steps": 3, "guidance": 0, "seed": 0},
                      CFG)
    assert (r.height, r.steps, r.guidance, r.seed) == (128, 3, 0.0, 0)
    assert 0 <= parse_request({"prompt": "a", "img_size": 64}, CFG).seed <= MAX_SEED


@pytest.mark.parametrize(
    "raw,parameter",
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 21}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"prompt": "a", "negative_prompt": "y" * 21}, "negative_prompt"),
        ({"prompt": "a", "img_size": "abc"}, "img_size"),
        ({"prompt": "a", "img_size": "64.0"}, "img_size"),
        ({"prompt": "a", "img_size": 64.5}, "img_size"),
        ({"prompt": "a", "img_size": True}, "img_size"),
        ({"prompt": "a", "img_size": 56}, "img_size"),
        ({"prompt": "a", "img_size": 264}, "img_size"),
        ({"prompt": "a", "img_size": 100}, "img_size"),
        ({"prompt": "a", "img_size": 64, "steps": 0}, "steps"),
        ({"prompt": "a", "img_size": 64, "steps": 11}, "steps"),
        ({"prompt": "a", "img_size": 64, "steps": "two"}, "steps"),
        ({"prompt": "a", "img_size": 64, "guidance": "-0.5"}, "guidance"),
        ({"prompt": "a", "img_size": 64, "guidance": "nan"}, "guidance"),
        ({"prompt": "a", "img_size": 64, "guidance": "inf"}, "guidance"),
        ({"prompt": "a", "img_size": 64, "guidance": 10.5}, "guidance"),
        ({"prompt": "a", "img_size": 64, "seed": -1}, "seed"),
        ({"prompt": "a", "img_size": 64, "seed": MAX_SEED + 1}, "seed"),
        ({"prompt": "a", "img_size": 64, "seed": "x"}, "seed"),
        ({"prompt": "a", "image_size": 64}, "image_size"),
    ],
)
def test_bad_request_names_the_parameter(raw, parameter):
    with pytest.raises(ParamError) as e:
        parse_request(raw, CFG)
    assert e.value.parameter == parameter
    assert e.value.to_json()["message"].startswith(parameter)


def test_chart_schema_knows_exactly_the_app_user_config_keys():
    # The chart's values schema closes each deployment's userConfig: it must list the keys the
    # app reads, no more and no fewer, or typos pass / valid keys get refused.
    from generate import schema

    definitions = schema.load_source()["definitions"]
    assert set(definitions["apiIngressUserConfig"]["properties"]) == set(sdconfig.INGRESS_CONFIG_KEYS)
    assert set(definitions["modelUserConfig"]["properties"]) == set(sdconfig.MODEL_CONFIG_KEYS)


# ---------------------------------------------------------------- the local runner's adaptation


def test_local_config_has_no_pip_step_for_installed_packages(default_serve_config, tmp_path):
    """The chart's app.pip pins are the serve requirements: on this venv nothing is left to
    install, so Ray's runtime_env pip step (a virtualenv and a pip run, 12-22 s) is skipped."""
    from serving import serve_api

    rendered = default_serve_config["applications"][0]
    assert rendered["runtime_env"]["pip"], "the chart's default renders no pip list any more"
    local = serve_api.adapt_for_local(default_serve_config, tmp_path)["applications"][0]
    assert "pip" not in local.get("runtime_env", {})


def test_only_missing_packages_stay_in_the_pip_step():
    from importlib import metadata

    from serving import serve_api

    torch = metadata.version("torch")
    app = {"runtime_env": {"pip": [f"torch=={torch}", "torch==0.0.1", "no-such-package-rpsd==1.0",
                                   f"diffusers>={metadata.version('diffusers')}"],
                           "env_vars": {"A": "1"}}}
    dropped = serve_api.drop_installed_packages(app)
    assert dropped == [f"torch=={torch}", f"diffusers>={metadata.version('diffusers')}"]
    assert app["runtime_env"] == {"pip": ["torch==0.0.1", "no-such-package-rpsd==1.0"], "env_vars": {"A": "1"}}


@pytest.mark.parametrize("num_cpus,max_replicas,model_cpus", [(2, 1, 1), (8, 2, 1), (1, 1, 0.5)])
def test_local_config_fits_the_local_cpus(default_serve_config, tmp_path, num_cpus, max_replicas, model_cpus):
    """No model replica the local Ray cannot place: the chart's default (up to 2 replicas of 1 CPU
    next to a 0.5-CPU ingress) gets 1 replica on 2 CPUs, keeps 2 on 8, and a smaller one on 1."""
    from serving import serve_api

    app = serve_api.adapt_for_local(default_serve_config, tmp_path, num_cpus=num_cpus)["applications"][0]
    model = serve_api.find_deployment(app, serve_api.MODEL_DEPLOYMENT)
    ingress = serve_api.find_deployment(app, serve_api.INGRESS_DEPLOYMENT)
    scaling = model["autoscaling_config"]
    assert (scaling["max_replicas"], model["ray_actor_options"]["num_cpus"]) == (max_replicas, model_cpus)
    assert scaling["min_replicas"] <= scaling["max_replicas"]
    assert model["user_config"]["torch_threads"] == num_cpus  # the only deployment that computes
    used = (ingress["num_replicas"] * ingress["ray_actor_options"]["num_cpus"]
            + scaling["max_replicas"] * model["ray_actor_options"]["num_cpus"])
    assert used <= num_cpus
