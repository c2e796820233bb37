"""The Serve config the chart renders: serveConfigV2 of the Stable Diffusion RayService."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from harness.render import Renderer, RenderRequest, load_yaml, of_kind


def serve_config_of(objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The parsed serveConfigV2 of the rendered RayService, or None when there is none."""
    services = of_kind(objects, "RayService")
    return load_yaml(services[0]["spec"]["serveConfigV2"]) if services else None


def render_serve_config(values_files: Iterable[Path] = ()) -> dict[str, Any]:
    """Render the chart (helm 4, offline) with values files and return its Serve config."""
    renderer = Renderer()
    try:
        config = serve_config_of(renderer.render(RenderRequest(tuple(values_files), 4)))
    finally:
        renderer.close()
    if config is None:
        raise ValueError("the chart rendered no RayService with these values (stableDiffusion.enabled?)")
    return config
