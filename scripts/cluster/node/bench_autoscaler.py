"""`make bench-cluster`, third part: the in-tree Ray autoscaler on the real node, timed for each
version the chart offers (autoscaler.version v1 and v2). The chart's RayCluster alone, one 1-CPU
worker (minReplicas 1, maxReplicas 2), idleTimeoutSeconds 20; a driver in the head container asks
for two CPUs on distinct nodes (cluster/node/autoscaling.py). Printed, in seconds:

    demand -> the group's replicas raised (the autoscaler's decision, read from the RayCluster)
           -> the new worker pod created (the operator)
           -> the first task on the new worker started (pod scheduled, container started, Ray
              node joined, worker process up)
    idle   -> the replicas lowered back to minReplicas (idleTimeoutSeconds included)
           -> the worker's pod gone

    python -m cluster.node.bench_autoscaler [--rounds 1] [--idle-timeout 20]

On a local cluster of its own, whose image store (the operator, pause and Ray images only) is
emptied at the start and the end, like cluster/node/bench.py. A 2-core machine shared with other
work: the numbers are this machine's.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import yaml

from cluster.local.release import restricted_namespace, uninstall
from cluster.node import autoscaling, platform
from harness.render import make_offline_copy
from harness.tools import CHART_DIR, VALUES_DIR

RELEASE = "bench-as"
# What the bench runs: the operator and Ray pods (the Stable Diffusion service is off). Importing
# only these keeps the cluster's store at about 1.5 GB instead of the ray-serve image's 14.
IMAGES = ("pause", "ray", "kuberay-operator")
CLUSTER = f"{RELEASE}-ray-platform"
Say = Callable[[str], None]
Row = tuple[str, autoscaling.ScaleUp, autoscaling.ScaleDown]


def one_round(cluster: platform.RealCluster, chart: Path, folder: Path, version: str,
              idle_timeout: int, say: Say) -> Row:
    namespace = f"bench-autoscaler-{version}"
    values = folder / f"autoscaler-{version}.yaml"
    values.write_text(yaml.safe_dump(autoscaling.values(version, idle_timeout)))
    # release_for writes every image's values, ray-serve's included: the Stable Diffusion
    # service is off here, so the ray image stands in for the one this cluster never imported.
    images = {**cluster.images, "ray-serve": cluster.images["ray"]}
    release = platform.release_for(replace(cluster, images=images), chart,
                                   (VALUES_DIR / "dev.yaml", values), namespace, RELEASE)
    cluster.kubectl.apply([restricted_namespace(namespace)])
    manifest = platform.install_release(cluster, release)
    try:
        platform.wait_clusters(cluster, manifest, namespace, autoscaling.DEADLINE,
                               lambda _line: None)
        autoscaling.wait_nodes_alive(cluster, namespace, CLUSTER, 1 + autoscaling.MIN_REPLICAS)
        runs = autoscaling.running_version(cluster, namespace, CLUSTER)
        if runs != version:
            raise RuntimeError(f"autoscaler.version {version}, but Ray runs {runs}")
        up = autoscaling.scale_up(cluster, namespace, CLUSTER)
        down = autoscaling.scale_down(cluster, namespace, CLUSTER, up.done)
        decisions = autoscaling.autoscaler_decisions(cluster, namespace, CLUSTER)
    finally:
        uninstall(release, cluster.layout.kubeconfig, 4)
        cluster.kubectl.run("delete", "namespace", namespace, "--wait=true", "--timeout=300s",
                            check=False, timeout=360)
    say(f"  {version}: demand -> first task on the new worker {up.first_task - up.demand:.1f} s; "
        f"idle -> pod gone {down.pod_gone - up.done:.1f} s; the autoscaler's log said:")
    for line in decisions[-8:]:
        say(f"    {line[:160]}")
    say("  `ray status` in the head once the operator had created the new worker's pod:")
    for line in up.status_while_scaling.splitlines():
        say(f"    {line}")
    return version, up, down


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="scale-ups per version")
    parser.add_argument("--idle-timeout", type=int, default=autoscaling.IDLE_TIMEOUT,
                        help="autoscaler.idleTimeoutSeconds (seconds)")
    args = parser.parse_args(argv)
    say = lambda line: print(line, flush=True)  # noqa: E731 - one-liner
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ray-platform-bench-autoscaler-") as workdir:
        started = time.monotonic()
        with platform.cluster_of_its_own(Path(workdir), "ray-platform-bench-autoscaler",
                                         lambda line: say(f"  {line}"), lambda _line: None,
                                         IMAGES) as cluster:
            say(f"control plane, real node and operator pod: {time.monotonic() - started:.1f} s")
            chart = make_offline_copy(CHART_DIR, Path(workdir) / "chart")
            for round_ in range(args.rounds):
                for version in autoscaling.VERSIONS:
                    say(f"round {round_ + 1}, autoscaler {version}:")
                    rows.append(one_round(cluster, chart, Path(workdir), version,
                                          args.idle_timeout, say))
    print(f"\nidleTimeoutSeconds {args.idle_timeout}; seconds from the demand (a placement group "
          "of two 1-CPU bundles on distinct nodes, one 1-CPU worker running) and from idle:\n")
    print("| autoscaler | demand -> replicas raised | -> pod created | -> first task on the new "
          "worker | idle -> replicas lowered | -> pod gone |")
    print("|---|---|---|---|---|---|")
    for version, up, down in rows:
        print(f"| {version} | {up.replicas_raised - up.demand:.1f} | "
              f"{up.pod_created - up.demand:.1f} | {up.first_task - up.demand:.1f} | "
              f"{down.replicas_lowered - up.done:.1f} | {down.pod_gone - up.done:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
