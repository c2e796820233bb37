"""The Stable Diffusion app deployed from the Serve config on a real local Ray head."""

import copy
import io
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

np = pytest.importorskip("numpy")
requests = pytest.importorskip("requests")
Image = pytest.importorskip("PIL.Image")

from serving import serve_api  # noqa: E402

pytestmark = pytest.mark.serve


@pytest.fixture(autouse=True, scope="module")
def serve_stack() -> None:
    """Ray Serve and diffusers, imported when these tests run: importing them takes seconds,
    which every collection (also one that deselects these tests) would pay at module level."""
    pytest.importorskip("ray.serve")
    pytest.importorskip("diffusers")

SMALL = {"img_size": 64, "steps": 2}


def _png(resp, size):
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(resp.content))
    img.load()
    assert img.format == "PNG" and img.size == (size, size)
    return resp.content


def _info(base):
    r = requests.get(f"{base}/info", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _counts_delta(before, after, key):
    b, a = before["model"][key], after["model"][key]
    return {int(k): v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0)}


def test_healthz_and_info(sd_app):
    assert requests.get(f"{sd_app}/healthz", timeout=30).json() == {"status": "ok"}
    info = _info(sd_app)
    assert info["model"]["loaded"] is True
    assert (info["model"]["device"], info["model"]["dtype"]) == ("cpu", "float32")
    assert info["model"]["scheduler"] == "EulerDiscreteScheduler"


@pytest.mark.parametrize("size", [64, 128])
def test_get_imagine_returns_png_of_requested_size(sd_app, size):
    r = requests.get(f"{sd_app}/imagine", params={"prompt": "a red fox", "img_size": size,
                                                  "steps": 2}, timeout=60)
    _png(r, size)
    assert 0 <= int(r.headers["x-seed"]) < 2**32


def test_post_imagine(sd_app):
    body = {"prompt": "a red fox", "negative_prompt": "blurry", "guidance": 3.0, "seed": 5,
            **SMALL}
    _png(requests.post(f"{sd_app}/imagine", json=body, timeout=60), 64)
    r = requests.post(f"{sd_app}/imagine", json=body, timeout=60)
    assert r.headers["x-seed"] == "5"


def test_same_seed_same_bytes_other_seed_other_bytes(sd_app):
    def get(seed):
        return _png(requests.get(f"{sd_app}/imagine", params={"prompt": "a lighthouse",
                                                               "seed": seed, **SMALL},
                                 timeout=60), 64)

    a1, a2, b = get(42), get(42), get(43)
    assert a1 == a2
    assert a1 != b
    # Inside a batch with other requests the same seed gives the same image, up to float
    # rounding of batched kernels (a few pixel values off by 1; see CONFIG.md).
    with ThreadPoolExecutor(4) as pool:
        batch = list(pool.map(get, [42, 7, 8, 9]))
    assert len(set(batch)) == 4
    alone, batched = (np.asarray(Image.open(io.BytesIO(x))).astype(int) for x in (a1, batch[0]))
    diff = np.abs(alone - batched)
    assert diff.max() <= 2 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).sum())
    other = np.asarray(Image.open(io.BytesIO(batch[1]))).astype(int)
    assert (np.abs(alone - other) > 0).mean() > 0.5


@pytest.mark.parametrize(
    "params,parameter",
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 501}, "prompt"),
        ({"prompt": "a", "img_size": "abc"}, "img_size"),
        ({"prompt": "a", "img_size": "32"}, "img_size"),
        ({"prompt": "a", "img_size": "4096"}, "img_size"),
        ({"prompt": "a", "img_size": "100"}, "img_size"),
        ({"prompt": "a", "img_size": "64", "steps": "0"}, "steps"),
        ({"prompt": "a", "img_size": "64", "steps": "101"}, "steps"),
        ({"prompt": "a", "img_size": "64", "steps": "2.5"}, "steps"),
        ({"prompt": "a", "img_size": "64", "guidance": "much"}, "guidance"),
        ({"prompt": "a", "img_size": "64", "guidance": "25"}, "guidance"),
        ({"prompt": "a", "img_size": "64", "guidance": "nan"}, "guidance"),
        ({"prompt": "a", "img_size": "64", "seed": "-3"}, "seed"),
        ({"prompt": "a", "img_size": "64", "seed": "lucky"}, "seed"),
        ({"prompt": "a", "size": "64"}, "size"),
        ([("prompt", "a"), ("img_size", "64"), ("img_size", "128")], "img_size"),
    ],
)
def test_get_bad_input_is_a_400_naming_the_parameter(sd_app, params, parameter):
    r = requests.get(f"{sd_app}/imagine", params=params, timeout=30)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["parameter"] == parameter
    assert parameter in body["message"]


