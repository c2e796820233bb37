"""user_config schemas of the two deployments (no Ray, torch or diffusers needed here).

Each deployment takes its settings only from its ``user_config`` (Serve calls
``reconfigure(user_config)``).  A missing key takes its default; an unknown key, a value
of the wrong type or out of range raises ``ValueError`` naming the key, so a typo in a
Helm values file fails the deployment loudly instead of being ignored.

APIIngress keys
---------------
========================  =====  =======  ==============================================
key                       type   default  meaning
========================  =====  =======  ==============================================
default_img_size          int    512      img_size when the request gives none
min_img_size              int    64       smallest accepted img_size (multiple of 8)
max_img_size              int    1024     largest accepted img_size (multiple of 8)
default_steps             int    30       denoising steps when the request gives none
max_steps                 int    100      largest accepted steps (smallest is 1)
default_guidance          float  7.5      guidance scale when the request gives none
max_guidance              float  20.0     largest accepted guidance (smallest is 0)
max_prompt_length         int    500      longest accepted prompt / negative_prompt,
                                          in characters
request_timeout_s         float  300.0    how long the ingress waits for an image
                                          before answering 504 (and cancels the work)
max_body_bytes            int    65536    largest accepted POST body; a longer one is
                                          answered 413 before it is read to the end
========================  =====  =======  ==============================================

StableDiffusionModel keys
-------------------------
====================  ===========  ========================================  =========
key                   type         default                                   meaning
====================  ===========  ========================================  =========
model_id              str          stabilityai/stable-diffusion-xl-base-1.0  hub id or
                                                                             local path
revision              str|null     null      hub revision (branch, tag or commit)
variant               str|null     null      weight file variant, e.g. "fp16"
dtype                 str          float16   float16 | float32 | bfloat16 (float16 on a
                                             CPU falls back to float32, with a warning)
scheduler             str          euler     default (the model's own) | euler |
                                             euler_ancestral | ddim | dpm_solver |
                                             pndm | unipc
device                str          auto      auto (cuda if present) | cuda | cpu
local_files_only      bool         false     never contact the hub (weights must be in
                                             cache_dir / the HF cache, or model_id a path)
cache_dir             str|null     null      where hub downloads are cached (default:
                                             the HF cache, HF_HOME)
max_batch_size        int          4         most requests per @serve.batch call (1-64;
                                             1 switches batching off)
batch_wait_timeout_s  float        0.1       how long a batch waits to fill (0-10 s);
                                             a request to an idle replica never waits
torch_threads         int|null     null      torch CPU threads of the replica (1-256);
                                             null keeps Ray's setting (OMP_NUM_THREADS =
                                             the replica's num_cpus)
====================  ===========  ========================================  =========

Changing model_id, revision, variant, dtype, device, local_files_only or cache_dir
reloads the pipeline; scheduler is swapped in place; the batch keys and torch_threads apply
at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

SCHEDULERS: Dict[str, Optional[str]] = {
    "default": None,
    "euler": "EulerDiscreteScheduler",
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "ddim": "DDIMScheduler",
    "dpm_solver": "DPMSolverMultistepScheduler",
    "pndm": "PNDMScheduler",
    "unipc": "UniPCMultistepScheduler",
}
DTYPES = ("float16", "float32", "bfloat16")
DEVICES = ("auto", "cuda", "cpu")


def _int(key: str, v: Any, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"user_config key {key!r} must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"user_config key {key!r} must be in [{lo}, {hi}], got {v}")
    return v


def _float(key: str, v: Any, lo: Optional[float] = None, hi: Optional[float] = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"user_config key {key!r} must be a finite number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"user_config key {key!r} must be in [{lo}, {hi}], got {v}")
    return float(v)


def _str(key: str, v: Any, choices: Tuple[str, ...] = ()) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"user_config key {key!r} must be a non-empty string, got {v!r}")
    if choices and v not in choices:
        raise ValueError(f"user_config key {key!r} must be one of {list(choices)}, got {v!r}")
    return v


def _opt_str(key: str, v: Any) -> Optional[str]:
    return None if v is None else _str(key, v)


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"user_config key {key!r} must be true or false, got {v!r}")
    return v


def _multiple_of_8(key: str, v: int) -> int:
    if v % 8:
        raise ValueError(f"user_config key {key!r} must be a multiple of 8, got {v}")
    return v


@dataclass(frozen=True)
class IngressConfig:
    default_img_size: int = 512
    min_img_size: int = 64
    max_img_size: int = 1024
    default_steps: int = 30
    max_steps: int = 100
    default_guidance: float = 7.5
    max_guidance: float = 20.0
    max_prompt_length: int = 500
    request_timeout_s: float = 300.0
    max_body_bytes: int = 65536

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelConfig:
    model_id: str = "stabilityai/stable-diffusion-xl-base-1.0"
    revision: Optional[str] = None
    variant: Optional[str] = None
    dtype: str = "float16"
    scheduler: str = "euler"
    device: str = "auto"
    local_files_only: bool = False
    cache_dir: Optional[str] = None
    max_batch_size: int = 4
    batch_wait_timeout_s: float = 0.1
    torch_threads: Optional[int] = None

    # Keys whose change needs a new pipeline (the others apply in place).
    LOAD_KEYS = ("model_id", "revision", "variant", "dtype", "device", "local_files_only",
                 "cache_dir")

    def load_key(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.LOAD_KEYS)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


INGRESS_CONFIG_KEYS = frozenset(f.name for f in fields(IngressConfig))
MODEL_CONFIG_KEYS = frozenset(f.name for f in fields(ModelConfig))

_INGRESS_CHECKS: Dict[str, Callable[[str, Any], Any]] = {
    "default_img_size": lambda k, v: _multiple_of_8(k, _int(k, v, 8, 8192)),
    "min_img_size": lambda k, v: _multiple_of_8(k, _int(k, v, 8, 8192)),
    "max_img_size": lambda k, v: _multiple_of_8(k, _int(k, v, 8, 8192)),
    "default_steps": lambda k, v: _int(k, v, 1, 1000),
    "max_steps": lambda k, v: _int(k, v, 1, 1000),
    "default_guidance": lambda k, v: _float(k, v, 0.0, 100.0),
    "max_guidance": lambda k, v: _float(k, v, 0.0, 100.0),
    "max_prompt_length": lambda k, v: _int(k, v, 1, 100_000),
    "request_timeout_s": lambda k, v: _float(k, v, 0.001, 86_400.0),
    "max_body_bytes": lambda k, v: _int(k, v, 256, 64 * 1024 * 1024),
}

_MODEL_CHECKS: Dict[str, Callable[[str, Any], Any]] = {
    "model_id": _str,
    "revision": _opt_str,
    "variant": _opt_str,
    "dtype": lambda k, v: _str(k, v, DTYPES),
    "scheduler": lambda k, v: _str(k, v, tuple(SCHEDULERS)),
    "device": lambda k, v: _str(k, v, DEVICES),
    "local_files_only": _bool,
    "cache_dir": _opt_str,
    "max_batch_size": lambda k, v: _int(k, v, 1, 64),
    "batch_wait_timeout_s": lambda k, v: _float(k, v, 0.0, 10.0),
    "torch_threads": lambda k, v: None if v is None else _int(k, v, 1, 256),
}


def _parse(user_config: Optional[Mapping[str, Any]], checks, known, cls, deployment: str):
    user_config = {} if user_config is None else user_config
    if not isinstance(user_config, Mapping):
        raise ValueError(f"{deployment} user_config must be a mapping, got {user_config!r}")
    unknown = sorted(set(user_config) - known)
    if unknown:
        raise ValueError(
            f"{deployment} user_config has unknown key(s) {unknown}; known: {sorted(known)}"
        )
    return cls(**{k: checks[k](k, v) for k, v in user_config.items()})


def parse_ingress_config(user_config: Optional[Mapping[str, Any]]) -> IngressConfig:
    cfg = _parse(user_config, _INGRESS_CHECKS, INGRESS_CONFIG_KEYS, IngressConfig, "APIIngress")
    if not cfg.min_img_size <= cfg.default_img_size <= cfg.max_img_size:
        raise ValueError(
            "APIIngress user_config needs min_img_size <= default_img_size <= max_img_size, "
            f"got {cfg.min_img_size}, {cfg.default_img_size}, {cfg.max_img_size}"
        )
    if cfg.default_steps > cfg.max_steps:
        raise ValueError(
            f"APIIngress user_config needs default_steps <= max_steps, "
            f"got {cfg.default_steps} > {cfg.max_steps}"
        )
    if cfg.default_guidance > cfg.max_guidance:
        raise ValueError(
            f"APIIngress user_config needs default_guidance <= max_guidance, "
            f"got {cfg.default_guidance} > {cfg.max_guidance}"
        )
    return cfg


def parse_model_config(user_config: Optional[Mapping[str, Any]]) -> ModelConfig:
    return _parse(user_config, _MODEL_CHECKS, MODEL_CONFIG_KEYS, ModelConfig,
                  "StableDiffusionModel")
