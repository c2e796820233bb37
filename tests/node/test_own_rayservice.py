"""The user's own RayService, values/examples/own-serve-app.yaml, deployed in containers on the
real node and answering its routes: POST /echo (echo_app.main, ECHO_GREETING from its
runtime_env) and POST /sentiment (echo_app.sentiment, which needs vaderSentiment installed by the
runtime_env's `pip` at replica start).

The example assumes what a cluster with no route out cannot reach: its code as a zip at an HTTPS
URL and PyPI for the pip step. Both come from inside the cluster here, as an air-gapped site
would provide them: an artifact server Pod (the Ray image's Python, `http.server`) serves the
app's zip (tests/node/own_serve_app/, zipped with one top-level folder as Ray wants) and a PEP
503 simple index holding the vaderSentiment wheel; the applications' working_dir points at it
and PIP_INDEX_URL on the Ray pods sends pip there. Everything else is the example's: the
applications, deployments, Serve config, cluster, ingress; only the pods' CPU and memory
requests are shrunk for the 2-core node (the limits, and so the CPUs Ray announces, stay)."""
from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from cluster.local.release import helm_in, restricted_namespace
from cluster.node import platform
from cluster.node.layout import NODE_LABELS
from harness.render import make_offline_copy
from harness.tools import CHART_DIR, VALUES_DIR
from images.build import cache_root
from own_release_helpers import OwnRelease, own_release, wait_for
from tests_node_helpers import service_endpoints

pytestmark = pytest.mark.node

EXAMPLE = VALUES_DIR / "examples" / "own-serve-app.yaml"
APP_DIR = Path(__file__).parent / "own_serve_app"
NAMESPACE = "own-serve"
RELEASE = "text"
SERVICE = f"{RELEASE}-ray-platform-text"  # the example's RayService
ARTIFACTS = "artifacts"
ARTIFACTS_HOST = f"{ARTIFACTS}.{NAMESPACE}.svc.cluster.local"
ARTIFACTS_URL = f"http://{ARTIFACTS_HOST}:8080"
WHEEL = ("vadersentiment", "3.3.2")
READY_TIMEOUT = 1200


def app_zip(url_path: str) -> bytes:
    """The app folder as Ray wants a remote working_dir: one top-level folder, named after the
    zip, holding the package."""
    top = Path(url_path).stem
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(APP_DIR.rglob("*.py")):
            archive.write(path, f"{top}/{path.relative_to(APP_DIR).as_posix()}")
    return data.getvalue()


def wheel() -> Path:
    """vaderSentiment's wheel, fetched once with pip (a package registry, as `make setup` uses
    for the images) into the machine's cache; the cluster itself never reaches a registry."""
    folder = cache_root() / "test-wheels"
    name, version = WHEEL
    found = sorted(folder.glob(f"*{version}*.whl")) if folder.is_dir() else []
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", f"{name}=={version}", "-d", str(folder)],
                       check=True, timeout=300)
        found = sorted(folder.glob(f"*{version}*.whl"))
    assert found, f"no wheel of {name} {version} in {folder}"
    return found[0]


def artifact_objects(image: str, zip_path: str, zip_data: bytes, wheel_path: Path
                     ) -> list[dict[str, Any]]:
    """ConfigMap (the files), Pod (http.server over them) and Service `artifacts`. The Pod is
    labelled a client of the release's Ray clusters (networkPolicy.clients), so the test's own
    requests to the Serve Service come from it."""
    digest = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
    index = (f'<!DOCTYPE html><html><body><a href="../../packages/{wheel_path.name}'
             f'#sha256={digest}">{wheel_path.name}</a></body></html>\n')
    files = {"app.zip": (zip_path, zip_data), "wheel": (f"packages/{wheel_path.name}",
                                                      wheel_path.read_bytes()),
             "index": (f"simple/{WHEEL[0]}/index.html", index.encode())}
    labels = {"app.kubernetes.io/name": ARTIFACTS, "ray-platform.io/client": "true"}
    restricted = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100,
                  "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                  "seccompProfile": {"type": "RuntimeDefault"}}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": ARTIFACTS, "namespace": NAMESPACE},
         "binaryData": {key: base64.b64encode(data).decode() for key, (_, data) in files.items()}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": ARTIFACTS, "namespace": NAMESPACE, "labels": labels},
         "spec": {
             "nodeSelector": dict(NODE_LABELS),
             "automountServiceAccountToken": False,
             "containers": [{
                 "name": "http", "image": image, "imagePullPolicy": "Never",
                 "command": ["python3", "-m", "http.server", "8080", "--directory", "/srv"],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": f"/simple/{WHEEL[0]}/", "port": 8080}},
                 "resources": {"requests": {"cpu": "20m", "memory": "64Mi"},
                               "limits": {"cpu": "250m", "memory": "256Mi"}},
                 "securityContext": restricted,
                 "volumeMounts": [{"name": "files", "mountPath": "/srv", "readOnly": True}]}],
             "volumes": [{"name": "files", "configMap": {"name": ARTIFACTS, "items": [
                 {"key": key, "path": path} for key, (path, _) in files.items()]}}]}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": ARTIFACTS, "namespace": NAMESPACE},
         "spec": {"selector": {"app.kubernetes.io/name": ARTIFACTS},
                  "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}},
    ]


