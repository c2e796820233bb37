"""A small evaluator of Kubernetes NetworkPolicy semantics (networking.k8s.io/v1), to compute from
rendered manifests who can reach whom.

What it models, as the API documents it:
- a policy applies to the pods its podSelector selects in its own namespace (LabelSelector:
  matchLabels and matchExpressions In / NotIn / Exists / DoesNotExist; `{}` selects all);
- policyTypes (default: Ingress, plus Egress when the policy has an egress section); a pod
  selected by at least one policy of a type is isolated for that direction, and then only
  traffic some rule of those policies allows gets through (rules of all policies add up);
- a rule without `from`/`to` (or with an empty list) matches every peer; without `ports` every
  port; a peer is a podSelector (policy's namespace), a namespaceSelector (every pod there), both
  (AND, in one peer), or an ipBlock (cidr minus except, matched against an endpoint's IP);
- ports by number, range (endPort) or name, a name resolved against the destination pod's
  container ports (name and protocol); protocol defaults to TCP;
- a connection from pod A to pod B needs both A's egress and B's ingress to allow it.
Not modelled: hostNetwork pods, Services (policies see pod IPs after DNAT anyway), and the
CNI-specific treatment of node and pod IPs in ipBlocks.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

Selector = Mapping[str, Any]


@dataclass(frozen=True)
class Port:
    number: int
    name: str | None = None
    protocol: str = "TCP"


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace set) or an address outside the pod network (namespace None, ip set)."""

    name: str
    namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    namespace_labels: Mapping[str, str] | None = None  # default: kubernetes.io/metadata.name
    ip: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None

    def ns_labels(self) -> Mapping[str, str]:
        if self.namespace_labels is not None:
            return self.namespace_labels
        return {"kubernetes.io/metadata.name": self.namespace} if self.namespace else {}

    def resolve(self, name: str, protocol: str) -> set[int]:
        return {port.number for port in self.ports if port.name == name and port.protocol == protocol}


def selector_matches(selector: Selector | None, labels: Mapping[str, str]) -> bool:
    """LabelSelector semantics; an empty selector matches everything."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In":
            if key not in labels or labels[key] not in values:
                return False
        elif operator == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif operator == "Exists":
            if key not in labels:
                return False
        elif operator == "DoesNotExist":
            if key in labels:
                return False
        else:
            raise ValueError(f"unknown LabelSelector operator {operator!r}")
    return True


def policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def selects(policy: Mapping[str, Any], pod: Endpoint) -> bool:
    """The policy applies to the pod (same namespace, podSelector matches)."""
    if not pod.is_pod or (policy.get("metadata") or {}).get("namespace") != pod.namespace:
        return False
    return selector_matches((policy.get("spec") or {}).get("podSelector") or {}, pod.labels)


def peer_matches(peer: Mapping[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        if endpoint.ip is None:
            return False
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(address in ipaddress.ip_network(cidr, strict=False) for cidr in block.get("except") or [])
    if not endpoint.is_pod:
        return False
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        if endpoint.namespace != policy_namespace:
            return False
    elif not selector_matches(namespace_selector, endpoint.ns_labels()):
        return False
    return selector_matches(peer.get("podSelector"), endpoint.labels)


def port_matches(ports: Iterable[Mapping[str, Any]] | None, destination: Endpoint, number: int, protocol: str) -> bool:
    ports = list(ports or [])
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry or entry["port"] is None:
            return True
        value = entry["port"]
        if isinstance(value, str) and not value.isdigit():
            if number in destination.resolve(value, protocol):
                return True
            continue
        low = int(value)
        high = int(entry.get("endPort", low))
        if low <= number <= high:
            return True
    return False


def _direction_allows(policies: list[Mapping[str, Any]], subject: Endpoint, other: Endpoint,
                      destination: Endpoint, number: int, protocol: str, direction: str) -> bool:
    """Whether the policies selecting `subject` for `direction` let the connection through."""
    kind, rules_key, peers_key = ("Ingress", "ingress", "from") if direction == "ingress" else ("Egress", "egress", "to")
    applying = [p for p in policies if selects(p, subject) and kind in policy_types(p)]
    if not applying:
        return True  # not isolated in this direction
    for policy in applying:
        namespace = policy["metadata"]["namespace"]
        for rule in (policy.get("spec") or {}).get(rules_key) or []:
            peers = rule.get(peers_key) or []
            if peers and not any(peer_matches(peer, namespace, other) for peer in peers):
                continue
            if port_matches(rule.get("ports"), destination, number, protocol):
                return True
    return False


def allowed(policies: Iterable[Mapping[str, Any]], source: Endpoint, destination: Endpoint,
            port: int, protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to `destination` on port/protocol."""
    policies = [p for p in policies if p.get("kind") == "NetworkPolicy"]
    egress = _direction_allows(policies, source, destination, destination, port, protocol, "egress")
    ingress = _direction_allows(policies, destination, source, destination, port, protocol, "ingress")
    return egress and ingress


# --- pods of rendered Ray resources -------------------------------------------------------

# Ports the KubeRay operator or Ray open without a declared container port.
UNDECLARED_RAY_PORTS = {"head": (52365, 44217, 44227), "worker": (52365,)}


def ray_pods(objects: Iterable[Mapping[str, Any]], namespace: str) -> list[Endpoint]:
    """One Endpoint per head / worker group pod template of every RayCluster and RayService, with
    the template's labels plus the operator's own (ray.io/...), and its containers' ports."""
    from harness.pods import pod_templates  # local: keeps this module importable on its own

    found = []
    for obj in objects:
        if obj.get("kind") not in ("RayCluster", "RayService", "RayJob", "RayCronJob"):
            continue
        for pod in pod_templates(obj):
            if not pod.ray_node:
                continue  # a RayJob's submitter pod
            labels = dict((pod.template.get("metadata") or {}).get("labels") or {})
            node_type = "head" if "headGroupSpec" in pod.path else "worker"
            labels.update({"ray.io/is-ray-node": "yes", "ray.io/node-type": node_type,
                           "ray.io/cluster": obj["metadata"]["name"]})
            ports = [Port(int(p["containerPort"]), p.get("name"), p.get("protocol", "TCP"))
                     for container in pod.spec.get("containers") or [] for p in container.get("ports") or []]
            if not any(port.name == "metrics" for port in ports):
                ports.append(Port(8080, "metrics"))  # the operator adds it when missing
            ports += [Port(number) for number in UNDECLARED_RAY_PORTS[node_type]
                      if not any(port.number == number for port in ports)]
            found.append(Endpoint(f"{obj['kind']}/{obj['metadata']['name']} {pod.path}", namespace, labels, tuple(ports)))
    return found
