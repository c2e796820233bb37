"""`make up` on the local cluster: start it, install the chart with values/dev.yaml (the model
weights from the tiny pipeline's folder), wait for the Ray clusters the operator reconciles, put
a real Ray head behind the Stable Diffusion RayService, wait until the operator reports it Ready,
fetch an image from /imagine, and say exactly what is real and what is simulated."""
from __future__ import annotations

import io
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

from cluster.local import lifecycle, ray_head
from cluster.local.controlplane import Layout
from cluster.local.operator import module_version
from cluster.local.release import (NO_SUBCHART, Release, helm_in, install, objects_of_kind,
                                   ray_targets, restricted_namespace, upgrade)
from harness.readiness import (FAILED, READY, KubeFetcher, Target, TargetFailed, TimedOut,
                               rayservice_verdict, wait_until_ready)
from harness.render import make_offline_copy, parse_manifests
from harness.tools import CHART_DIR, NAMESPACE, RELEASE

REAL_AND_SIMULATED = (
    "What is real and what is simulated: etcd, kube-apiserver (admission with Pod Security "
    "`restricted` on namespace {namespace}, CRD schema validation, server-side apply), "
    "kube-controller-manager, kube-scheduler and the KubeRay operator {operator} are real "
    "processes on this machine, and everything above was accepted, admitted, scheduled and "
    "reconciled by them. The nodes are simulated by kwok: no container runs, no image is pulled, "
    "no probe or command executes and no traffic flows between pods; a pod shown Running/Ready "
    "only means the API server admitted it and the scheduler placed it. One exception is real: "
    "behind the RayService {rayservice} runs a real Ray head (Ray {ray}) on this machine, on its "
    "head pod's IP {pod_ip}, started from the `ray start` command, token and app files the "
    "operator put into that pod; the operator deployed the chart's Serve config onto it and the "
    "image above came from real Ray Serve. Its shape is this machine's ({cpus}), not the "
    "chart's: the worker pods are simulated, their CPUs are given to the one real head. The "
    "model is a tiny pipeline with random weights (no model hub is reachable), so the image is "
    "noise."
)
# Without a real Ray (no RayService in the release, or it failed): the clusters alone.
CLUSTERS_ONLY = (
    "What is real and what is simulated: etcd, kube-apiserver (admission with Pod Security "
    "`restricted` on namespace {namespace}, CRD schema validation, server-side apply), "
    "kube-controller-manager, kube-scheduler and the KubeRay operator {operator} are real "
    "processes on this machine. The nodes are simulated by kwok: no container runs, no image is "
    "pulled, no probe or command executes and no traffic flows between pods."
)
IMAGE_SIZE = 64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def local_values(folder: Path) -> Path:
    """A values file for a real Ray on this machine, written into folder: the model from the
    tiny pipeline's folder (no model hub is reachable) and no runtime_env pip step (the Ray of
    this machine runs from the virtualenv, which has the app's exact pins, as the Ray image has
    in a cluster; there is no package index to reach from the head's network namespace)."""
    path = folder / "local-cluster-values.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by cluster/local/up.py: what a real Ray head on this machine needs.\n"
        "stableDiffusion:\n"
        "  app:\n"
        "    pip: []\n"
        "  weights:\n"
        "    source: local\n"
        "    local:\n"
        f"      path: {ray_head.TINY_MODEL_DIR}\n")
    return path


def wait_rayservice_ready(fetcher: KubeFetcher, name: str, namespace: str, timeout: float,
                          say: Callable[[str], None], interval: float = 2,
                          fail_after: float = 30) -> str:
    """Until the operator reports the RayService Ready with its applications RUNNING."""
    deadline = time.monotonic() + timeout
    last = ""
    failing_since: float | None = None
    while True:
        verdict = rayservice_verdict(fetcher(Target("RayService", name, namespace)) or {})
        if verdict.state == READY:
            return verdict.detail
        # A failed application can recover while Serve retries; one that stays failed is final.
        failing_since = (failing_since or time.monotonic()) if verdict.state == FAILED else None
        if failing_since and time.monotonic() - failing_since > fail_after:
            raise TargetFailed(f"RayService/{name}: {verdict.detail}", {})
        if verdict.detail != last:
            say(f"  RayService/{name}: {verdict.state}: {verdict.detail}")
            last = verdict.detail
        if time.monotonic() > deadline:
            raise TimedOut(f"RayService/{name} not Ready after {timeout:.0f} s: {verdict.detail}", {})
        time.sleep(interval)


def imagine(serve_url: str, prefix: str = "", size: int = IMAGE_SIZE, steps: int = 2,
            timeout: float = 120) -> bytes:
    """GET /imagine through the real Serve proxy; the PNG, checked to be size x size."""
    query = urllib.parse.urlencode({"prompt": "a red fox in the snow", "img_size": size,
                                    "steps": steps})
    with urllib.request.urlopen(f"{serve_url}{prefix.rstrip('/')}/imagine?{query}",
                                timeout=timeout) as answer:
        body = answer.read()
        content_type = answer.headers.get("Content-Type", "")
    if not body.startswith(PNG_MAGIC) or "image/png" not in content_type:
        raise RuntimeError(f"/imagine answered {content_type!r}, not a PNG: {body[:200]!r}")
    from PIL import Image  # in the Serve requirements, like the app

    width, height = Image.open(io.BytesIO(body)).size
    if (width, height) != (size, size):
        raise RuntimeError(f"/imagine answered a {width}x{height} PNG, {size}x{size} was asked")
    return body


