"""The Stable Diffusion app under pressure, on the session's local Ray (tests/serve/conftest.py:
the chart's default Serve config, fitted to 2 CPUs, with the tiny pipeline): abandoned requests
stop computing, queues are bounded (a fast 503 with Retry-After beyond them), bodies are
limited, and hostile input gets a 4xx or a PNG, never a 500."""
from __future__ import annotations

import copy
import http.client
import io
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator
from urllib.parse import urlsplit

import pytest

requests = pytest.importorskip("requests")
Image = pytest.importorskip("PIL.Image")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from request_inputs import bodies, check_outcome, outcome, url_query_strings  # noqa: E402

from ray_platform_sd.config import parse_ingress_config  # noqa: E402
from ray_platform_sd.params import RequestError, parse_body, parse_query  # noqa: E402
from serving import serve_api  # noqa: E402

pytestmark = pytest.mark.serve

SMALL = {"img_size": 64, "steps": 2}
# A request with the defaults (512 px, 30 steps) takes this pipeline more than an hour on 2 CPUs:
# one self-attention over its 256x256 latent is a torch call of more than a minute.
DEFAULT_SIZE = {"prompt": "a lighthouse at dusk"}


@pytest.fixture(autouse=True, scope="module")
def serve_stack() -> None:
    """Imported when these tests run, not at collection (seconds; see test_serve_app.py)."""
    pytest.importorskip("ray.serve")
    pytest.importorskip("diffusers")


def _app(config: Dict[str, Any]) -> Dict[str, Any]:
    return config["applications"][0]


@contextmanager
def changed(local_ray, config: Dict[str, Any], change: Callable[[Dict[str, Any]], None]) -> Iterator[Dict[str, Any]]:
    """The app redeployed with change(application) applied, the session's config again after."""
    new = copy.deepcopy(config)
    change(_app(new))
    serve_api.redeploy(local_ray, new, _app(config)["name"])
    try:
        yield new
    finally:
        serve_api.redeploy(local_ray, config, _app(config)["name"])


def ingress_user_config(**overrides: Any) -> Callable[[Dict[str, Any]], None]:
    def change(app: Dict[str, Any]) -> None:
        serve_api.find_deployment(app, serve_api.INGRESS_DEPLOYMENT)["user_config"].update(overrides)
    return change


