"""RBAC for a node component that reads the API as a user of its own (a client certificate from
pki.py): a ClusterRole with its rules, bound to that user."""
from __future__ import annotations

from typing import Any


def user_cluster_role(name: str, user: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """[ClusterRole, ClusterRoleBinding], both called name, granting rules to user."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "rules": rules}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": name},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": user}]}
    return [role, binding]