@pytest.mark.parametrize(
    "kwargs,parameter",
    [
        ({"data": b"{not json", "headers": {"content-type": "application/json"}}, "body"),
        ({"json": ["a cat"]}, "body"),
        ({"json": {"prompt": 5}}, "prompt"),
        ({"json": {"prompt": "a", "img_size": True}}, "img_size"),
        ({"json": {"prompt": "a", "img_size": 64.5}}, "img_size"),
        ({"json": {"prompt": "a", "img_size": 64, "steps": None, "guidance": "x"}}, "guidance"),
    ],
)
def test_post_bad_input_is_a_400_naming_the_parameter(sd_app, kwargs, parameter):
    r = requests.post(f"{sd_app}/imagine", timeout=30, **kwargs)
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == parameter


def test_a_request_to_an_idle_replica_skips_the_batch_wait(sd_app):
    """One request at a time: each finds the replica idle, and its batch (of one) starts without
    waiting batch_wait_timeout_s for company that cannot come."""
    before = _info(sd_app)
    for i in range(3):
        _png(requests.get(f"{sd_app}/imagine", params={"prompt": f"lone {i}", "seed": i,
                                                       **SMALL}, timeout=60), 64)
    after = _info(sd_app)
    assert after["model"]["direct"] - before["model"]["direct"] == 3
    assert _counts_delta(before, after, "batch_size_counts") == {1: 3}


def test_concurrent_requests_are_batched(sd_app):
    before = _info(sd_app)
    n = 8
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(
            lambda i: requests.get(f"{sd_app}/imagine", params={"prompt": f"cat {i}", "seed": i,
                                                                 **SMALL}, timeout=60),
            range(n)))
    for r in results:
        _png(r, 64)
    batches = _counts_delta(before, _info(sd_app), "batch_size_counts")
    assert sum(size * count for size, count in batches.items()) == n
    max_batch = before["model"]["config"]["max_batch_size"]
    assert max(batches) > 1, f"no request was batched: {batches}"
    assert max(batches) <= max_batch


def test_mixed_parameters_in_one_batch(sd_app):
    """Requests of different sizes and step counts batched together all get their image."""
    variants = [(64, 2), (128, 2), (64, 3), (128, 3)] * 2
    for _attempt in range(3):
        before = _info(sd_app)
        with ThreadPoolExecutor(len(variants)) as pool:
            results = list(pool.map(
                lambda v: requests.get(f"{sd_app}/imagine", params={
                    "prompt": "mixed", "img_size": v[0], "steps": v[1], "seed": 1}, timeout=60),
                variants))
        for r, (size, _) in zip(results, variants):
            _png(r, size)
        after = _info(sd_app)
        batches = _counts_delta(before, after, "batch_size_counts")
        subs = _counts_delta(before, after, "sub_batch_size_counts")
        if sum(subs.values()) > sum(batches.values()):
            return  # at least one batch held mixed parameters and was split
    pytest.fail(f"no batch held mixed parameters: batches {batches}, sub-batches {subs}")


def test_bogus_model_path_fails_health(local_ray, local_serve_config, sd_app, tmp_path):
    """A model that cannot load: check_health raises, the app ends DEPLOY_FAILED/UNHEALTHY."""
    bogus = copy.deepcopy(local_serve_config["applications"][0])
    bogus["name"], bogus["route_prefix"] = "sd_bogus", "/bogus"
    for dep in bogus["deployments"]:
        # Room for the extra replicas on the 2-CPU test cluster.
        dep.setdefault("ray_actor_options", {})["num_cpus"] = 0
        if dep["name"] == serve_api.MODEL_DEPLOYMENT:
            dep["user_config"]["model_id"] = str(tmp_path / "no-such-model")
            dep["user_config"]["local_files_only"] = True
    both = {"applications": local_serve_config["applications"] + [bogus]}
    started = time.monotonic()
    serve_api.deploy(local_ray.dashboard_url, both, http_port=local_ray.http_port)
    try:
        status = serve_api.wait_for_app(local_ray.dashboard_url, "sd_bogus",
                                          want=("DEPLOY_FAILED", "UNHEALTHY"), timeout_s=120)
        elapsed = time.monotonic() - started
        model = status["deployments"][serve_api.MODEL_DEPLOYMENT]
        assert model["status"] in ("DEPLOY_FAILED", "UNHEALTHY"), model
        assert "pipeline failed to load" in model["message"], model["message"][:2000]
        assert elapsed < 120
        # The healthy application was left alone.
        apps = serve_api.serve_status(local_ray.dashboard_url)["applications"]
        assert apps["stable_diffusion"]["status"] == "RUNNING"
    finally:
        serve_api.deploy(local_ray.dashboard_url, local_serve_config,
                           http_port=local_ray.http_port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "sd_bogus" not in serve_api.serve_status(local_ray.dashboard_url)["applications"]:
                break
            time.sleep(0.5)
    _png(requests.get(f"{sd_app}/imagine", params={"prompt": "still fine", **SMALL},
                      timeout=60), 64)
