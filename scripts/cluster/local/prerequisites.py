"""What a release expects to exist before it is installed, found in its rendered manifests: the
Secrets, PersistentVolumeClaims and ServiceAccounts its pods and Ray clusters name but the chart
does not create, and the namespaces it writes objects into besides its own.

These are the objects an overlay's comments tell the user to create first (a token Secret for
`auth.existingSecret`, the model PVC for `existingClaim`, an existing ServiceAccount, Grafana's
namespace for the dashboards). The local-cluster tests and `make up` create them so that such an
overlay is proven to the end instead of stopping at "Secret not found". Secret values are random
per call: nothing here is a credential.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

# The key the KubeRay operator reads from an authOptions.secretName Secret.
AUTH_TOKEN_KEY = "auth_token"
CLAIM_SIZE = "1Gi"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "StorageClass", "PersistentVolume", "PriorityClass", "IngressClass"}


@dataclass
class Prerequisites:
    """Names the manifests reference, per kind, with the Secret keys they read."""

    secrets: dict[str, set[str]] = field(default_factory=dict)
    claims: set[str] = field(default_factory=set)
    service_accounts: set[str] = field(default_factory=set)
    namespaces: set[str] = field(default_factory=set)

    def objects(self, namespace: str) -> list[dict[str, Any]]:
        """The objects to create, namespaces first, with random Secret values."""
        made: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            for name in sorted(self.namespaces)]
        made += [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": name, "namespace": namespace},
                  "stringData": {key: secrets.token_hex(16) for key in sorted(keys or {"value"})}}
                 for name, keys in sorted(self.secrets.items())]
        made += [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": name, "namespace": namespace},
                  "spec": {"accessModes": ["ReadOnlyMany"],
                           "resources": {"requests": {"storage": CLAIM_SIZE}}}}
                 for name in sorted(self.claims)]
        made += [{"apiVersion": "v1", "kind": "ServiceAccount",
                  "metadata": {"name": name, "namespace": namespace}}
                 for name in sorted(self.service_accounts)]
        return made

    def __bool__(self) -> bool:
        return bool(self.secrets or self.claims or self.service_accounts or self.namespaces)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _pod_specs(node: Any) -> Iterator[dict[str, Any]]:
    """Every pod spec in an object (pod templates of any depth: Ray groups, Jobs, tests)."""
    for found in _walk(node):
        if isinstance(found.get("containers"), list):
            yield found


def _is_test_hook(obj: dict[str, Any]) -> bool:
    hooks = ((obj["metadata"].get("annotations") or {}).get("helm.sh/hook") or "").split(",")
    return "test" in hooks


def find(objects: Iterable[dict[str, Any]], namespace: str) -> Prerequisites:
    """What `objects` (one release's rendering) reference and do not create. `helm test` Pods
    are left out: they run after install, when the operator has created what they read (the
    token Secret it generates)."""
    objects = list(objects)
    created = {(obj.get("kind"), obj["metadata"]["name"]) for obj in objects}
    needed = Prerequisites()
    for obj in objects:
        if _is_test_hook(obj):
            continue
        if obj.get("kind") not in CLUSTER_SCOPED:
            target = obj["metadata"].get("namespace") or namespace
            if target != namespace:
                needed.namespaces.add(target)
        auth_secret = ((obj.get("spec") or {}).get("authOptions") or {}).get("secretName")
        if auth_secret:
            needed.secrets.setdefault(auth_secret, set()).add(AUTH_TOKEN_KEY)
        for node in _walk(obj):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict) and ref.get("name") and not ref.get("optional"):
                needed.secrets.setdefault(ref["name"], set()).add(ref["key"])
        for pod in _pod_specs(obj):
            account = pod.get("serviceAccountName")
            if account and account != "default":
                needed.service_accounts.add(account)
            for volume in pod.get("volumes") or []:
                if "secret" in volume and not volume["secret"].get("optional"):
                    keys = {item["key"] for item in volume["secret"].get("items") or []}
                    needed.secrets.setdefault(volume["secret"]["secretName"], set()).update(keys)
                if "persistentVolumeClaim" in volume:
                    needed.claims.add(volume["persistentVolumeClaim"]["claimName"])
    needed.secrets = {name: keys for name, keys in needed.secrets.items()
                      if ("Secret", name) not in created}
    needed.claims = {name for name in needed.claims if ("PersistentVolumeClaim", name) not in created}
    needed.service_accounts = {name for name in needed.service_accounts
                               if ("ServiceAccount", name) not in created}
    return needed
