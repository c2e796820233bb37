"""The local cluster creates what an overlay expects to exist before install, found in the
rendered manifests (cluster.local.prerequisites). Checked here against hand-written lists read
off the overlays' own values, so that a missed reference fails offline, not as a Pending pod."""
from __future__ import annotations

import pytest

from cluster.local import prerequisites
from harness.scenarios import Scenario
from harness.tools import REPO

NAMESPACE = "ray-platform"

# scenario -> (secrets with the keys read, claims, service accounts, foreign namespaces), each
# read off the overlay (auth.existingSecret, gcsFaultTolerance.existingSecret, hubToken, ...).
EXPECTED = {
    "values/production.yaml": ({"ray-auth-token": {"auth_token"}, "ray-redis": {"password"},
                                "hf-token": {"token"}}, set(), set(), set()),
    "values/airgapped.yaml": ({}, {"sd-weights"}, set(), set()),
    "charts/ray-platform/ci/gcs-fault-tolerance-values.yaml": (
        {"ray-auth-token": {"auth_token"}, "redis-password": {"redis-password"}}, set(), set(), set()),
    "charts/ray-platform/ci/ingress-tls-auth-values.yaml": ({}, set(), {"ray-jobs"}, set()),
    "charts/ray-platform/ci/monitoring-values.yaml": ({}, set(), set(), {"observability"}),
    "values/dev.yaml": ({}, set(), set(), set()),
}


def _scenario(name: str) -> Scenario:
    return Scenario(name, (REPO / name,))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prerequisites_are_what_the_overlay_references(render, name: str) -> None:
    found = prerequisites.find(render(_scenario(name)), NAMESPACE)
    secrets, claims, accounts, namespaces = EXPECTED[name]
    assert found.secrets == secrets
    assert found.claims == claims
    assert found.service_accounts == accounts
    assert found.namespaces == namespaces


def test_created_objects_carry_the_keys_and_no_fixed_secret_value(render) -> None:
    found = prerequisites.find(render(_scenario("values/production.yaml")), NAMESPACE)
    first, second = found.objects(NAMESPACE), found.objects(NAMESPACE)
    token = next(obj for obj in first if obj["metadata"]["name"] == "ray-auth-token")
    assert set(token["stringData"]) == {"auth_token"}
    assert token["metadata"]["namespace"] == NAMESPACE
    again = next(obj for obj in second if obj["metadata"]["name"] == "ray-auth-token")
    assert token["stringData"] != again["stringData"], "Secret values must be random per call"


def test_chart_created_objects_are_not_prerequisites(render) -> None:
    """The model cache PVC of source: cache is the chart's own: never created beforehand."""
    found = prerequisites.find(render(_scenario("charts/ray-platform/ci/sd-model-cache-values.yaml")),
                               NAMESPACE)
    assert not found.claims
