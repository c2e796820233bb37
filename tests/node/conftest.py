"""One local cluster with a real node for the session: the control plane and the KubeRay
operator as in tests/cluster, plus a kubelet, containerd and runc in a network namespace, and the
dev release (values/dev.yaml + values/local/real-node.yaml) with every Ray head and worker, the
operator and the helm test Pods running as real containers from images built on this machine.
One simulated GPU node (kwok) stays beside it: no test here counts a pod on it as having run.

These tests need root, the Go-built node binaries and the images (`make setup` builds them):
they run wherever `make test` does, CI included, and never skip.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from cluster.local import lifecycle
from cluster.local.controlplane import Layout
from cluster.local.release import Release, objects_of_kind
from cluster.node import node, platform
from cluster.node.layout import NODE_NAME
from cluster.node.ray_status import container_id
from harness.render import make_offline_copy
from harness.tools import CHART_DIR, VALUES_DIR

NAMESPACE = "real-dev"
RELEASE = "ray-platform"
READY_TIMEOUT = 1500


@dataclass
class RealRelease:
    cluster: platform.RealCluster
    release: Release
    manifest: list[dict[str, Any]]

    @property
    def kubectl(self):
        return self.cluster.kubectl

    @property
    def namespace(self) -> str:
        return self.release.namespace

    def get(self, *args: str) -> dict[str, Any]:
        return self.kubectl.get(*args)

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        args = ["pods", "-n", self.namespace] + (["-l", selector] if selector else [])
        return self.get(*args)["items"]

    def ray_cluster(self) -> dict[str, Any]:
        name = objects_of_kind(self.manifest, "RayCluster")[0]["metadata"]["name"]
        return self.get("raycluster", name, "-n", self.namespace)

    def head_pod(self, cluster_name: str) -> dict[str, Any]:
        pods = self.pods(f"ray.io/cluster={cluster_name},ray.io/node-type=head")
        assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
        return pods[0]

    def exec(self, pod: dict[str, Any], container: str, *argv: str, timeout: float = 300):
        """Run argv in a running container through the node's CRI (crictl exec)."""
        return node.crictl(self.cluster.node, "exec", container_id(pod, container), *argv,
                           timeout=timeout)


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[platform.RealCluster]:
    with tempfile.TemporaryDirectory(prefix="ray-platform-node-") as workdir:
        layout = Layout(state_dir=Path(workdir) / "state", name="ray-platform-node-test")
        try:
            yield platform.start(layout, say=print)
        finally:
            lifecycle.down(layout, say=print)


@pytest.fixture(scope="session")
def real_release(real_cluster: platform.RealCluster) -> RealRelease:
    chart = make_offline_copy(CHART_DIR, real_cluster.layout.state_dir / "chart")
    release = platform.release_for(real_cluster, chart, [VALUES_DIR / "dev.yaml"], NAMESPACE,
                                   RELEASE)
    manifest = platform.install_release(real_cluster, release)
    platform.wait_clusters(real_cluster, manifest, NAMESPACE, READY_TIMEOUT, report)
    for service in objects_of_kind(manifest, "RayService"):
        platform.wait_rayservice(real_cluster, service["metadata"]["name"], NAMESPACE,
                                 READY_TIMEOUT, report)
    return RealRelease(real_cluster, release, manifest)


def report(line: str) -> None:
    print(line, flush=True)


@pytest.fixture(scope="session")
def node_name() -> str:
    return NODE_NAME
