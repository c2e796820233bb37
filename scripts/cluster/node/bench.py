"""`make bench-cluster`, second part: on the real node, seconds from `helm install` of the dev
release (values/dev.yaml + values/local/real-node.yaml) to every container of it ready, and to
`ray status` in each RayCluster's head listing every worker; first with the images just imported
into an empty containerd store (cold), then installed again once they are there (warm).

    python -m cluster.node.bench [--rounds 2]

Real containers on a 2-core machine: the numbers are this machine's, with whatever else runs on
it. The bench cluster's image store is its own and removed at the start and the end, so every run
starts cold and leaves no image copy behind.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from cluster.local.release import uninstall
from cluster.node import platform, ray_status
from harness.render import make_offline_copy
from harness.tools import CHART_DIR, VALUES_DIR

NAMESPACE = "bench-node"
Say = Callable[[str], None]


def wait_until(check: Callable[[], bool], what: str, timeout: float, interval: float = 1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def every_worker_listed(cluster: platform.RealCluster, name: str) -> bool:
    pods = cluster.kubectl.get("pods", "-n", NAMESPACE, "-l", f"ray.io/cluster={name}")["items"]
    heads = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "head"]
    if len(heads) != 1 or not platform.containers_ready(heads):
        return False
    answer = ray_status.ray_status(cluster.node, heads[0])
    return (answer.returncode == 0 and "Active:" in answer.stdout
            and ray_status.live_nodes(answer.stdout) == len(pods))


def one_install(cluster: platform.RealCluster, chart: Path, say: Say) -> tuple[float, float]:
    release = platform.release_for(cluster, chart, (VALUES_DIR / "dev.yaml",), NAMESPACE)
    started = time.monotonic()
    manifest = platform.install_release(cluster, release)
    platform.wait_clusters(cluster, manifest, NAMESPACE, 1200, lambda _line: None)
    wait_until(lambda: platform.containers_ready(
        cluster.kubectl.get("pods", "-n", NAMESPACE)["items"]),
               "every container of the release ready", 600)
    containers = time.monotonic() - started
    for ray_cluster in cluster.kubectl.get("rayclusters", "-n", NAMESPACE)["items"]:
        name = ray_cluster["metadata"]["name"]
        wait_until(lambda: every_worker_listed(cluster, name),
                   f"ray status in {name}'s head listing every worker", 600, interval=2)
    listed = time.monotonic() - started
    say(f"  helm install -> every container ready {containers:.1f} s; -> ray status lists every "
        f"worker {listed:.1f} s")
    result = uninstall(release, cluster.layout.kubeconfig, 4)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    wait_until(lambda: not cluster.kubectl.get("pods", "-n", NAMESPACE)["items"],
               "the release's pods gone after helm uninstall", 300, interval=2)
    return containers, listed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2,
                        help="installs: the first with freshly imported images, then warm ones")
    args = parser.parse_args(argv)
    say = lambda line: print(line, flush=True)  # noqa: E731 - one-liner
    with tempfile.TemporaryDirectory(prefix="ray-platform-bench-node-") as workdir:
        started = time.monotonic()
        with platform.cluster_of_its_own(Path(workdir), "ray-platform-bench-node",
                                         lambda line: say(f"  {line}"),
                                         lambda _line: None) as cluster:
            say(f"control plane, real node (images imported into an empty store) and operator "
                f"pod: {time.monotonic() - started:.1f} s")
            chart = make_offline_copy(CHART_DIR, Path(workdir) / "chart")
            rows = []
            for round_ in range(args.rounds):
                say(f"install {round_ + 1} ({'images just imported' if round_ == 0 else 'warm'}):")
                rows.append(one_install(cluster, chart, say))
    print("\n| install | helm install -> every container ready | -> ray status lists every "
          "worker |")
    print("|---|---|---|")
    for round_, (containers, listed) in enumerate(rows):
        print(f"| {'first (images just imported)' if round_ == 0 else f'{round_ + 1} (warm)'} "
              f"| {containers:.1f} s | {listed:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
