"""StableDiffusionModel: a diffusers text-to-image pipeline behind @serve.batch.

All settings come from user_config (see config.py for every key).  A request that
finds the replica idle (no other request in it) starts its batch at once: waiting for
company would only add batch_wait_timeout_s to its latency.  Requests that arrive while
others are under way wait for a batch: those that arrive within batch_wait_timeout_s are
run together, up to max_batch_size; a batch
holding different sizes, step counts or guidance scales is split into sub-batches of
equal parameters.  Every request carries its own seed and its own CPU generator, so
the same seed and parameters give the same start noise whatever batch it lands in: run
alone (or in the same batch), the PNG is byte-identical; batched with other requests,
float rounding in batched kernels may move a few pixel values by 1.  max_batch_size 1
gives strict byte-reproducibility under concurrency.

If the pipeline fails to load, the error is kept and check_health() raises it: Serve
then counts the replica as failed (at start-up: DEPLOY_FAILED after its retries; later:
UNHEALTHY, and the replica is replaced, which retries the load).

Cancellation: when Serve cancels a request (its client went away, or the ingress gave up at
request_timeout_s), the request leaves its batch if that has not started; if its pipeline call
is running and every request of that call is cancelled, the call stops at the next torch
operation (cancel.py) and the replica takes the next batch. A call that still has a request
someone waits for runs on; the cancelled rows' images are thrown away.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import socket
import threading
import time
from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional

from ray import serve

from .cancel import Cancelled, CancelPoints, Job
from .config import SCHEDULERS, ModelConfig, parse_model_config

logger = logging.getLogger("ray.serve")


def _resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA device")
    return requested


def _resolve_dtype(name: str, device: str):
    import torch

    if device == "cpu" and name == "float16":
        logger.warning("dtype float16 is not usable on the CPU: using float32")
        name = "float32"
    return name, getattr(torch, name)


@serve.deployment(user_config={}, max_ongoing_requests=8)
class StableDiffusionModel:
    def __init__(self) -> None:
        self._cfg: Optional[ModelConfig] = None
        self._pipe = None
        self._base_scheduler = None
        self._device: Optional[str] = None
        self._dtype: Optional[str] = None
        self._load_error: Optional[str] = None
        self._loading = False
        self._loaded_at: Optional[float] = None
        # Held by the worker thread while it runs the pipeline and while it is replaced.
        self._pipe_lock = threading.Lock()
        self._batch_sizes: Counter = Counter()  # batches by their number of requests
        self._direct = 0  # requests that found the replica idle: their batch did not wait
        self._in_flight = 0  # requests inside generate(); 0 means the replica is idle
        self._sub_batch_sizes: Counter = Counter()
        self._images = 0
        self._cancelled = 0  # requests Serve cancelled (client gone, ingress timeout)
        self._interrupted = 0  # pipeline calls stopped because all their requests were
        self._step_callback = False  # the pipeline takes callback_on_step_end
        self._torch_threads: Optional[int] = None  # of the thread that ran the last call
        self._running: Optional[Dict[str, Any]] = None  # the pipeline call under way

    # ------------------------------------------------------------------ configuration

    async def reconfigure(self, user_config: Dict[str, Any]) -> None:
        cfg = parse_model_config(user_config)  # ValueError: the deployment fails loudly
        old = self._cfg
        self._cfg = cfg
        self._generate_batch.set_max_batch_size(cfg.max_batch_size)
        self._generate_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        if old is None or old.load_key() != cfg.load_key() or self._pipe is None:
            self._loading = True
            try:
                await asyncio.to_thread(self._load, cfg)
            finally:
                self._loading = False
        elif old.scheduler != cfg.scheduler:
            await asyncio.to_thread(self._swap_scheduler, cfg.scheduler)

    def _load(self, cfg: ModelConfig) -> None:
        with self._pipe_lock:
            self._pipe, self._base_scheduler, self._load_error = None, None, None
            try:
                import torch
                from diffusers import AutoPipelineForText2Image, DiffusionPipeline

                device = _resolve_device(cfg.device)
                dtype_name, dtype = _resolve_dtype(cfg.dtype, device)
                kwargs: Dict[str, Any] = {"torch_dtype": dtype,
                                          "local_files_only": cfg.local_files_only}
                for key in ("revision", "variant", "cache_dir"):
                    if getattr(cfg, key) is not None:
                        kwargs[key] = getattr(cfg, key)
                started = time.monotonic()
                try:
                    pipe = AutoPipelineForText2Image.from_pretrained(cfg.model_id, **kwargs)
                except ValueError as e:  # a pipeline class the auto mapping does not know
                    if "AutoPipeline" not in str(e):
                        raise
                    pipe = DiffusionPipeline.from_pretrained(cfg.model_id, **kwargs)
                pipe = pipe.to(device)
                pipe.set_progress_bar_config(disable=True)
                self._step_callback = ("callback_on_step_end"
                                       in inspect.signature(pipe.__call__).parameters)
                if device == "cuda":
                    torch.backends.cuda.matmul.allow_tf32 = True
                self._pipe, self._base_scheduler = pipe, pipe.scheduler
                self._device, self._dtype = device, dtype_name
                self._set_scheduler_locked(cfg.scheduler)
                self._loaded_at = time.time()
                logger.info("loaded %s (%s) on %s as %s in %.1fs", cfg.model_id,
                            type(pipe).__name__, device, dtype_name, time.monotonic() - started)
            except Exception as e:  # kept for check_health and for callers
                self._pipe = None
                self._load_error = f"{type(e).__name__}: {e}"
                logger.exception("failed to load pipeline %r", cfg.model_id)

    def _swap_scheduler(self, name: str) -> None:
        with self._pipe_lock:
            if self._pipe is not None:
                self._set_scheduler_locked(name)

    def _set_scheduler_locked(self, name: str) -> None:
        import diffusers

        cls_name = SCHEDULERS[name]
        if cls_name is None:
            self._pipe.scheduler = self._base_scheduler
        else:
            cls = getattr(diffusers, cls_name)
            self._pipe.scheduler = cls.from_config(self._base_scheduler.config)

    def check_health(self) -> None:
        if self._load_error is not None:
            raise RuntimeError(f"pipeline failed to load: {self._load_error}")
        if self._pipe is None and not self._loading:
            raise RuntimeError("pipeline is not loaded")

    # ------------------------------------------------------------------ requests

    async def generate(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """One image. request: GenerationRequest.to_dict(). Answers a dict:
        {"ok": True, "png": bytes, "seed": int} or {"ok": False, "status": int, "error": str}.
        """
        if self._pipe is None:
            reason = self._load_error or "pipeline is loading"
            return {"ok": False, "status": 503, "error": f"model not ready: {reason}"}
        job = Job(request)
        idle = self._in_flight == 0
        self._in_flight += 1
        try:
            # Nobody to batch with: this request's batch starts at once. Serve reads the wait when
            # a batch's first request comes off its queue, after this; a request that arrives
            # meanwhile (not idle) sets the configured wait back, and they are batched together.
            self._generate_batch.set_batch_wait_timeout_s(
                0.0 if idle else self._cfg.batch_wait_timeout_s)
            self._direct += idle
            return await self._generate_batch(job)
        except asyncio.CancelledError:  # Serve cancelled the request: stop its work
            job.cancelled = True
            self._cancelled += 1
            raise
        finally:
            self._in_flight -= 1

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.1)
    async def _generate_batch(self, jobs: List[Job]) -> List[Dict[str, Any]]:
        self._batch_sizes[len(jobs)] += 1
        groups: Dict[tuple, List[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            r = job.request
            groups[(r["height"], r["width"], r["steps"], r["guidance"])].append(i)
        gone = {"ok": False, "status": 499, "error": "request cancelled"}
        results: List[Dict[str, Any]] = [gone] * len(jobs)
        for idxs in groups.values():
            idxs = [i for i in idxs if not jobs[i].cancelled]  # left while earlier groups ran
            if not idxs:
                continue
            items = [jobs[i] for i in idxs]
            self._sub_batch_sizes[len(items)] += 1
            try:
                pngs = await asyncio.to_thread(self._run, items)
                for i, png in zip(idxs, pngs):
                    results[i] = {"ok": True, "png": png, "seed": jobs[i].request["seed"]}
            except Cancelled:
                self._interrupted += 1
                logger.info("stopped a pipeline call of %d cancelled request(s)", len(items))
            except Exception as e:
                logger.exception("generation failed for a sub-batch of %d", len(items))
                for i in idxs:
                    results[i] = {"ok": False, "status": 500,
                                  "error": f"generation failed: {type(e).__name__}: {e}"}
        return results

    def _run(self, jobs: List[Job]) -> List[bytes]:
        """Runs one pipeline call for jobs that share size, steps and guidance (worker thread).
        Raises Cancelled when every job is cancelled before it ends."""
        import torch

        first = jobs[0].request
        negatives = [j.request.get("negative_prompt") for j in jobs]
        points = CancelPoints(jobs)
        with self._pipe_lock:
            if self._pipe is None:
                raise RuntimeError(self._load_error or "pipeline is not loaded")
            threads = self._cfg.torch_threads if self._cfg else None
            # Per thread: torch's CPU thread count is thread-local once a thread has run an op.
            if threads and torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            self._torch_threads = torch.get_num_threads()
            # CPU generators: the same seed gives the same start noise on any device.
            generators = [torch.Generator("cpu").manual_seed(int(j.request["seed"]))
                          for j in jobs]
            kwargs: Dict[str, Any] = {}
            if self._step_callback:
                kwargs["callback_on_step_end"] = self._step_done(points)
            self._running = {"requests": len(jobs), "step": 0, "steps": first["steps"],
                             "img_size": first["width"], "started": time.time()}
            try:
                with torch.inference_mode(), points:
                    out = self._pipe(
                        prompt=[j.request["prompt"] for j in jobs],
                        negative_prompt=(None if not any(negatives)
                                         else [n or "" for n in negatives]),
                        height=first["height"],
                        width=first["width"],
                        num_inference_steps=first["steps"],
                        guidance_scale=first["guidance"],
                        generator=generators,
                        output_type="pil",
                        **kwargs,
                    )
            finally:
                self._running = None
        pngs = []
        for image in out.images:
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            pngs.append(buf.getvalue())
        self._images += len(pngs)
        return pngs

    def _step_done(self, points: CancelPoints):
        """callback_on_step_end: progress for /info, and the between-steps cancel check."""
        def done(_pipe, i: int, _t, tensors: Dict[str, Any]) -> Dict[str, Any]:
            running = self._running
            if running is not None:
                running["step"] = i + 1
            points.check()
            return tensors

        return done

    def _threads(self) -> Optional[int]:
        """Torch CPU threads the pipeline runs with: those of the last call, else what the next
        one gets (torch_threads, else this process's setting)."""
        import sys

        if self._torch_threads is not None:
            return self._torch_threads
        if self._cfg is not None and self._cfg.torch_threads:
            return self._cfg.torch_threads
        torch = sys.modules.get("torch")
        return torch.get_num_threads() if torch is not None else None

    def info(self) -> Dict[str, Any]:
        return {
            # The pod (or machine) of this replica: which one served, and where to look.
            "host": socket.gethostname(),
            "loaded": self._pipe is not None,
            "loading": self._loading,
            "load_error": self._load_error,
            "pipeline": type(self._pipe).__name__ if self._pipe is not None else None,
            "scheduler": type(self._pipe.scheduler).__name__ if self._pipe is not None else None,
            "device": self._device,
            "torch_threads": self._threads(),
            "dtype": self._dtype,
            "loaded_at": self._loaded_at,
            "config": self._cfg.as_dict() if self._cfg else None,
            "images": self._images,
            "cancelled": self._cancelled,
            "interrupted": self._interrupted,
            "running": dict(self._running) if self._running else None,
            "direct": self._direct,
            "batch_size_counts": {str(k): v for k, v in sorted(self._batch_sizes.items())},
            "sub_batch_size_counts": {str(k): v for k, v in
                                      sorted(self._sub_batch_sizes.items())},
        }
