"""ray-platform's Stable Diffusion Ray Serve application.

Flat package shipped as a ConfigMap and mounted at /opt/ray-platform/apps/ray_platform_sd/
(PYTHONPATH=/opt/ray-platform/apps).  Entry point: ``ray_platform_sd.app:entrypoint``.

Modules: config (user_config schemas, every key documented there), params (request
validation), model (StableDiffusionModel), ingress (APIIngress), app (entrypoint).
Importing the package itself loads neither Ray nor torch.
"""

__version__ = "0.1.0"
