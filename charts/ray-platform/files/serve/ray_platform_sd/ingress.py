"""APIIngress: the HTTP API of the Stable Diffusion service (FastAPI behind Serve).

Routes (relative to the application's route_prefix):
  GET  /imagine?prompt=...&img_size=512&steps=..&guidance=..&seed=..&negative_prompt=..
  POST /imagine   with the same parameters as a JSON object
       -> 200 image/png (headers X-Seed: the seed used, X-Image-Size)
       -> 400 {"error": "invalid_parameter", "parameter": ..., "message": ...}
       -> 503 model not ready, 504 no image within request_timeout_s, 500 model error
  GET  /healthz   -> 200 {"status": "ok"} when the model deployment has its pipeline
  GET  /info      -> ingress settings and the model replica's state and batch statistics
Settings: the user_config keys in config.py (IngressConfig).
"""

import asyncio
import json
import logging
from typing import Any, Dict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle

from .config import IngressConfig, parse_ingress_config
from .params import ParamError, parse_request

logger = logging.getLogger("ray.serve")

api = FastAPI(title="ray-platform Stable Diffusion", docs_url=None, redoc_url=None)


@api.exception_handler(ParamError)
async def _param_error(_: Request, exc: ParamError) -> JSONResponse:
    return JSONResponse(status_code=400, content=exc.to_json())


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "message": message})


@serve.deployment(user_config={}, max_ongoing_requests=32)
@serve.ingress(api)
class APIIngress:
    def __init__(self, model: DeploymentHandle) -> None:
        self._model = model
        self._cfg = IngressConfig()

    def reconfigure(self, user_config: Dict[str, Any]) -> None:
        self._cfg = parse_ingress_config(user_config)

    async def _imagine(self, raw: Dict[str, Any]) -> Response:
        req = parse_request(raw, self._cfg)
        response = self._model.generate.remote(req.to_dict())
        try:
            result = await asyncio.wait_for(response, timeout=self._cfg.request_timeout_s)
        except asyncio.TimeoutError:
            response.cancel()
            return _error(504, "timeout", f"no image within {self._cfg.request_timeout_s}s")
        except Exception as e:  # replica died, backpressure, ...
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
        raw: Dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in raw:
                raise ParamError(key, "given more than once")
            raw[key] = value
        return await self._imagine(raw)

    @api.post("/imagine", response_class=Response)
    async def imagine_post(self, request: Request) -> Response:
        try:
            raw = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise ParamError("body", f"is not valid JSON ({e})") from None
        if not isinstance(raw, dict):
            raise ParamError("body", "must be a JSON object")
        return await self._imagine(raw)

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
