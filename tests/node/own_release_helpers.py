"""A release of the chart that a test file installs for itself on the session's real node, in a
namespace of its own (Pod Security `restricted`), layered like the dev release (values/dev.yaml,
the test's values, values/local/real-node.yaml, the images built here), and removed at the end:
helm uninstall, the namespace deleted, its pods gone, so the 2-core node is free for the next
test. Conftest-free: test files import it like tests_node_helpers."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from cluster.local.release import Release, helm_in, restricted_namespace, uninstall, upgrade
from cluster.node import node, platform
from cluster.node.ray_status import container_id
from harness.render import parse_manifests
from harness.tools import VALUES_DIR

MAJOR = 4


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 3) -> Any:
    """probe() until it returns something truthy; fails naming `what` and the last answer. The
    deadlines are generous bounds on a shared 2-core machine, never the thing a test checks."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s (last: {value!r})"
        time.sleep(interval)
    return value


@dataclass
class OwnRelease:
    cluster: platform.RealCluster
    release: Release
    folder: Path
    manifest: list[dict[str, Any]]

    @property
    def namespace(self) -> str:
        return self.release.namespace

    @property
    def kubectl(self):
        return self.cluster.kubectl

    def get(self, *args: str) -> dict[str, Any]:
        return self.kubectl.get(*args)

    def items(self, kind: str, selector: str = "") -> list[dict[str, Any]]:
        args = [kind, "-n", self.namespace] + (["-l", selector] if selector else [])
        return self.get(*args)["items"]

    def logs(self, pod: dict[str, Any], container: str) -> str:
        """The container's output through the node's CRI: `kubectl logs` needs the API server
        to reach the kubelet, which sits in the node's network namespace."""
        answer = node.crictl(self.cluster.node, "logs", container_id(pod, container))
        return answer.stdout + answer.stderr

    def exec(self, pod: dict[str, Any], container: str, *argv: str, timeout: float = 300):
        return node.crictl(self.cluster.node, "exec", container_id(pod, container), *argv,
                           timeout=timeout)

    def head_pod(self, cluster_name: str) -> dict[str, Any]:
        (head,) = self.items("pods", f"ray.io/cluster={cluster_name},ray.io/node-type=head")
        return head

    def upgrade(self, name: str, values: dict[str, Any]) -> None:
        """helm upgrade with `values` layered over the release's (file `name` in its folder)."""
        path = values_file(self.folder, name, values)
        files = self.release.values_files
        # The test's files go before real-node.yaml and the images, as release_for orders them.
        changed = replace(self.release, values_files=(*files[:-2], path, *files[-2:]))
        result = upgrade(changed, self.cluster.layout.kubeconfig, MAJOR,
                         platform.upgrade_flags(MAJOR))
        assert result.returncode == 0, result.stderr
        self.release = changed

    def remove(self) -> None:
        uninstall(self.release, self.cluster.layout.kubeconfig, MAJOR)
        self.kubectl.run("delete", "namespace", self.namespace, "--wait=false", check=False)
        wait_for(f"namespace {self.namespace} and its pods gone",
                 lambda: self.kubectl.run("get", "namespace", self.namespace,
                                          check=False).returncode != 0, timeout=300)


def values_file(folder: Path, name: str, values: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def install(cluster: platform.RealCluster, chart: Path, folder: Path, namespace: str, name: str,
            values: dict[str, Any], base: tuple[Path, ...] = (VALUES_DIR / "dev.yaml",)
            ) -> OwnRelease:
    """helm install of `values` over `base` into a new restricted namespace (no --wait: the
    tests judge readiness from the operator's status and the containers)."""
    path = values_file(folder, f"{name}.yaml", values)
    release = platform.release_for(cluster, chart, (*base, path), namespace, name)
    cluster.kubectl.apply([restricted_namespace(namespace)])
    manifest = platform.install_release(cluster, release, MAJOR)
    return OwnRelease(cluster, release, folder, manifest)


@contextmanager
def own_release(cluster: platform.RealCluster, chart: Path, folder: Path, namespace: str,
                name: str, values: dict[str, Any],
                base: tuple[Path, ...] = (VALUES_DIR / "dev.yaml",)) -> Iterator[OwnRelease]:
    """install(), then remove() whatever happened, even a failed install."""
    try:
        own = install(cluster, chart, folder, namespace, name, values, base)
    except BaseException:
        helm_in(cluster.layout.kubeconfig, "uninstall", name, "-n", namespace, major=MAJOR)
        cluster.kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
        raise
    try:
        yield own
    finally:
        own.remove()


def manifest_of(own: OwnRelease) -> list[dict[str, Any]]:
    """What Helm last applied for the release (after an upgrade)."""
    return parse_manifests(helm_in(own.cluster.layout.kubeconfig, "get", "manifest",
                                   own.release.name, "-n", own.namespace, major=MAJOR).stdout)
