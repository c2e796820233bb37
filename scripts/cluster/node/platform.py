"""`make up` on the local cluster with its real node: the control plane (real), a simulated GPU
node (kwok) and the real node; the KubeRay operator as a pod; the chart with values/dev.yaml and
values/local/real-node.yaml, every Ray head and worker a container on the real node; then the
RayService Ready, a PNG from /imagine through the Serve Service, and `helm test`."""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import yaml

from cluster.local import fleet, lifecycle
from cluster.local.controlplane import Layout
from cluster.local.kubectl import Kubectl
from cluster.local.release import (NO_SUBCHART, Release, helm_in, install, objects_of_kind,
                                   ray_targets, restricted_namespace, upgrade)
from cluster.node import node, operator_pod
from cluster.node.layout import NODE_LABELS, NodeLayout
from harness.readiness import KubeFetcher, wait_until_ready
from harness.render import make_offline_copy, parse_manifests
from harness.tools import CHART_DIR, NAMESPACE, RELEASE, VALUES_DIR
from images import build as images
from images.build import Built

Say = Callable[[str], None]
REAL_NODE_VALUES = VALUES_DIR / "local" / "real-node.yaml"
# Simulated beside the real node: one GPU node (kwok), tainted like GPU pools are, so GPU
# scheduling is still exercised while every CPU pod lands on the real node.
REAL_NODE_FLEET = fleet.Fleet(pools=(fleet.Pool("gpu", 1, "32", "128Gi", gpus=4),), volumes=4)


@dataclass(frozen=True)
class RealCluster:
    layout: Layout
    node: NodeLayout
    kubectl: Kubectl
    images: dict[str, Built]


def images_values(folder: Path, built: dict[str, Built]) -> Path:
    """The values that point every pod of the release at the images built here; pullPolicy
    Never: nothing can be pulled, and a missing image should say so, not wait on a pull."""
    def image(name: str) -> dict[str, str]:
        repository, tag = built[name].reference.rsplit(":", 1)
        return {"repository": repository, "tag": tag}

    serve = image("ray-serve")
    values = {
        "image": {**image("ray"), "pullPolicy": "Never"},
        "stableDiffusion": {"head": {"image": serve},
                            "workerGroups": {"cpu": {"image": serve}}},
        "tests": {"image": image("ray")},
    }
    path = folder / "real-node-images.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by cluster/node/platform.py: the images built on this machine.\n"
                    + yaml.safe_dump(values, sort_keys=False))
    return path


def start(layout: Layout, say: Say, image_names: Sequence[str] | None = None) -> RealCluster:
    """Images, control plane, real node, operator pod. Idempotent."""
    started = time.monotonic()
    built = {image.name: image for image in images.build(list(image_names) if image_names else None)}
    for image in built.values():
        say(f"image {image.reference}: {image.size / 1e6:.0f} MB, "
            + ("cached" if image.cached else f"built in {image.seconds:.0f} s"))
    kubectl = lifecycle.up(layout, REAL_NODE_FLEET, say=say, host_operator=False)
    node_layout = node.up(layout, kubectl, list(built.values()), say)
    operator_pod.deploy(kubectl, built["kuberay-operator"].reference)
    pod = operator_pod.wait_ready(kubectl)
    say(f"KubeRay operator: pod {pod['metadata']['name']} Ready on {pod['spec']['nodeName']} "
        f"(container {pod['status']['containerStatuses'][0]['containerID'][:25]}...); "
        f"cluster up in {time.monotonic() - started:.0f} s")
    return RealCluster(layout, node_layout, kubectl, built)


@contextmanager
def cluster_of_its_own(workdir: Path, name: str, say: Say, down_say: Say,
                       image_names: Sequence[str] | None = None) -> Iterator[RealCluster]:
    """A local cluster with a real node (start()) whose image store is emptied before and removed
    after: what the benchmarks use, so that every run imports its images and none leaves a copy
    behind (each store holds several GB)."""
    layout = Layout(state_dir=workdir / "state", name=name)
    store = NodeLayout(layout).containerd_root
    shutil.rmtree(store, ignore_errors=True)
    try:
        yield start(layout, say, image_names)
    finally:
        lifecycle.down(layout, say=down_say)
        shutil.rmtree(store, ignore_errors=True)


