"""What `make up` (cluster/node/platform.py), `make bench-serve` and the live tests share about
the Stable Diffusion RayService: waiting until the operator reports it Ready, fetching a PNG from
/imagine, its route prefix."""
from __future__ import annotations

import io
import time
import urllib.parse
import urllib.request
from typing import Callable

from harness.readiness import (FAILED, READY, KubeFetcher, Target, TargetFailed, TimedOut,
                               rayservice_verdict)

IMAGE_SIZE = 64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def wait_rayservice_ready(fetcher: KubeFetcher, name: str, namespace: str, timeout: float,
                          say: Callable[[str], None], interval: float = 2,
                          fail_after: float = 30) -> str:
    """Until the operator reports the RayService Ready with its applications RUNNING."""
    deadline = time.monotonic() + timeout
    last = ""
    failing_since: float | None = None
    while True:
        verdict = rayservice_verdict(fetcher(Target("RayService", name, namespace)) or {})
        if verdict.state == READY:
            return verdict.detail
        # A failed application can recover while Serve retries; one that stays failed is final.
        failing_since = (failing_since or time.monotonic()) if verdict.state == FAILED else None
        if failing_since and time.monotonic() - failing_since > fail_after:
            raise TargetFailed(f"RayService/{name}: {verdict.detail}", {})
        if verdict.detail != last:
            say(f"  RayService/{name}: {verdict.state}: {verdict.detail}")
            last = verdict.detail
        if time.monotonic() > deadline:
            raise TimedOut(f"RayService/{name} not Ready after {timeout:.0f} s: {verdict.detail}", {})
        time.sleep(interval)


def imagine(serve_url: str, prefix: str = "", size: int = IMAGE_SIZE, steps: int = 2,
            timeout: float = 120) -> bytes:
    """GET /imagine through the real Serve proxy; the PNG, checked to be size x size."""
    query = urllib.parse.urlencode({"prompt": "a red fox in the snow", "img_size": size,
                                    "steps": steps})
    with urllib.request.urlopen(f"{serve_url}{prefix.rstrip('/')}/imagine?{query}",
                                timeout=timeout) as answer:
        body = answer.read()
        content_type = answer.headers.get("Content-Type", "")
    if not body.startswith(PNG_MAGIC) or "image/png" not in content_type:
        raise RuntimeError(f"/imagine answered {content_type!r}, not a PNG: {body[:200]!r}")
    from PIL import Image  # in the Serve requirements, like the app

    width, height = Image.open(io.BytesIO(body)).size
    if (width, height) != (size, size):
        raise RuntimeError(f"/imagine answered a {width}x{height} PNG, {size}x{size} was asked")
    return body


def serve_route_prefix(rayservice: dict) -> str:
    import yaml

    config = yaml.safe_load(rayservice["spec"].get("serveConfigV2") or "") or {}
    apps = config.get("applications") or [{}]
    return apps[0].get("route_prefix") or "/"

