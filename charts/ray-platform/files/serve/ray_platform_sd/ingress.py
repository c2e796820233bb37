"""APIIngress: the HTTP API of the Stable Diffusion service (FastAPI behind Serve).

Routes (relative to the application's route_prefix):
  GET  /imagine?prompt=...&img_size=512&steps=..&guidance=..&seed=..&negative_prompt=..
  POST /imagine   with the same parameters as a JSON object (at most max_body_bytes)
       -> 200 image/png (headers X-Seed: the seed used, X-Image-Size)
       -> 400 {"error": "invalid_parameter", "parameter": ..., "message": ...}
       -> 413 {"error": "body_too_large", "limit_bytes": ..., "message": ...}
       -> 503 + Retry-After: the model's queue is full (its max_queued_requests); the HTTP
          proxy answers the same when the ingress's own queue is full
       -> 503 model not ready, 504 no image within request_timeout_s, 500 model error
  GET  /healthz   -> 200 {"status": "ok"} when the model deployment has its pipeline
  GET  /info      -> ingress settings and the model replica's state and batch statistics
Settings: the user_config keys in config.py (IngressConfig).

A request whose client goes away (or that runs past request_timeout_s) is cancelled: Serve
cancels the model call it made, and the model replica stops computing it (model.py).
"""

import asyncio
import logging
import math
from typing import Any, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from .config import IngressConfig, parse_ingress_config
from .params import BodyTooLarge, GenerationRequest, RequestError, parse_body, parse_query

logger = logging.getLogger("ray.serve")

api = FastAPI(title="ray-platform Stable Diffusion", docs_url=None, redoc_url=None)

# Retry-After when the model's queue is full and its backpressure_config names no delay.
DEFAULT_RETRY_AFTER_S = 1


@api.exception_handler(RequestError)
async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content=exc.to_json())


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "message": message})


def _busy(retry_after_s: Optional[float]) -> JSONResponse:
    seconds = DEFAULT_RETRY_AFTER_S if retry_after_s is None else max(1, math.ceil(retry_after_s))
    return JSONResponse(
        status_code=503,
        headers={"Retry-After": str(seconds)},
        content={"error": "overloaded",
                 "message": f"every model replica and its queue is full; retry in {seconds} s"},
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to be longer than limit bytes."""
    length = request.headers.get("content-length", "").strip()
    if length.isdigit() and len(length) <= 20 and int(length) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


@serve.deployment(user_config={}, max_ongoing_requests=64)
@serve.ingress(api)
class APIIngress:
    def __init__(self, model: DeploymentHandle) -> None:
        self._model = model
        self._cfg = IngressConfig()

    def reconfigure(self, user_config: Dict[str, Any]) -> None:
        self._cfg = parse_ingress_config(user_config)

    async def _imagine(self, req: GenerationRequest) -> Response:
        response = self._model.generate.remote(req.to_dict())
        try:
            result = await asyncio.wait_for(response, timeout=self._cfg.request_timeout_s)
        except asyncio.TimeoutError:
            response.cancel()
            return _error(504, "timeout", f"no image within {self._cfg.request_timeout_s}s")
        except asyncio.CancelledError:  # the client went away: the model stops this one
            response.cancel()
            raise
        except BackPressureError as e:
            return _busy(e.retry_after_s)
        except Exception as e:  # replica died, deployment unavailable, ...
            logger.warning("model call failed: %s", e)
            return _error(503, "model_unavailable", f"{type(e).__name__}: {e}"[:1000])
        if not result.get("ok"):
            return _error(result.get("status", 500), "generation_failed", result.get("error", ""))
        return Response(
            content=result["png"],
            media_type="image/png",
            headers={"X-Seed": str(result["seed"]), "X-Image-Size": str(req.width),
                     "Cache-Control": "no-store"},
        )

    @api.get("/imagine", response_class=Response)
    async def imagine_get(self, request: Request) -> Response:
        return await self._imagine(parse_query(request.scope.get("query_string", b""), self._cfg))

    @api.post("/imagine", response_class=Response)
    async def imagine_post(self, request: Request) -> Response:
        body = await _read_body(request, self._cfg.max_body_bytes)
        return await self._imagine(parse_body(body, self._cfg))

    @api.get("/healthz")
    async def healthz(self) -> JSONResponse:
        try:
            info = await asyncio.wait_for(self._model.info.remote(), timeout=10)
        except Exception as e:
            return _error(503, "model_unavailable", f"{type(e).__name__}: {e}"[:1000])
        if not info.get("loaded"):
            return _error(503, "model_not_ready", info.get("load_error") or "loading")
        return JSONResponse({"status": "ok"})

    @api.get("/info")
    async def info(self) -> JSONResponse:
        try:
            model = await asyncio.wait_for(self._model.info.remote(), timeout=10)
        except Exception as e:
            model = {"error": f"{type(e).__name__}: {e}"[:1000]}
        return JSONResponse({"ingress": self._cfg.as_dict(), "model": model})
