"""The Serve config the chart renders: serveConfigV2 of the Stable Diffusion RayService (and of
every RayService, your own under rayServices.<name> included)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from harness.render import Renderer, RenderRequest, load_yaml, of_kind


SD_COMPONENT = "stable-diffusion"  # app.kubernetes.io/component of the Stable Diffusion RayService


def serve_configs_of(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """RayService name -> its parsed serveConfigV2, for every rendered RayService."""
    return {obj["metadata"]["name"]: load_yaml(obj["spec"]["serveConfigV2"])
            for obj in of_kind(objects, "RayService")}


def serve_config_of(objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The parsed serveConfigV2 of the rendered Stable Diffusion RayService, or None when there is
    none (RayServices of your own, rayServices.<name>, are not it)."""
    services = [obj for obj in of_kind(objects, "RayService")
                if (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == SD_COMPONENT]
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
