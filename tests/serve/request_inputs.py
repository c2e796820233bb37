"""Hostile /imagine input as hypothesis strategies, and what every outcome of parsing it must
be; shared by the parser fuzz (test_request_parser_fuzz.py) and the one against the running app
(test_serve_under_pressure.py).
"""
from __future__ import annotations

import json
import math
from urllib.parse import quote

from hypothesis import strategies as st

from ray_platform_sd.config import IngressConfig
from ray_platform_sd.params import MAX_SEED, PARAMETERS, GenerationRequest, ParamError, RequestError

MAX_BODY_BYTES = IngressConfig().max_body_bytes
CFG = IngressConfig()


def outcome(parse, raw, cfg: IngressConfig = CFG) -> GenerationRequest | RequestError:
    """parse(raw, cfg), with a refusal returned instead of raised; anything else propagates."""
    try:
        return parse(raw, cfg)
    except RequestError as e:
        return e


def check_outcome(result: GenerationRequest | RequestError, cfg: IngressConfig = CFG) -> None:
    if isinstance(result, RequestError):
        assert 400 <= result.status < 500
        body = json.loads(json.dumps(result.to_json()))  # what the ingress sends
        assert body["error"] and body["message"]
        if isinstance(result, ParamError):
            # The parameter's name ("" for `?=x`, cut when long) starts the message.
            assert isinstance(body["parameter"], str) and body["message"].startswith(body["parameter"])
            if body["parameter"] not in PARAMETERS + ("body", "query"):
                assert "unknown parameter" in body["message"] or "more than once" in body["message"]
        assert len(json.dumps(body)) < 2000, "an error answer echoes too much input"
        return
    assert isinstance(result, GenerationRequest)
    assert result.prompt and len(result.prompt) <= cfg.max_prompt_length
    result.prompt.encode("utf-8")
    if result.negative_prompt is not None:
        assert len(result.negative_prompt) <= cfg.max_prompt_length
        result.negative_prompt.encode("utf-8")
    assert cfg.min_img_size <= result.width == result.height <= cfg.max_img_size
    assert result.width % 8 == 0
    assert 1 <= result.steps <= cfg.max_steps
    assert math.isfinite(result.guidance) and 0 <= result.guidance <= cfg.max_guidance
    assert 0 <= result.seed <= MAX_SEED



def digits(n: int) -> str:
    return "9" * n


numbers_as_text = st.one_of(
    st.integers().map(str),
    st.integers(0, 6000).map(digits),
    st.integers(0, 6000).map(lambda n: "-" + digits(n)),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " 64 ", "+64", "-0", "0x40", "6_4", "64.0", "1e3", "nan", "inf", "--5",
                     "٦٤", "６４", "\x00", "64\x00"]),
)
values_as_text = st.one_of(numbers_as_text, st.text(max_size=600))
keys = st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=20))
# Percent-encoded pairs, with any bytes inside, plus stray separators.
encoded = st.one_of(st.text(), st.binary()).map(
    lambda v: "".join(f"%{b:02X}" for b in (v.encode("utf-8", "surrogatepass") if isinstance(v, str) else v)))
query_strings = st.one_of(
    st.text(max_size=300),
    st.lists(st.tuples(keys, values_as_text), max_size=10).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
    st.lists(st.one_of(encoded, st.sampled_from(["&", "=", "%", "+", ";", "%zz", "%f"])), max_size=20).map("".join),
    st.integers(60, 80).map(lambda n: "&".join(f"k{i}=1" for i in range(n))),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=600),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
json_numbers = st.one_of(  # JSON literals json.dumps cannot write: long integers, NaN, huge exponents
    st.integers(0, 6000).map(digits), st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0", "1E-999"]))


@st.composite
def json_objects(draw) -> bytes:
    """A JSON object of (mostly) known parameters with values of any JSON type, some written as
    raw literals."""
    items = draw(st.dictionaries(keys, st.one_of(json_values, json_numbers.map(lambda s: ("raw", s))), max_size=8))
    parts = []
    for key, value in items.items():
        text = value[1] if isinstance(value, tuple) else json.dumps(value)
        parts.append(f"{json.dumps(key)}: {text}")
    return ("{" + ", ".join(parts) + "}").encode()


bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_objects(),
    json_objects().map(lambda b: b.decode().encode("utf-16")),
    st.integers(1, 200_000).map(lambda n: b"[" * n),
    st.integers(1, 20_000).map(lambda n: b'{"prompt": ' * n),
    st.text(max_size=50).map(lambda s: json.dumps({"prompt": s}).encode()),
    st.just(b'{"prompt": "\\ud800"}'),
    st.integers(MAX_BODY_BYTES - 20, MAX_BODY_BYTES + 20).map(
        lambda n: b'{"prompt": "' + b"a" * max(0, n - 14) + b'"}'),
)

# Query strings a client can put on a request line as they are: URL-safe characters only, so the
# server sees exactly these bytes (any byte percent-encoded).
url_safe_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-._~+", max_size=12)
url_query_strings = st.one_of(
    st.lists(st.tuples(keys, values_as_text), max_size=8).map(
        lambda pairs: "&".join(f"{quote(k, safe='')}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
                               for k, v in pairs)),
    st.lists(st.one_of(encoded, url_safe_text, st.sampled_from(["&", "=", "%", "+", ";", "%zz", "%f", "prompt=a"])),
             max_size=16).map("".join),
)
