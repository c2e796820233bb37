"""The Redis that GCS fault tolerance keeps the chaos cluster's GCS state in: a Deployment of the
`redis` image built here (scripts/images/redis.py: Debian's redis-server), its Service and its
password Secret, created by the test in the release's namespace, and the values that point the
chart at it (`rayServices.chaos.cluster.gcsFaultTolerance` with `existingSecret`, the head's
egress to it through `networkPolicy.redis`).

The password exists only in the Secret: the container gets it as an environment variable, and
Kubernetes substitutes `$(REDIS_PASSWORD)` into redis-server's arguments when it starts the
container, so no manifest (the Deployment, the rendered chart) carries it."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

NAME = "chaos-redis"
PASSWORD_SECRET = "chaos-redis-password"
PASSWORD_KEY = "password"
PORT = 6379
LABELS = {"app.kubernetes.io/name": NAME}
SELECTOR = ",".join(f"{key}={value}" for key, value in LABELS.items())
DATA = "/data"


def address() -> str:
    """host:port as the head resolves it: the Service's name in the head's own namespace."""
    return f"{NAME}:{PORT}"


def fault_tolerance() -> dict[str, Any]:
    """rayServices.<key>.cluster.gcsFaultTolerance for this Redis."""
    return {"enabled": True, "redisAddress": address(), "existingSecret": PASSWORD_SECRET,
            "existingSecretPasswordKey": PASSWORD_KEY}


@dataclass(frozen=True)
class Outside:
    """What Ray pods reach outside the pod network with egress locked down: the Kubernetes API
    (address and port of the `kubernetes` Service's endpoint: policies see the address after the
    Service's translation), for the head's autoscaler, and the DNS server of the pods'
    resolv.conf, to resolve Redis' and the head's Service names."""
    api: str
    api_port: int
    dns: str


def network_policy(outside: Outside) -> dict[str, Any]:
    """networkPolicy values that make the head's way to Redis the chart's Redis rule: Redis'
    pods as the peer, and no blanket egress (allowAll) that would let the head through anyway
    (the chaos app downloads nothing); the API and DNS by address (the real node's are host
    processes, not the pods the chart's defaults name)."""
    return {"redis": {"podLabels": dict(LABELS)}, "egress": {"allowAll": False},
            "kubernetesApi": {"cidrs": [f"{outside.api}/32"], "ports": [outside.api_port]},
            "dns": {"cidrs": [f"{outside.dns}/32"]}}


def container(image: str) -> dict[str, Any]:
    return {
        "name": "redis",
        "image": image,
        "imagePullPolicy": "Never",  # built here, never pulled
        # No config file: the defaults plus these. The data directory is the emptyDir (the root
        # filesystem is read-only); snapshots stay on, harmless there.
        "args": ["--port", str(PORT), "--dir", DATA, "--requirepass", "$(REDIS_PASSWORD)"],
        "env": [{"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": PASSWORD_SECRET, "key": PASSWORD_KEY}}}],
        "ports": [{"name": "redis", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": DATA}],
    }


def objects(namespace: str, image: str, password: str | None = None) -> list[dict[str, Any]]:
    """The password Secret (a fresh random password unless given), the Deployment (one replica,
    the image's non-root user, restricted Pod Security) and the Service."""
    password = password or secrets.token_urlsafe(24)
    meta = {"namespace": namespace, "labels": dict(LABELS)}
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": PASSWORD_SECRET, **meta},
         "stringData": {PASSWORD_KEY: password}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, **meta},
         "spec": {"replicas": 1, "selector": {"matchLabels": dict(LABELS)},
                  "template": {"metadata": {"labels": dict(LABELS)}, "spec": {
                      "automountServiceAccountToken": False,
                      "enableServiceLinks": False,
                      "securityContext": {"runAsNonRoot": True,
                                          "seccompProfile": {"type": "RuntimeDefault"}},
                      "containers": [container(image)],
                      "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "256Mi"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, **meta},
         "spec": {"selector": dict(LABELS),
                  "ports": [{"name": "redis", "port": PORT, "targetPort": "redis",
                             "protocol": "TCP"}]}},
    ]