def release_for(cluster: RealCluster, chart: Path, values: Sequence[Path],
                namespace: str = NAMESPACE, name: str = RELEASE) -> Release:
    generated = images_values(cluster.layout.state_dir, cluster.images)
    return Release(name, namespace, chart, (*values, REAL_NODE_VALUES, generated), NO_SUBCHART)


def upgrade_flags(major: int) -> tuple[str, ...]:
    """Helm 4 upgrades by server-side apply, and the Ray autoscaler writes each worker group's
    replicas into the RayCluster's workerGroupSpecs, a list the CRD makes atomic: the next
    upgrade conflicts on the whole list ("conflict with python-requests ... .spec.
    workerGroupSpecs") unless Helm takes it back. Helm 3's three-way merge does not conflict."""
    return ("--force-conflicts",) if major == 4 else ()


def install_release(cluster: RealCluster, release: Release, major: int = 4) -> list[dict]:
    cluster.kubectl.apply([restricted_namespace(release.namespace)])
    installed = helm_in(cluster.layout.kubeconfig, "status", release.name, "-n",
                        release.namespace, major=major).returncode == 0
    result = (upgrade(release, cluster.layout.kubeconfig, major, upgrade_flags(major))
              if installed else install(release, cluster.layout.kubeconfig, major))
    if result.returncode != 0:
        raise RuntimeError(f"helm {'upgrade' if installed else 'install'} failed:\n"
                           f"{result.stderr.strip()}")
    return parse_manifests(helm_in(cluster.layout.kubeconfig, "get", "manifest", release.name,
                                   "-n", release.namespace, major=major).stdout)


def wait_clusters(cluster: RealCluster, manifest: list[dict], namespace: str, timeout: float,
                  say: Say) -> None:
    fetcher = KubeFetcher(str(cluster.layout.kubeconfig))
    wait_until_ready(ray_targets(fetcher, manifest, namespace), fetcher, timeout=timeout,
                     interval=2, report=say)


def containers_ready(pods: list[dict]) -> bool:
    """Every container of every pod started (it has an ID) and is ready from its probes."""
    statuses = [s for p in pods for s in p["status"].get("containerStatuses") or [{}]]
    return bool(pods) and all(s.get("containerID") and s.get("ready") for s in statuses)


def service_ip(kubectl: Kubectl, name: str, namespace: str) -> str:
    return kubectl.get("service", name, "-n", namespace)["spec"]["clusterIP"]


def real_pods_summary(kubectl: Kubectl, namespace: str, node_name: str) -> str:
    lines = []
    for pod in kubectl.get("pods", "-n", namespace)["items"]:
        statuses = pod.get("status", {}).get("containerStatuses") or []
        real = pod["spec"].get("nodeName") == node_name
        ids = {s["name"]: (s.get("containerID") or "")[:25] for s in statuses}
        lines.append(f"  {pod['metadata']['name']}: {pod['status'].get('phase')} on "
                     f"{pod['spec'].get('nodeName')} ({'containers ran' if real else 'SIMULATED'}"
                     f"{': ' + json.dumps(ids) if real else ''})")
    return "\n".join(lines)


def wait_rayservice(cluster: RealCluster, name: str, namespace: str, timeout: float,
                    say: Say) -> str:
    """Until the operator reports the RayService Ready (its Serve apps RUNNING on real pods)."""
    from cluster.local.up import wait_rayservice_ready

    return wait_rayservice_ready(KubeFetcher(str(cluster.layout.kubeconfig)), name, namespace,
                                 timeout, say)


