"""Serve entry point of the ray-platform Stable Diffusion service.

Serve config: ``import_path: ray_platform_sd.app:entrypoint`` (a bound Application:
APIIngress -> StableDiffusionModel).  Deployment options (replicas, autoscaling,
resources) and each deployment's user_config come from the Serve config; see config.py
and CONFIG.md for the user_config keys.
"""

from .ingress import APIIngress
from .model import StableDiffusionModel

entrypoint = APIIngress.bind(StableDiffusionModel.bind())
