"""Hostile input against the /imagine request parser (params.parse_query / parse_body, exactly
what the ingress runs before it calls the model): every input gives a request inside the
configured limits or a 4xx naming what is wrong, never another exception (which the ingress
would answer with a 500). tests/serve/test_serve_under_pressure.py sends the same kind of input
to the running app and checks each answer is that 4xx or a PNG."""
from __future__ import annotations

import sys
import traceback

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


@pytest.mark.parametrize("body", [b"[" * 60_000, b"[" * 967 + b"]" * 967, b'{"prompt": ' * 33 + b'"a"' + b"}" * 33])
def test_deeply_nested_body_is_a_400_naming_the_depth_limit(body: bytes) -> None:
    result = outcome(parse_body, body)
    assert isinstance(result, ParamError) and result.parameter == "body"
    assert result.message == "is nested deeper than 32 levels"


def test_nesting_up_to_the_limit_reaches_the_json_parser_and_brackets_in_strings_do_not_count() -> None:
    at_limit = outcome(parse_body, b"[" * 32 + b"]" * 32)
    assert isinstance(at_limit, ParamError) and at_limit.message == "must be a JSON object"
    brackets = outcome(parse_body, b'{"prompt": "' + b"[{" * 100 + b'\\" ]"}')
    assert isinstance(brackets, GenerationRequest), brackets


def test_the_answer_to_a_nested_body_does_not_depend_on_the_callers_stack_depth() -> None:
    """The Serve replica parses under many more frames than a test does; with json's recursion
    limit deciding, a body 967 deep was "invalid JSON" here and "maximum recursion depth" there."""
    frames_here = len(traceback.extract_stack())
    body = b"[" * (sys.getrecursionlimit() - frames_here - 100)  # fits json's budget here, not 300 frames deeper
    def deep(frames: int) -> str:
        return deep(frames - 1) if frames else repr(outcome(parse_body, body))
    assert deep(0) == deep(300)


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
