"""The parties the chart's NetworkPolicies name, as pods that stand for them: who each is, where
it runs and the labels the policies look at, derived from a release's merged values
(networkPolicy.*). The live matrix on the real node (cluster/node/reachability.py) starts one
probe pod per party; the README's generated table (generate/reachability_table.py) asks the
evaluator about the same parties, so both speak of the same sources. Pure: no cluster imports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness import netpol


@dataclass(frozen=True)
class Party:
    """A probe pod: who it stands for, where it runs and the labels the policies look at."""

    name: str
    namespace: str  # "" = the release namespace
    labels: dict[str, str] = field(default_factory=dict)

    def endpoint(self, release_namespace: str) -> netpol.Endpoint:
        """The party as the evaluator sees a pod of it; its namespace carries only the label
        Kubernetes sets on every namespace (kubernetes.io/metadata.name), as on the real node."""
        return netpol.Endpoint(self.name, self.namespace or release_namespace, dict(self.labels))


def parties(values: dict[str, Any]) -> list[Party]:
    """One probe per party of values' networkPolicy, plus plain pods that no rule names."""
    np = values["networkPolicy"]

    def peer(name: str, key: str) -> Party:
        return Party(name, np[key].get("namespace") or "", dict(np[key].get("podLabels") or {}))

    client = peer("client", "clients")
    return [
        Party("plain", ""),
        client,
        Party("plain-other-ns", "probe-other"),
        Party("client-other-ns", "probe-other", client.labels),
        peer("prometheus", "prometheus"),
        peer("ingress-controller", "ingressController"),
        peer("operator", "operator"),
    ]