def up(layout: Layout, values: Sequence[Path], timeout: float, say: Say,
       helm_major: int = 4, serve: bool = True, tests: bool = True,
       monitoring: bool = False) -> None:
    """`make up`: everything above, then the release, its readiness, a PNG and helm test
    (without serve: the RayClusters only; without tests: no helm test; with monitoring: the
    prometheus-operator and a Prometheus scraping the release, cluster/node/monitoring_stack.py)."""
    from cluster.local.up import IMAGE_SIZE, imagine, serve_route_prefix
    from cluster.node import monitoring_stack

    cluster = start(layout, say)
    if monitoring:
        # Before the install: the chart renders its monitors only where the API serves them.
        monitoring_stack.install_crds(cluster.kubectl)
        values = [*values, monitoring_stack.MONITORING_VALUES]
    with tempfile.TemporaryDirectory(prefix="ray-platform-chart-") as workdir:
        chart = make_offline_copy(CHART_DIR, Path(workdir))
        release = release_for(cluster, chart, values)
        say(f"helm {helm_major}: installing {RELEASE} into {NAMESPACE} with "
            f"{', '.join(str(v) for v in release.values_files)} (the operator runs as its own pod)")
        manifest = install_release(cluster, release, helm_major)
    say("waiting for the RayClusters (status from the operator, pods on the real node) ...")
    wait_clusters(cluster, manifest, NAMESPACE, timeout, say)
    for service in objects_of_kind(manifest, "RayService") if serve else []:
        name = service["metadata"]["name"]
        detail = wait_rayservice(cluster, name, NAMESPACE, timeout, say)
        say(f"RayService/{name}: Ready ({detail})")
        address = service_ip(cluster.kubectl, f"{name}-serve-svc", NAMESPACE)
        url = node.expose(cluster.node, name, address, 8000)
        prefix = serve_route_prefix(service).rstrip("/")
        png = imagine(url, prefix)
        say(f"GET {url}{prefix}/imagine: a {IMAGE_SIZE}x{IMAGE_SIZE} PNG ({len(png)} bytes) "
            f"from Ray Serve in containers, through Service {name}-serve-svc ({address}:8000)")
        say(f"  open {url}{prefix}/imagine?prompt=a+red+fox&img_size=128 on this machine")
    if tests and serve:
        result = helm_in(layout.kubeconfig, "test", RELEASE, "-n", NAMESPACE, "--timeout", "15m",
                         major=helm_major, timeout=1000)
        if result.returncode != 0:
            raise RuntimeError(f"helm test failed:\n{result.stdout}{result.stderr}")
        say("helm test: passed (its Pods ran on the real node)")
    if monitoring:
        stack = monitoring_stack.up(cluster.kubectl, cluster.node, cluster.images)
        say(f"Prometheus v3.16.0 (pod {stack.pod}, reconciled by the prometheus-operator): "
            f"open {stack.url} (API: {stack.url}/api/v1/targets, {stack.url}/api/v1/alerts)")
    say("")
    say("What ran for real: " + REAL_TEXT)
    say(real_pods_summary(cluster.kubectl, NAMESPACE, node.NODE_NAME))
    say("")
    say(f"kubeconfig: {layout.kubeconfig}")
    say(f"  {layout.bin_dir / 'kubectl'} --kubeconfig {layout.kubeconfig} get pods -A -o wide")
    say("stop everything with: make down")


REAL_TEXT = (
    "etcd, kube-apiserver (Pod Security `restricted` on the release namespace), "
    "kube-controller-manager and kube-scheduler as host processes; the node real-node-1 (kubelet, "
    "containerd, runc with seccomp, the CNI bridge, kube-proxy, CoreDNS) in a network namespace "
    "with no route out; the KubeRay operator, every Ray head, worker and autoscaler, and the helm "
    "test Pods as containers on it, from images built on this machine (never pulled). Simulated: "
    "one GPU node (kwok) beside it, where nothing of this release is scheduled. The model is the "
    "tiny random-weight pipeline in the ray-serve image (no model hub is reachable): the image is "
    "noise.")
