"""Hostile input against the /imagine request parser (params.parse_query / parse_body, exactly
what the ingress runs before it calls the model): every input gives a request inside the
configured limits or a 4xx naming what is wrong, never another exception (which the ingress
would answer with a 500). tests/serve/test_serve_under_pressure.py sends the same kind of input
to the running app and checks each answer is that 4xx or a PNG."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from request_inputs import bodies, check_outcome, digits, outcome, query_strings

from ray_platform_sd.config import IngressConfig
from ray_platform_sd.params import BodyTooLarge, GenerationRequest, ParamError, parse_body, parse_query

pytestmark = pytest.mark.serve

CFG = IngressConfig()
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ properties

@FUZZ
@given(query_strings)
def test_any_query_string_is_a_request_in_limits_or_a_4xx(query: str) -> None:
    check_outcome(outcome(parse_query, query))


@FUZZ
@given(st.binary(max_size=600))
def test_any_query_bytes_are_a_request_in_limits_or_a_4xx(query: bytes) -> None:
    check_outcome(outcome(parse_query, query))


@FUZZ
@given(bodies)
def test_any_post_body_is_a_request_in_limits_or_a_4xx(body: bytes) -> None:
    check_outcome(outcome(parse_body, body))


# ------------------------------------------------------------------ the cases that were 500s

@pytest.mark.parametrize("parameter", ["steps", "img_size", "seed"])
def test_integer_past_pythons_digit_limit_is_a_400_naming_the_parameter(parameter: str) -> None:
    huge = digits(5000)
    for result in (outcome(parse_query, f"prompt=a&{parameter}={huge}"),
                   outcome(parse_body, f'{{"prompt": "a", "{parameter}": {huge}}}'.encode()),
                   outcome(parse_body, f'{{"prompt": "a", "{parameter}": "{huge}"}}'.encode())):
        assert isinstance(result, ParamError), result
        assert result.parameter == parameter and "5000 digits" in result.message


def test_deeply_nested_body_is_a_400_naming_the_body() -> None:
    result = outcome(parse_body, b"[" * 60_000)
    assert isinstance(result, ParamError) and result.parameter == "body"


def test_lone_surrogate_prompt_is_a_400_naming_the_prompt() -> None:
    result = outcome(parse_body, b'{"prompt": "a \\udc80 b"}')
    assert isinstance(result, ParamError) and result.parameter == "prompt"


def test_body_over_the_limit_is_a_413_naming_the_limit() -> None:
    cfg = IngressConfig(max_body_bytes=1000)
    ok = b'{"prompt": "' + b"a" * 400 + b'"}'
    assert isinstance(outcome(parse_body, ok, cfg), GenerationRequest)
    result = outcome(parse_body, b" " * 1001, cfg)
    assert isinstance(result, BodyTooLarge) and result.status == 413
    assert result.to_json()["limit_bytes"] == 1000 and "1000 bytes" in result.to_json()["message"]
