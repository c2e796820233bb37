"""The release the chaos scenarios run against: one of the chart's own RayServices
(`rayServices.chaos`) serving scripts/chaos/app/chaos_app.py from a ConfigMap on PYTHONPATH,
with the `ray` image only, its token from a Secret of the test's own (`auth.existingSecret`, so a
replacement cluster uses the same one), a head that also runs a replica and one worker, over
values/dev.yaml with its RayCluster and Stable Diffusion off. Values, not files: the scenarios
layer their changes over these with OwnRelease.upgrade."""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from chaos import redis

APP = Path(__file__).with_name("app") / "chaos_app.py"
SERVICE_KEY = "chaos"
ROUTE = "/answer"
APP_CONFIGMAP = "chaos-app"
TOKEN_SECRET = "chaos-ray-token"
APP_DIR = "/opt/chaos-app"
# Two replicas, one per Ray node (the head has a CPU for one): a worker's loss leaves one.
REPLICAS = 2
DELETION_DELAY_SECONDS = 5


def service_name(release: str) -> str:
    return f"{release}-ray-platform-{SERVICE_KEY}"


def application(version: str = "v1", import_path: str = "chaos_app:app") -> dict[str, Any]:
    return {"name": "answer", "route_prefix": ROUTE, "import_path": import_path,
            "deployments": [{"name": "Answer", "num_replicas": REPLICAS,
                             "max_ongoing_requests": 32, "user_config": {"version": version},
                             "ray_actor_options": {"num_cpus": 0.5}}]}


def pod_settings(cpu_limit: str, memory: str) -> dict[str, Any]:
    """What each Ray pod needs for the app: its ConfigMap mounted and on PYTHONPATH. Small CPU
    requests for the 2-core node; the limits are the CPUs Ray announces."""
    return {"env": [{"name": "PYTHONPATH", "value": APP_DIR}],
            "volumes": [{"name": "chaos-app", "configMap": {"name": APP_CONFIGMAP}}],
            "volumeMounts": [{"name": "chaos-app", "mountPath": APP_DIR, "readOnly": True}],
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"},
                          "limits": {"cpu": cpu_limit, "memory": memory}}}


def values(version: str = "v1", worker_memory: str = "1536Mi",
           fault_tolerant: redis.Outside | None = None) -> dict[str, Any]:
    """fault_tolerant: GCS fault tolerance on, with the test's Redis (chaos/redis.py) and the
    NetworkPolicies' way to it; egress is then locked down to what the policies name, so the
    Kubernetes API's and the DNS server's addresses come with it."""
    head = {**pod_settings("1", "2Gi"), "rayStartParams": {"num-cpus": "1"}}
    worker = {**pod_settings("1", worker_memory), "replicas": 1, "minReplicas": 1,
              "maxReplicas": 1}
    cluster: dict[str, Any] = {"head": head, "workerGroups": {"cpu": worker}}
    if fault_tolerant:
        cluster["gcsFaultTolerance"] = redis.fault_tolerance()
    chart: dict[str, Any] = {
        "rayCluster": {"enabled": False},
        "stableDiffusion": {"enabled": False},
        "auth": {"existingSecret": TOKEN_SECRET},
        "rayServices": {SERVICE_KEY: {
            "applications": [application(version)],
            "cluster": cluster,
            "upgradeStrategy": {"type": "NewCluster"},
            # 5 s instead of the operator's 60 after traffic switched: the old cluster's Serve
            # proxies must drain their keep-alive connections in that time without a failed
            # request (the cluster-spec scenarios assert it), and the suite waits less.
            "rayClusterDeletionDelaySeconds": DELETION_DELAY_SECONDS,
        }},
    }
    if fault_tolerant:
        chart["networkPolicy"] = redis.network_policy(fault_tolerant)
    return chart


def objects(namespace: str) -> list[dict[str, Any]]:
    """The app's ConfigMap and the token Secret, created before helm install."""
    token = secrets.token_urlsafe(32)
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": APP_CONFIGMAP, "namespace": namespace},
         "data": {"chaos_app.py": APP.read_text()}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": TOKEN_SECRET, "namespace": namespace},
         "type": "Opaque", "stringData": {"auth_token": token}},
    ]
