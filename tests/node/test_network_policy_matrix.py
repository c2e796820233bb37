"""The chart's NetworkPolicies, enforced by kube-router on the real node, measured cell by cell
with real TCP connections and compared with what the harness's evaluator (harness/netpol.py)
predicts from the same policies: any disagreement fails, naming the source, the destination, the
port and the policies that decide it (cluster/node/reachability.py says how cells are measured).
Twice: for the dev release, and with values/local/exposed.yaml layered on it by `helm upgrade`
(an Ingress and an HTTPRoute, with the policies that let the ingress controller in; no Ray pod
changes, so the same pods are measured under the other policies)."""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Iterator

import pytest

from cluster.local.release import helm_in, restricted_namespace, upgrade
from cluster.node import platform, reachability
from harness import netpol_parties
from harness.tools import VALUES_DIR

pytestmark = pytest.mark.node


EXPOSED = VALUES_DIR / "local" / "exposed.yaml"


def release_values(real_release) -> dict[str, Any]:
    result = helm_in(real_release.cluster.layout.kubeconfig, "get", "values",
                     real_release.release.name, "-n", real_release.namespace, "--all", "-o",
                     "json", major=4)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def helm_upgrade(real_release, release) -> None:
    result = upgrade(release, real_release.cluster.layout.kubeconfig, 4, platform.upgrade_flags(4))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module", params=["dev", "exposed"])
def overlay(request, real_release) -> Iterator[str]:
    if request.param == "dev":
        yield request.param
        return
    exposed = dataclasses.replace(real_release.release,
                                  values_files=(*real_release.release.values_files, EXPOSED))
    helm_upgrade(real_release, exposed)
    try:
        yield request.param
    finally:
        helm_upgrade(real_release, real_release.release)


@pytest.fixture(scope="module")
def probes(real_release) -> Iterator[list[dict[str, Any]]]:
    """One probe pod per party; their labels come from the dev release's values, which the
    exposed overlay does not change."""
    kubectl = real_release.kubectl
    parties = netpol_parties.parties(release_values(real_release))
    existing = set(reachability.namespace_labels(kubectl))
    created = sorted({p.namespace for p in parties if p.namespace} - existing)
    kubectl.apply([restricted_namespace(name) for name in created])
    image = real_release.cluster.images["ray"].reference
    pods = [reachability.probe_pod(p, p.namespace or real_release.namespace, image)
            for p in parties]
    kubectl.apply(pods)
    try:
        deadline = time.monotonic() + 180
        while True:
            live = [real_release.get("pod", p["metadata"]["name"], "-n",
                                     p["metadata"]["namespace"]) for p in pods]
            if all((p["status"].get("containerStatuses") or [{}])[0].get("ready") for p in live):
                break
            assert time.monotonic() < deadline, [(p["metadata"]["name"], p["status"]) for p in live]
            time.sleep(2)
        yield live
    finally:
        for pod in pods:
            kubectl.run("delete", "pod", pod["metadata"]["name"], "-n",
                        pod["metadata"]["namespace"], "--wait=false", check=False)
        for name in created:
            kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_every_measured_cell_is_what_the_evaluator_predicts(real_release, probes, overlay
                                                          ) -> None:
    kubectl = real_release.kubectl
    policies = kubectl.get("networkpolicies", "-n", real_release.namespace)["items"]
    from_ingress = [p["metadata"]["name"] for p in policies if "from-ingress" in p["metadata"]["name"]]
    # The overlay is in place: dev lets no ingress controller in, exposed does (two endpoints).
    assert len(from_ingress) == (2 if overlay == "exposed" else 0), from_ingress
    for policy in policies:
        policy.setdefault("kind", "NetworkPolicy")
    ray_pods = real_release.pods("ray.io/node-type")
    assert len(ray_pods) >= 4, [p["metadata"]["name"] for p in ray_pods]
    cells = reachability.matrix(real_release.cluster.node, [*probes, *ray_pods], ray_pods,
                                policies, reachability.namespace_labels(kubectl))
    print(f"\n{len(cells)} cells, {sum(c.open for c in cells)} open:\n"
          + reachability.summary(cells))
    wrong = [reachability.explain(c, policies) for c in cells if c.open != c.predicted]
    assert not wrong, f"{len(wrong)} of {len(cells)} cells differ:\n" + "\n".join(wrong)
    # Both outcomes were measured, for the probes and for the Ray pods: a node that enforced
    # nothing, or a probe that could reach nothing, would not pass.
    for group in (probes, ray_pods):
        names = {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in group}
        outcomes = {c.open for c in cells if c.source.name in names}
        assert outcomes == {True, False}, outcomes
