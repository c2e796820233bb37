"""`make bench-cluster`: seconds from `helm install` to RayCluster ready on a fresh local cluster.

    python -m cluster.local.bench [--workers 100] [--helm 4]

Runs values/dev.yaml as it is, then with its CPU worker group at --workers replicas, and prints
the time of each and the cost per extra worker pod. Simulated nodes: this measures the API
server, scheduler, operator and kwok, not pods starting containers.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from cluster.local import fleet, lifecycle
from cluster.local.controlplane import Layout
from cluster.local.release import Release, install, restricted_namespace
from harness.readiness import KubeFetcher, Target, wait_until_ready
from harness.render import make_offline_copy
from harness.tools import CHART_DIR, RELEASE, VALUES_DIR

BENCH_FLEET = fleet.Fleet(pools=(fleet.Pool("cpu", 4, "64", "256Gi"),
                                 fleet.Pool("gpu", 1, "32", "128Gi", gpus=4)), volumes=4)


def time_to_ready(layout: Layout, chart: Path, namespace: str, set_values: tuple[str, ...],
                  major: int) -> float:
    kubectl = lifecycle.kubectl_for(layout)
    kubectl.apply([restricted_namespace(namespace)])
    release = Release(RELEASE, namespace, chart, (VALUES_DIR / "dev.yaml",),
                      ("kuberay-operator.enabled=false", *set_values))
    started = time.monotonic()
    result = install(release, layout.kubeconfig, major)
    if result.returncode != 0:
        raise SystemExit(f"helm install failed: {result.stderr}")
    wait_until_ready([Target("RayCluster", RELEASE, namespace)], KubeFetcher(str(layout.kubeconfig)),
                     timeout=900, interval=0.5, report=lambda _line: None)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--helm", type=int, choices=(3, 4), default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ray-platform-bench-") as workdir:
        layout = Layout(state_dir=Path(workdir) / "state", name="ray-platform-bench")
        started = time.monotonic()
        lifecycle.up(layout, BENCH_FLEET, say=lambda _line: None)
        print(f"local cluster up (control plane, {sum(p.count for p in BENCH_FLEET.pools)} "
              f"simulated nodes, operator): {time.monotonic() - started:.1f} s")
        try:
            chart = make_offline_copy(CHART_DIR, Path(workdir) / "chart")
            dev = time_to_ready(layout, chart, "bench-dev", (), args.helm)
            print(f"values/dev.yaml (head + 1 worker): helm install -> RayCluster ready "
                  f"{dev:.1f} s")
            n = args.workers
            group = "rayCluster.workerGroups.cpu"
            big = time_to_ready(layout, chart, "bench-big",
                                (f"{group}.replicas={n}", f"{group}.minReplicas={n}",
                                 f"{group}.maxReplicas={n}"), args.helm)
            print(f"values/dev.yaml with {n} workers: helm install -> RayCluster ready "
                  f"{big:.1f} s")
            print(f"cost per extra worker pod: {(big - dev) / max(n - 1, 1) * 1000:.0f} ms")
        finally:
            lifecycle.down(layout, say=lambda _line: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
