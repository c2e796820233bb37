"""Validation of /imagine request parameters (no Ray, torch or diffusers needed here).

parse_request() turns query parameters (strings) or a JSON object into a
GenerationRequest, or raises ParamError naming the offending parameter; the ingress
answers that with HTTP 400 and a JSON body, never a 500.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional

from .config import IngressConfig

PARAMETERS = ("prompt", "negative_prompt", "img_size", "steps", "guidance", "seed")
MAX_SEED = 2**32 - 1


class ParamError(ValueError):
    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message

    def to_json(self) -> Dict[str, str]:
        return {"error": "invalid_parameter", "parameter": self.parameter,
                "message": f"{self.parameter}: {self.message}"}


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


def _as_int(name: str, v: Any) -> int:
    if isinstance(v, bool):
        raise ParamError(name, f"must be an integer, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        s = v.strip()
        if s.lstrip("+-").isdigit() and s.isascii():
            return int(s)
    raise ParamError(name, f"must be an integer, got {v!r}")


def _as_float(name: str, v: Any) -> float:
    if isinstance(v, bool):
        raise ParamError(name, f"must be a number, got {v!r}")
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            raise ParamError(name, f"must be a number, got {v!r}") from None
    else:
        raise ParamError(name, f"must be a number, got {v!r}")
    if not math.isfinite(f):
        raise ParamError(name, f"must be a finite number, got {v!r}")
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
    return s


def parse_request(raw: Mapping[str, Any], cfg: IngressConfig) -> GenerationRequest:
    unknown = sorted(k for k in raw if k not in PARAMETERS)
    if unknown:
        raise ParamError(unknown[0], f"unknown parameter; known: {', '.join(PARAMETERS)}")

    prompt = _as_text("prompt", raw.get("prompt"), cfg.max_prompt_length, required=True)
    negative = _as_text("negative_prompt", raw.get("negative_prompt"), cfg.max_prompt_length,
                        required=False)

    size = raw.get("img_size")
    size = cfg.default_img_size if size is None else _as_int("img_size", size)
    if not cfg.min_img_size <= size <= cfg.max_img_size:
        raise ParamError("img_size", f"must be between {cfg.min_img_size} and "
                                     f"{cfg.max_img_size}, got {size}")
    if size % 8:
        raise ParamError("img_size", f"must be a multiple of 8, got {size}")

    steps = raw.get("steps")
    steps = cfg.default_steps if steps is None else _as_int("steps", steps)
    if not 1 <= steps <= cfg.max_steps:
        raise ParamError("steps", f"must be between 1 and {cfg.max_steps}, got {steps}")

    guidance = raw.get("guidance")
    guidance = cfg.default_guidance if guidance is None else _as_float("guidance", guidance)
    if not 0.0 <= guidance <= cfg.max_guidance:
        raise ParamError("guidance", f"must be between 0 and {cfg.max_guidance}, got {guidance}")

    seed = raw.get("seed")
    if seed is None:
        seed = secrets.randbelow(MAX_SEED + 1)
    else:
        seed = _as_int("seed", seed)
        if not 0 <= seed <= MAX_SEED:
            raise ParamError("seed", f"must be between 0 and {MAX_SEED}, got {seed}")

    return GenerationRequest(prompt=prompt, negative_prompt=negative, height=size, width=size,
                             steps=steps, guidance=guidance, seed=seed)