def model_info(base: str) -> Dict[str, Any]:
    r = requests.get(f"{base}/info", timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["model"]


def assert_png(response, size: int) -> None:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.size == (size, size)


def timed_get(base: str, params: Dict[str, Any], timeout: float = 120):
    started = time.monotonic()
    response = requests.get(f"{base}/imagine", params=params, timeout=timeout)
    return response, time.monotonic() - started


# ------------------------------------------------------------------ cancellation

@pytest.mark.parametrize("who_gives_up", ["client", "ingress"])
def test_abandoned_request_stops_and_the_next_one_is_served(sd_app, local_ray, local_serve_config, who_gives_up) -> None:
    """A default-size request abandoned after 5 s (the client's timeout, or the ingress's
    request_timeout_s), then a small request answers within 15 s: the replica stopped the first."""
    before = model_info(sd_app)
    if who_gives_up == "client":
        with requests.Session() as session, pytest.raises(requests.Timeout):
            session.get(f"{sd_app}/imagine", params=DEFAULT_SIZE, timeout=5)
    else:
        with changed(local_ray, local_serve_config, ingress_user_config(request_timeout_s=5.0)):
            response, took = timed_get(sd_app, DEFAULT_SIZE)
            assert response.status_code == 504, response.text[:300]
            assert took < 10
    response, took = timed_get(sd_app, {"prompt": "a small one", **SMALL}, timeout=15)
    assert_png(response, 64)
    assert took < 15
    after = model_info(sd_app)
    assert after["interrupted"] > before["interrupted"], "the abandoned pipeline call was not stopped"
    assert after["cancelled"] > before["cancelled"]
    assert after["running"] is None


# ------------------------------------------------------------------ bounded queues

def burst(base: str, n: int) -> list:
    def one(i: int):
        response, took = timed_get(base, {"prompt": f"burst {i}", "seed": i, **SMALL})
        return response, took

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def check_burst(results: list, retry_after_s: float) -> None:
    """200s and 503s only; the 503s come at once. "At once" has two bounds. The median refusal
    is under a second (alone on 2 CPUs they take 0.02-0.3 s). Each refusal comes before the median
    accepted request: a refusal that had waited for a slot would take at least one pipeline call
    longer. Only that second bound holds for every refusal when the 2 cores are shared with the
    cluster suite, which slows the proxy as much as the pipeline (one refusal took 1.7 s in CI)."""
    statuses = sorted(r.status_code for r, _ in results)
    assert set(statuses) <= {200, 503}, statuses
    refused = sorted(took for r, took in results if r.status_code == 503)
    served = sorted(took for r, took in results if r.status_code == 200)
    assert refused and served, statuses
    for response, _ in results:
        if response.status_code == 503:
            assert response.headers.get("retry-after") == str(int(retry_after_s)), response.headers
        else:
            assert_png(response, 64)
    seconds = f"refusals {[round(t, 2) for t in refused]} s, accepted {[round(t, 2) for t in served]} s"
    assert statistics.median(refused) < 1.0, seconds
    assert refused[-1] < statistics.median(served), seconds


def test_burst_beyond_the_model_queue_gets_fast_503s(sd_app, local_serve_config) -> None:
    """60 at once against 8 ongoing + 16 queued model requests: the rest get 503 at once."""
    model = serve_api.find_deployment(_app(local_serve_config), serve_api.MODEL_DEPLOYMENT)
    assert model["max_ongoing_requests"] + model["max_queued_requests"] < 60
    results = burst(sd_app, 60)
    check_burst(results, model["backpressure_config"]["retry_after_s"])
    assert all(r.json()["error"] == "overloaded" for r, _ in results if r.status_code == 503)


def test_burst_beyond_the_ingress_queue_gets_fast_503s_from_the_proxy(sd_app, local_ray, local_serve_config) -> None:
    """The HTTP proxy's bound: 2 ongoing + 2 queued ingress requests, 16 at once."""
    def small_ingress(app: Dict[str, Any]) -> None:
        ingress = serve_api.find_deployment(app, serve_api.INGRESS_DEPLOYMENT)
        ingress.update(max_ongoing_requests=2, max_queued_requests=2)

    with changed(local_ray, local_serve_config, small_ingress) as config:
        ingress = serve_api.find_deployment(_app(config), serve_api.INGRESS_DEPLOYMENT)
        check_burst(burst(sd_app, 16), ingress["backpressure_config"]["retry_after_s"])


# ------------------------------------------------------------------ size and digit limits

def test_body_over_the_limit_is_a_413_naming_it(sd_app, local_serve_config) -> None:
    limit = serve_api.find_deployment(_app(local_serve_config), serve_api.INGRESS_DEPLOYMENT)["user_config"]["max_body_bytes"]
    head = json.dumps({"prompt": "padded", **SMALL}).encode()
    exactly = head + b" " * (limit - len(head))
    assert_png(requests.post(f"{sd_app}/imagine", data=exactly, timeout=60), 64)
    over = head + b" " * (limit + 1 - len(head))
    for data in (over, iter([over[:1000], over[1000:]]), head + b" " * (10 * 1024 * 1024)):
        response = requests.post(f"{sd_app}/imagine", data=data, timeout=60)  # an iterator: chunked
        assert response.status_code == 413, response.text[:300]
        body = response.json()
        assert body["limit_bytes"] == limit and f"{limit} bytes" in body["message"]


@pytest.mark.parametrize("parameter", ["steps", "seed"])
def test_integer_of_5000_digits_is_a_400_naming_the_parameter(sd_app, parameter) -> None:
    huge = "9" * 5000
    get = requests.get(f"{sd_app}/imagine", params={"prompt": "a", parameter: huge}, timeout=60)
    post = requests.post(f"{sd_app}/imagine", data=f'{{"prompt": "a", "{parameter}": {huge}}}', timeout=60)
    for response in (get, post):
        assert response.status_code == 400, response.text[:300]
        assert response.json()["parameter"] == parameter


# ------------------------------------------------------------------ fuzz against the running app

# Small limits, so that every request the parser accepts is a quick image.
FUZZ_LIMITS = {"default_img_size": 64, "min_img_size": 64, "max_img_size": 64, "default_steps": 1, "max_steps": 2}
LIVE_FUZZ = settings(max_examples=100, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzz_app(sd_app, local_ray, local_serve_config):
    """The app with FUZZ_LIMITS, and the ingress config the local oracle parses with."""
    with changed(local_ray, local_serve_config, ingress_user_config(**FUZZ_LIMITS)) as config:
        user_config = serve_api.find_deployment(_app(config), serve_api.INGRESS_DEPLOYMENT)["user_config"]
        yield sd_app, parse_ingress_config(user_config)


def check_answer(response, expected) -> None:
    """The answer to an input the parser turned into `expected`: a PNG of its size, or its 4xx."""
    if isinstance(expected, RequestError):
        assert response.status_code == expected.status, (response.status_code, response.text[:300])
        assert response.json() == json.loads(json.dumps(expected.to_json()))
    else:
        assert_png(response, expected.width)


@LIVE_FUZZ
@given(query=url_query_strings)
def test_fuzzed_query_strings_get_a_4xx_or_a_png(fuzz_app, query: str) -> None:
    base, cfg = fuzz_app
    expected = outcome(parse_query, query, cfg)
    check_outcome(expected, cfg)
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request("GET", f"{url.path}/imagine?{query}")  # exactly these bytes, not re-encoded
        raw = conn.getresponse()
        response = requests.models.Response()
        response.status_code, response._content = raw.status, raw.read()
        response.headers = requests.structures.CaseInsensitiveDict(raw.getheaders())
    finally:
        conn.close()
    check_answer(response, expected)


@LIVE_FUZZ
@given(body=bodies)
def test_fuzzed_post_bodies_get_a_4xx_or_a_png(fuzz_app, body: bytes) -> None:
    base, cfg = fuzz_app
    expected = outcome(parse_body, body, cfg)
    check_outcome(expected, cfg)
    check_answer(requests.post(f"{base}/imagine", data=body, timeout=60), expected)
