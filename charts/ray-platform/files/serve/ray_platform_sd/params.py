"""Validation of /imagine requests (no Ray, torch or diffusers needed here).

parse_query() (a GET query string) and parse_body() (a POST body) are everything the ingress
does with a request before it calls the model: they return a GenerationRequest inside the
configured limits, or raise a RequestError carrying the HTTP status (400, or 413 for a body over
max_body_bytes) and a JSON body naming the offending parameter. No input makes them raise
anything else, so hostile input never becomes a 500 (tests/serve fuzz them with hypothesis).
parse_request() validates the parameters once they are a mapping.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Union
from urllib.parse import parse_qsl

from .config import IngressConfig

PARAMETERS = ("prompt", "negative_prompt", "img_size", "steps", "guidance", "seed")
MAX_SEED = 2**32 - 1
# Longer integers are refused before int() sees them: every bound here has at most 10 digits,
# and int() of more than 4,300 digits raises (Python's integer digit limit).
MAX_INT_DIGITS = 20
# Echoed input is cut to this many characters, so an error answer stays small.
SHOWN_CHARS = 60
# A query string with more fields is refused before it is split up.
MAX_QUERY_FIELDS = 64
# A body nested deeper is refused before json sees it. The parameters are a flat object; without a
# bound, json's recursion limit decides, and it is reached at a depth that depends on how deep the
# caller's stack already is (the same body was "invalid JSON" in one process and "maximum recursion
# depth exceeded" in the Serve replica).
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


class RequestError(ValueError):
    """A request the ingress refuses: an HTTP status and a JSON body."""

    status = 400

    def to_json(self) -> Dict[str, Any]:
        raise NotImplementedError


class ParamError(RequestError):
    def __init__(self, parameter: str, message: str):
        parameter = _cut(parameter)
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message

    def to_json(self) -> Dict[str, Any]:
        return {"error": "invalid_parameter", "parameter": self.parameter,
                "message": f"{self.parameter}: {self.message}"}


class BodyTooLarge(RequestError):
    status = 413

    def __init__(self, limit: int):
        super().__init__(f"request body larger than max_body_bytes ({limit} bytes)")
        self.limit = limit

    def to_json(self) -> Dict[str, Any]:
        return {"error": "body_too_large", "limit_bytes": self.limit,
                "message": f"the request body is larger than the limit of {self.limit} bytes "
                           "(max_body_bytes)"}


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: Optional[str]
    height: int
    width: int
    steps: int
    guidance: float
    seed: int

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _LongInteger:
    """A JSON integer literal with more than MAX_INT_DIGITS digits (never converted)."""

    digits: int


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def _show(v: Any) -> str:
    if isinstance(v, _LongInteger):
        return f"an integer of {v.digits} digits"
    return _cut(repr(v))


def _as_int(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, _LongInteger):
        raise ParamError(name, f"must be between {lo} and {hi}, got {_show(v)}")
    if isinstance(v, int) and not isinstance(v, bool):
        n = v
    elif isinstance(v, str) and v.strip().lstrip("+-").isdigit() and v.isascii():
        s = v.strip()
        digits = len(s.lstrip("+-"))
        if len(s) - digits > 1:  # "+-5", "--5"
            raise ParamError(name, f"must be an integer, got {_show(v)}")
        if digits > MAX_INT_DIGITS:
            raise ParamError(name, f"must be between {lo} and {hi}, got an integer of "
                                   f"{digits} digits")
        n = int(s)
    else:
        raise ParamError(name, f"must be an integer, got {_show(v)}")
    if not lo <= n <= hi:
        raise ParamError(name, f"must be between {lo} and {hi}, got {n}")
    return n


def _as_float(name: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or isinstance(v, _LongInteger):
        raise ParamError(name, f"must be a number between {lo:g} and {hi:g}, got {_show(v)}")
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            raise ParamError(name, f"must be a number, got {_show(v)}") from None
    else:
        raise ParamError(name, f"must be a number, got {_show(v)}")
    if not math.isfinite(f):
        raise ParamError(name, f"must be a finite number, got {_show(v)}")
    if not lo <= f <= hi:
        raise ParamError(name, f"must be between {lo:g} and {hi:g}, got {f:g}")
    return f


def _as_text(name: str, v: Any, max_len: int, required: bool) -> Optional[str]:
    if v is None:
        if required:
            raise ParamError(name, "is required")
        return None
    if not isinstance(v, str):
        raise ParamError(name, f"must be a string, got {type(v).__name__}")
    s = v.strip()
    if not s:
        if required:
            raise ParamError(name, "must not be empty")
        return None
    if len(s) > max_len:
        raise ParamError(name, f"is {len(s)} characters long, at most {max_len} are allowed")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no tokenizer takes it
        raise ParamError(name, "is not valid Unicode text (lone surrogate)") from None
    return s


def parse_request(raw: Mapping[str, Any], cfg: IngressConfig) -> GenerationRequest:
    unknown = sorted(k for k in raw if k not in PARAMETERS)
    if unknown:
        raise ParamError(unknown[0], f"unknown parameter {_show(unknown[0])}; known: "
                                     f"{', '.join(PARAMETERS)}")

    prompt = _as_text("prompt", raw.get("prompt"), cfg.max_prompt_length, required=True)
    negative = _as_text("negative_prompt", raw.get("negative_prompt"), cfg.max_prompt_length,
                        required=False)

    size = raw.get("img_size")
    size = (cfg.default_img_size if size is None
            else _as_int("img_size", size, cfg.min_img_size, cfg.max_img_size))
    if size % 8:
        raise ParamError("img_size", f"must be a multiple of 8, got {size}")

    steps = raw.get("steps")
    steps = cfg.default_steps if steps is None else _as_int("steps", steps, 1, cfg.max_steps)

    guidance = raw.get("guidance")
    guidance = (cfg.default_guidance if guidance is None
                else _as_float("guidance", guidance, 0.0, cfg.max_guidance))

    seed = raw.get("seed")
    seed = secrets.randbelow(MAX_SEED + 1) if seed is None else _as_int("seed", seed, 0, MAX_SEED)

    return GenerationRequest(prompt=prompt, negative_prompt=negative, height=size, width=size,
                             steps=steps, guidance=guidance, seed=seed)


def parse_query(query: Union[str, bytes], cfg: IngressConfig) -> GenerationRequest:
    """A GET query string (the raw bytes of the URL after `?`, or text)."""
    if isinstance(query, bytes):
        query = query.decode("latin-1")  # what HTTP servers hand over; %xx decodes as UTF-8
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS,
                          errors="replace")
    except ValueError:  # more than MAX_QUERY_FIELDS fields
        raise ParamError("query", f"has more than {MAX_QUERY_FIELDS} parameters") from None
    raw: Dict[str, Any] = {}
    for key, value in pairs:
        if key in raw:
            raise ParamError(key, f"parameter {_show(key)} given more than once")
        raw[key] = value
    return parse_request(raw, cfg)


def _int_literal(digits: str) -> Union[int, _LongInteger]:
    n = len(digits.lstrip("-"))
    return _LongInteger(n) if n > MAX_INT_DIGITS else int(digits)


def parse_body(body: bytes, cfg: IngressConfig) -> GenerationRequest:
    """A POST body: a JSON object of the same parameters, at most cfg.max_body_bytes."""
    if len(body) > cfg.max_body_bytes:
        raise BodyTooLarge(cfg.max_body_bytes)
    if _json_depth(body) > MAX_JSON_DEPTH:
        raise ParamError("body", f"is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        raw = json.loads(body or b"null", parse_int=_int_literal)
    except ValueError as e:  # UnicodeDecodeError is a ValueError; MAX_JSON_DEPTH keeps RecursionError out
        raise ParamError("body", f"is not valid JSON ({_cut(str(e))})") from None
    if not isinstance(raw, dict):
        raise ParamError("body", "must be a JSON object")
    return parse_request(raw, cfg)


def _json_depth(body: bytes) -> int:
    """The deepest nesting of [ and { outside JSON strings (a regular expression and a count, so
    no recursion of its own)."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", body)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest
