"""`make bench-serve`, second part: requests per second through the Stable Diffusion RayService
the KubeRay operator deployed on the real node (every Ray process a container), next to the same
pipeline called directly inside the container that holds the model replica.

On a local cluster of its own: install values/dev.yaml (+ values/local/real-node.yaml: the tiny
pipeline in the ray-serve image), wait until the operator reports the RayService Ready, then GET
/imagine through the Serve Service (a forward from this machine into the node's namespace) at each
concurrency with serving.bench's load loop. The direct figure runs serving/direct_pipeline.py in
the replica's own container (its image, CPU limit and torch threads), one image per call at
concurrency 1 and batches of max_batch_size above it; served and direct alternate, round by round.
Then `helm upgrade` sets max_batch_size 1 (applied in place as a user_config change) and the same
cases run with batching off.

    python -m cluster.node.bench_serve [--concurrency 1 8] [--requests 24] [--rounds 3]

The cluster's image store is its own, emptied at the start and the end (imports included).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import requests

from cluster.local.release import objects_of_kind
from cluster.local.up import serve_route_prefix
from cluster.node import node, platform
from harness.render import make_offline_copy
from harness.tools import CHART_DIR, REPO, VALUES_DIR
from serving.bench import model_info, run_case

NAMESPACE = "bench-serve"
DIRECT_SCRIPT = REPO / "scripts" / "serving" / "direct_pipeline.py"
Say = Callable[[str], None]


def replica_container(cluster: platform.RealCluster, host: str) -> str:
    """The Ray container of the pod whose hostname the model replica reported (/info "host")."""
    pod = cluster.kubectl.get("pod", host, "-n", NAMESPACE)
    ray_container = pod["spec"]["containers"][0]["name"]
    status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == ray_container)
    return status["containerID"].split("://", 1)[1]


def direct_rps(cluster: platform.RealCluster, container: str, info: dict[str, Any],
               params: dict[str, Any], guidance: float, images: int, batch: int) -> float:
    argv = ["python3", "-c", DIRECT_SCRIPT.read_text(), "--model-dir", info["config"]["model_id"],
            "--threads", str(info["torch_threads"]), "--img-size", str(params["img_size"]),
            "--steps", str(params["steps"]), "--guidance", str(guidance), "--images", str(images),
            "--batch", str(batch)]
    result = node.crictl(cluster.node, "exec", container, *argv, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"direct pipeline in container {container[:12]}: {result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])[str(batch)]


def wait_batch_size(base: str, size: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while model_info(base).get("config", {}).get("max_batch_size") != size:
        if time.monotonic() > deadline:
            raise TimeoutError(f"max_batch_size {size} did not reach the replica")
        time.sleep(2)


def measure(cluster: platform.RealCluster, base: str, args: argparse.Namespace,
            params: dict[str, Any], label: str, say: Say) -> list[dict[str, Any]]:
    info = model_info(base)
    guidance = requests.get(f"{base}/info", timeout=30).json()["ingress"]["default_guidance"]
    container = replica_container(cluster, info["host"])
    max_batch = int(info["config"]["max_batch_size"])
    say(f"batching {label}: replica in pod {info['host']}, torch threads {info['torch_threads']}, "
        f"max_batch_size {max_batch}, batch_wait_timeout_s {info['config']['batch_wait_timeout_s']}")
    rows = []
    for concurrency in args.concurrency:
        batch = 1 if concurrency == 1 else min(concurrency, max_batch)
        served, direct = [], []
        for _ in range(args.rounds):
            run_case(base, concurrency, 4, params, args.time_limit)  # warm-up, unmeasured
            served.append(run_case(base, concurrency, args.requests, params, args.time_limit))
            direct.append(direct_rps(cluster, container, info, params, guidance, args.requests,
                                     batch))
        row = {"label": label, "max_batch": max_batch, "concurrency": concurrency,
               "batch": batch, "rounds": args.rounds,
               "rps": statistics.median(r["rps"] for r in served),
               "p50_ms": statistics.median(r["p50_ms"] for r in served),
               "p99_ms": max(r["p99_ms"] for r in served),
               "mean_batch": statistics.mean(r["mean_batch"] for r in served),
               "errors": sum(r["errors"] for r in served),
               "direct": statistics.median(direct)}
        say(f"  c={concurrency}: served {[round(r['rps'], 2) for r in served]} req/s, direct "
            f"{[round(d, 2) for d in direct]} img/s (batches of {batch}) -> "
            f"{row['rps'] / row['direct']:.2f}")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=24, help="requests (and direct images) per case")
    parser.add_argument("--rounds", type=int, default=3, help="served/direct rounds per case")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=180.0, help="seconds per case")
    args = parser.parse_args(argv)
    params = {"img_size": args.img_size, "steps": args.steps}
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731 - one-liner

    with tempfile.TemporaryDirectory(prefix="ray-platform-bench-serve-") as workdir:
        with platform.cluster_of_its_own(Path(workdir), "ray-platform-bench-serve", say,
                                         say) as cluster:
            chart = make_offline_copy(CHART_DIR, Path(workdir) / "chart")
            release = platform.release_for(cluster, chart, (VALUES_DIR / "dev.yaml",), NAMESPACE)
            manifest = platform.install_release(cluster, release)
            platform.wait_clusters(cluster, manifest, NAMESPACE, 1200, say)
            service = objects_of_kind(manifest, "RayService")[0]
            name = service["metadata"]["name"]
            started = time.monotonic()
            platform.wait_rayservice(cluster, name, NAMESPACE, 900, say)
            say(f"RayService Ready {time.monotonic() - started:.0f} s after its RayCluster")
            address = platform.service_ip(cluster.kubectl, f"{name}-serve-svc", NAMESPACE)
            base = (node.expose(cluster.node, name, address, 8000)
                    + serve_route_prefix(service).rstrip("/"))
            rows = measure(cluster, base, args, params, "on", say)
            off = replace(release, set_values=(
                *release.set_values, "stableDiffusion.model.userConfig.max_batch_size=1"))
            platform.install_release(cluster, off)
            wait_batch_size(base, 1)
            rows += measure(cluster, base, args, params, "off", say)
    print(f"\nthrough the RayService the operator deployed on the real node (Serve proxy in a "
          f"container, the Serve Service forwarded to this machine); img_size {args.img_size}, "
          f"steps {args.steps}, {args.requests} requests per case, median of {args.rounds} rounds; "
          "direct: the same pipeline in the replica's container")
    print("| batching | concurrency | served req/s | p50 ms | p99 ms | mean batch | errors "
          "| direct img/s (batch) | served/direct |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} (max {r['max_batch']}) | {r['concurrency']} | {r['rps']:.2f} | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['mean_batch']:.2f} | {r['errors']} | "
              f"{r['direct']:.2f} ({r['batch']}) | {r['rps'] / r['direct']:.2f} |")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
