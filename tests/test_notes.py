"""NOTES.txt for what the release runs besides the RayCluster and Stable Diffusion: each RayService
of your own (status, the port-forward and each application's URL, its exposure), each RayJob and
RayCronJob (status, where its output is), and the token hint of a release without a RayCluster.
helm 4 renders NOTES.txt offline (`install --dry-run=client`); helm 3 cannot without a cluster.
The other sections are tested with their features (test_exposure, test_monitoring,
test_pod_security_level)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from harness.render import Renderer
from harness.tools import REPO

EXAMPLES = REPO / "values" / "examples"
NO_SD = {"stableDiffusion": {"enabled": False}}
WORKERS = {"cpu": {"minReplicas": 0, "maxReplicas": 1, "resources": {
    "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}}}


@pytest.fixture(scope="module")
def notes(renderer: Renderer, values_file: Callable[[dict[str, Any]], Path]) -> Callable[..., str]:
    """notes(example file name or values) -> the NOTES.txt of an install with them."""
    def _notes(values: str | dict[str, Any]) -> str:
        path = EXAMPLES / values if isinstance(values, str) else values_file(values)
        return renderer.install_output(values_files=[path]).split("NOTES:", 1)[1]
    return _notes


def test_an_own_rayservice_gets_status_port_forward_urls_and_its_exposure(notes) -> None:
    text = notes("own-serve-app.yaml")
    assert ("\nRayService ray-platform-text (rayServices.text):\n"
            "  status:     kubectl -n ray-platform get rayservice ray-platform-text\n"
            "  call it:    kubectl -n ray-platform port-forward svc/ray-platform-text-serve-svc 8000\n"
            "              application echo: http://localhost:8000/echo\n"
            "              application sentiment: http://localhost:8000/sentiment\n") in text
    assert ("\n\nrayServices.text exposed (Ingress ray-platform-text -> svc/ray-platform-text-serve-svc:8000):\n"
            "  https://text.example.com/\n") in text
    assert "Stable Diffusion RayService" not in text


def test_an_application_without_route_and_one_at_the_default_route(notes) -> None:
    text = notes({**NO_SD, "rayServices": {"llm": {"cluster": {"workerGroups": WORKERS}, "applications": [
        {"name": "chat", "import_path": "llm.chat:app"},
        {"name": "embed", "import_path": "llm.embed:app", "route_prefix": None}]}}})
    assert "              application chat: http://localhost:8000/\n" in text
    assert "              application embed: no HTTP route (route_prefix: null), call it through a handle\n" in text


def test_a_rayjob_on_the_chart_cluster_names_its_submitter_job(notes) -> None:
    text = notes("rayjob-on-chart-cluster.yaml")
    assert ("\nRayJob ray-platform-squares (rayJobs.squares) on RayCluster ray-platform:\n"
            "  status:     kubectl -n ray-platform get rayjob ray-platform-squares\n"
            "  output:     kubectl -n ray-platform logs -f job/ray-platform-squares   (the submitter follows the job)\n") in text


def test_a_raycronjob_on_its_own_cluster_and_the_token_hint_without_a_raycluster(notes) -> None:
    text = notes("rayjob-nightly-gpu.yaml")
    assert ('\nRayCronJob ray-platform-embeddings (rayJobs.embeddings, schedule "0 2 * * *") on a Ray cluster of its own:\n'
            "  status:     kubectl -n ray-platform get raycronjob ray-platform-embeddings\n"
            "  runs:       kubectl -n ray-platform get rayjobs   (the operator creates one RayJob per run)\n") in text
    assert "a RayJob's .status.rayClusterName of the RayJob" in text
    assert "kubectl -n ray-platform get secret ray-platform " not in text  # there is no RayCluster of that name


def test_an_http_mode_job_points_at_its_job_id(notes) -> None:
    text = notes({**NO_SD, "rayJobs": {"etl": {"entrypoint": "python etl.py", "submissionMode": "HTTPMode"}}})
    assert ("  output:     the job's logs in its cluster's dashboard; its ID: "
            "kubectl -n ray-platform get rayjob ray-platform-etl -o jsonpath='{.status.jobId}'\n") in text
    assert "logs -f job/" not in text


def test_an_own_service_exposed_without_authentication_is_warned_about_and_one_with_it_is_not(notes) -> None:
    def service(route: str, ingress: dict[str, Any]) -> dict[str, Any]:
        return {"cluster": {"workerGroups": WORKERS}, "ingress": {"enabled": True, **ingress},
                "applications": [{"name": route, "import_path": f"{route}:app", "route_prefix": f"/{route}"}]}

    text = notes({**NO_SD, "rayServices": {
        "open": service("open", {"kind": "HTTPRoute", "hosts": ["open.example.com"], "gateway": {"name": "web"},
                                 "allowUnauthenticated": True}),
        "guarded": service("guarded", {"hosts": ["guarded.example.com"],
                                       "auth": {"external": {"url": "https://auth.example.com/oauth2/auth"}}})}})
    assert ("\n\nrayServices.open exposed (HTTPRoute ray-platform-open -> svc/ray-platform-open-serve-svc:8000):\n"
            "  https://open.example.com/\n"
            "  (through Gateway ray-platform/web; its listener decides http or https)\n"
            "  WARNING: nothing in this chart authenticates its callers (rayServices.open.ingress.allowUnauthenticated):\n"
            "  anyone who reaches open.example.com can call its applications unless the Gateway's policies stop them.\n") in text
    guarded = text[text.index("rayServices.guarded exposed"):]
    assert guarded.startswith("rayServices.guarded exposed (Ingress ray-platform-guarded -> svc/ray-platform-guarded-serve-svc:8000):\n"
                              "  http://guarded.example.com/\n\n")
    assert text.count("WARNING: nothing in this chart authenticates") == 1
