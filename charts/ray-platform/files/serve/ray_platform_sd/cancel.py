"""Stopping a pipeline call whose requests were all cancelled (torch is imported lazily).

A diffusers pipeline offers one place to stop between steps (callback_on_step_end), but one
step of a large image on a CPU can take minutes: a single self-attention over a 256x256 latent
is one torch call of more than a minute on two cores. CancelPoints is a TorchFunctionMode (a
public torch API, active only in the thread that runs the pipeline) that checks before every
torch call whether anyone still waits for the result, and runs a CPU attention over many
queries in slices of queries with a check between slices. Each query row's attention is
computed the same way either way, so slicing changes nothing but when a stop can happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

# Attention scores (batch x heads x queries x keys) one CPU attention call may compute before
# the next check: about a third of a second on one core.
MAX_SCORES_PER_CALL = 1 << 27


class Cancelled(Exception):
    """Every request of the running pipeline call was cancelled."""


@dataclass(eq=False)
class Job:
    """One request in a batch; `cancelled` is set on the event loop, read by the worker."""

    request: Dict[str, Any]
    cancelled: bool = field(default=False)


def _torch_function_mode():
    from torch.overrides import TorchFunctionMode

    return TorchFunctionMode


class CancelPoints:
    """Context manager: inside it, torch calls of this thread raise Cancelled once every job
    is cancelled."""

    def __init__(self, jobs: List[Job]):
        self.jobs = jobs
        self._mode = None

    def check(self) -> None:
        if all(job.cancelled for job in self.jobs):
            raise Cancelled(f"all {len(self.jobs)} request(s) cancelled")

    def __enter__(self) -> "CancelPoints":
        import torch.nn.functional as F

        points = self
        sdpa = F.scaled_dot_product_attention

        class Mode(_torch_function_mode()):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                points.check()
                if func is sdpa:
                    return points._attention(func, args, kwargs)
                return func(*args, **kwargs)

        self._mode = Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        mode, self._mode = self._mode, None
        mode.__exit__(*exc)

    def _attention(self, sdpa, args, kwargs):
        """scaled_dot_product_attention, in slices of queries when it is a big CPU call."""
        import torch

        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal")
        given = dict(zip(names, args), **kwargs)
        query, key = given.get("query"), given.get("key")
        mask = given.get("attn_mask")
        if (query is None or key is None or query.device.type != "cpu" or query.dim() < 2
                or given.get("is_causal") or given.get("dropout_p", 0.0)
                or (mask is not None and mask.dim() < 2)):
            return sdpa(*args, **kwargs)
        queries, keys = query.shape[-2], key.shape[-2]
        rows = max(1, query.numel() // max(1, queries * query.shape[-1]))
        per_call = max(1, MAX_SCORES_PER_CALL // max(1, rows * keys))
        if queries <= per_call:
            return sdpa(*args, **kwargs)
        parts = []
        for start in range(0, queries, per_call):
            self.check()
            part = dict(given, query=query[..., start:start + per_call, :])
            if mask is not None and mask.shape[-2] == queries:
                part["attn_mask"] = mask[..., start:start + per_call, :]
            parts.append(sdpa(**part))
        return torch.cat(parts, dim=-2)