def chart_copy(workdir: Path) -> Path:
    """The chart without its remote operator dependency (the operator runs on the host)."""
    return make_offline_copy(CHART_DIR, workdir)


def up(layout: Layout, values: Sequence[Path], timeout: float, helm_major: int = 4,
       say: Callable[[str], None] = print, real_ray: bool = True) -> None:
    kubectl = lifecycle.up(layout, say=say)
    kubectl.apply([restricted_namespace(NAMESPACE)])
    say(f"namespace {NAMESPACE}: pod-security.kubernetes.io/enforce=restricted")
    with tempfile.TemporaryDirectory(prefix="ray-platform-chart-") as workdir:
        release = Release(RELEASE, NAMESPACE, chart_copy(Path(workdir)),
                          (*values, local_values(layout.state_dir)), NO_SUBCHART)
        installed = helm_in(layout.kubeconfig, "status", RELEASE, "-n", NAMESPACE,
                            major=helm_major).returncode == 0
        action = upgrade if installed else install
        say(f"helm {helm_major}: {'upgrading' if installed else 'installing'} {RELEASE} with "
            f"{', '.join(str(v) for v in values)} (operator subchart off: the operator runs on "
            f"the host; model weights from {ray_head.TINY_MODEL_DIR}, no pip step) ...")
        result = action(release, layout.kubeconfig, helm_major)
        if result.returncode != 0:
            raise RuntimeError(f"helm {action.__name__} failed:\n{result.stderr.strip()}")
    manifest = parse_manifests(helm_in(layout.kubeconfig, "get", "manifest", RELEASE,
                                       "-n", NAMESPACE, major=helm_major).stdout)
    fetcher = KubeFetcher(str(layout.kubeconfig))
    targets = ray_targets(fetcher, manifest, NAMESPACE)
    # The real Ray goes behind the Stable Diffusion service only: it is the app whose code and
    # weights this machine has (the tiny pipeline). A user's own RayService (rayServices.<name>)
    # stays on its simulated pods: its RayCluster is awaited, its Serve apps are not served.
    rayservices = objects_of_kind(manifest, "RayService")
    services = [obj for obj in rayservices
                if obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "stable-diffusion"]
    for other in rayservices:
        if other not in services:
            say(f"RayService/{other['metadata']['name']}: its RayCluster is awaited on simulated "
                "nodes; no real Ray runs behind it (only the Stable Diffusion service gets one)")
    say("waiting for the RayClusters the operator reconciles (status read from the API) ...")
    wait_until_ready(targets, fetcher, timeout=timeout, interval=2, report=say)
    operator = module_version()
    stopped = ray_head.stop_orphans(layout, kubectl)
    if stopped:
        say(f"real Ray: stopped the heads of clusters that are gone: {', '.join(stopped)}")
    if not services or not real_ray:
        for service in services:
            say(f"RayService/{service['metadata']['name']}: not served - no real Ray was started "
                "behind it (--no-real-ray)")
        say("")
        say(CLUSTERS_ONLY.format(namespace=NAMESPACE, operator=operator))
        services = []
    for service in services:
        name = service["metadata"]["name"]
        started = time.monotonic()
        record = ray_head.start(layout, kubectl, NAMESPACE, name, say=say)
        say(f"real Ray: head up at {record.dashboard_url} (dashboard, token auth as the pod); "
            "waiting for the operator to deploy the Serve config onto it ...")
        detail = wait_rayservice_ready(fetcher, name, NAMESPACE, timeout, say)
        say(f"RayService/{name}: Ready as the operator reports it ({detail}), "
            f"{time.monotonic() - started:.0f} s after the Ray head started")
        prefix = serve_route_prefix(service)
        png = imagine(record.serve_url, prefix)
        say(f"GET {record.serve_url}{prefix.rstrip('/')}/imagine: a {IMAGE_SIZE}x{IMAGE_SIZE} "
            f"PNG ({len(png)} bytes) from real Ray Serve")
        say("")
        say(REAL_AND_SIMULATED.format(namespace=NAMESPACE, operator=operator, rayservice=name,
                                      ray=ray_version(), pod_ip=record.pod_ip,
                                      cpus=ray_head.shape_text(record)))
        say("")
        say("open in a browser on this machine:")
        say(f"  {record.serve_url}{prefix.rstrip('/')}/imagine?prompt=a+red+fox&img_size=128")
    say("")
    say(f"kubeconfig: {layout.kubeconfig}")
    say(f"  {layout.bin_dir / 'kubectl'} --kubeconfig {layout.kubeconfig} get "
        f"rayclusters,rayservices,pods -n {NAMESPACE}")
    say("stop everything with: make down")


def serve_route_prefix(rayservice: dict) -> str:
    import yaml

    config = yaml.safe_load(rayservice["spec"].get("serveConfigV2") or "") or {}
    apps = config.get("applications") or [{}]
    return apps[0].get("route_prefix") or "/"


def ray_version() -> str:
    from importlib.metadata import version

    return version("ray")