def in_cluster_values(example: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The example's rayServices.text with working_dir on the artifact server, and the Ray pods'
    pip pointed at its index; requests small. Returns the values and the zip's URL path."""
    service = example["rayServices"]["text"]
    applications = copy.deepcopy(service["applications"])
    paths = set()
    for application in applications:
        url = application["runtime_env"]["working_dir"]
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        paths.add(path)
        application["runtime_env"]["working_dir"] = ARTIFACTS_URL + path
    (path,) = paths  # the example ships both apps in one zip
    cluster = service["cluster"]
    small = {"head": {"resources": {**cluster["head"]["resources"],
                                    "requests": {"cpu": "100m", "memory": "512Mi"}}},
             "workerGroups": {name: {"resources": {"requests": {"cpu": "100m",
                                                                "memory": "1Gi"}}}
                              for name in cluster["workerGroups"]}}
    values = {
        "env": [{"name": "PIP_INDEX_URL", "value": f"{ARTIFACTS_URL}/simple/"},
                {"name": "PIP_TRUSTED_HOST", "value": ARTIFACTS_HOST}],
        "rayServices": {"text": {"applications": applications, "cluster": small}},
    }
    return values, path


@pytest.fixture(scope="module")
def text(real_cluster, tmp_path_factory) -> Iterator[OwnRelease]:
    folder = tmp_path_factory.mktemp("own-serve")
    example = yaml.safe_load(EXAMPLE.read_text())
    values, zip_path = in_cluster_values(example)
    kubectl = real_cluster.kubectl
    kubectl.apply([restricted_namespace(NAMESPACE)])
    try:
        kubectl.apply(artifact_objects(real_cluster.images["ray"].reference, zip_path.lstrip("/"),
                                       app_zip(zip_path), wheel()))
        wait_for("the artifact server ready", lambda: all(
            s.get("ready") for s in (kubectl.get("pod", ARTIFACTS, "-n", NAMESPACE)["status"]
                                     .get("containerStatuses") or [{}])), 300)
        chart = make_offline_copy(CHART_DIR, folder / "chart")
        # dev.yaml first: values/local/real-node.yaml (added by release_for) presumes it.
        with own_release(real_cluster, chart, folder, NAMESPACE, RELEASE, values,
                         base=(VALUES_DIR / "dev.yaml", EXAMPLE)) as own:
            platform.wait_rayservice(real_cluster, SERVICE, NAMESPACE, READY_TIMEOUT, print)
            yield own
    finally:
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=false", check=False)


REQUEST = """
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST")
with urllib.request.urlopen(request, timeout=60) as answer:
    print(answer.status)
    print(answer.read().decode())
"""


def post(own: OwnRelease, route: str, body: str) -> tuple[int, str]:
    """POST through the RayService's Serve Service, from the client-labelled artifact pod."""
    url = f"http://{SERVICE}-serve-svc.{NAMESPACE}.svc.cluster.local:8000{route}"
    pod = own.get("pod", ARTIFACTS, "-n", NAMESPACE)
    # A connection-level error (no HTTP answer) is retried for up to a minute: seen once on a
    # busy 2-core machine right after the RayService turned Ready (EHOSTUNREACH to a Serve
    # endpoint). An HTTP answer, whatever its status, is returned at once.
    deadline = time.monotonic() + 60
    while True:
        answer = own.exec(pod, "http", "python3", "-c", REQUEST, url, body)
        if answer.returncode == 0 or "URLError" not in answer.stderr \
                or time.monotonic() > deadline:
            break
        why = [line for line in answer.stderr.splitlines() if "urlopen error" in line]
        print(f"POST {route}: no HTTP answer yet ({why[-1:]}); retrying", flush=True)
        time.sleep(3)
    if answer.returncode != 0:  # say which pods the Service had, and their serve labels
        endpoints = [(e.get("targetRef", {}).get("name"), e.get("addresses"), e.get("conditions"))
                     for e in service_endpoints(own, f"{SERVICE}-serve-svc")]
        serving = {p["metadata"]["name"]: p["metadata"]["labels"].get("ray.io/serve")
                   for p in own.items("pods")}
        raise AssertionError(f"{answer.stdout}{answer.stderr}\nserve-svc endpoints: {endpoints}"
                             f"\npods' ray.io/serve: {serving}")
    status, text_ = answer.stdout.split("\n", 1)
    return int(status), text_.rstrip("\n")


def test_both_applications_run_in_containers_on_the_real_node(text, node_name) -> None:
    status = text.get("rayservice", SERVICE, "-n", NAMESPACE)["status"]
    applications = status["activeServiceStatus"]["applicationStatuses"]
    assert {name: app["status"] for name, app in applications.items()} == {
        "echo": "RUNNING", "sentiment": "RUNNING"}, applications
    cluster = status["activeServiceStatus"]["rayClusterName"]
    pods = text.items("pods", f"ray.io/cluster={cluster}")
    assert {p["metadata"]["labels"]["ray.io/node-type"] for p in pods} == {"head", "worker"}
    for pod in pods:
        assert pod["spec"]["nodeName"] == node_name
        assert all(s["containerID"].startswith("containerd://") and s["ready"]
                   for s in pod["status"]["containerStatuses"]), pod["metadata"]["name"]


def test_echo_answers_with_the_greeting_from_its_runtime_env(text) -> None:
    status, body = post(text, "/echo", "hello")
    assert (status, body) == (200, "you said: hello")


def test_sentiment_answers_with_the_pip_installed_package(text) -> None:
    status, body = post(text, "/sentiment", "I love this wonderful, great platform")
    assert status == 200, body
    scores = json.loads(body)
    assert set(scores) == {"neg", "neu", "pos", "compound"} and scores["compound"] > 0.5, scores
    status, body = post(text, "/sentiment", "this is a terrible, awful failure")
    assert json.loads(body)["compound"] < -0.5, body


def test_its_head_service_follows_the_active_cluster_and_helm_test_reaches_it(text) -> None:
    """KubeRay's stable <service>-head-svc (what `helm test`'s dashboard check, an Ingress for the
    dashboard of a RayService and `kubectl port-forward` use) selects app.kubernetes.io/name=
    kuberay whatever the pod template says; the chart's Ray pods keep that label, so the active
    cluster's head is its endpoint and the chart's helm test reaches the dashboard through it."""
    status = text.get("rayservice", SERVICE, "-n", NAMESPACE)["status"]
    head = text.head_pod(status["activeServiceStatus"]["rayClusterName"])
    assert head["metadata"]["labels"]["app.kubernetes.io/name"] == "kuberay", head["metadata"]
    service = f"{SERVICE}-head-svc"
    endpoints = wait_for(f"an endpoint behind {service}",
                         lambda: service_endpoints(text, service), timeout=120)
    assert [e["targetRef"]["name"] for e in endpoints] == [head["metadata"]["name"]], endpoints
    # (No --logs: it reads the Pods' logs through the API server, which cannot reach this
    # node's kubelet; a failed check fails the Pod and so `helm test`.)
    result = helm_in(text.cluster.layout.kubeconfig, "test", RELEASE, "-n", NAMESPACE,
                     "--timeout", "10m", major=4, timeout=700)
    assert result.returncode == 0, result.stdout + result.stderr
    # Among them the check of this RayService's dashboard (http://<service>-head-svc:8265: 401
    # without a token), which found no endpoint while the chart labelled its pods ray-platform.
    assert f"{RELEASE}-ray-platform-test-dashboard-text" in result.stdout, result.stdout
