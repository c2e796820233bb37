"""Requests per second through the RayService the operator deployed, next to the same pipeline
called directly in one process: the overhead of Serve + HTTP as users get it from the chart.

On a fresh local cluster of its own: install values/dev.yaml (weights from the tiny pipeline),
put the real Ray head behind the Stable Diffusion RayService, wait until the operator reports it
Ready, then GET /imagine through the real Serve proxy at each concurrency (serving.bench's load
loop: the same one `make bench-serve` uses on a plain local Ray). The direct figure loads the
same pipeline folder in this process with the replica's torch thread count and calls it with
the same size, steps and guidance, one image per call and then in batches of the deployment's
max_batch_size. The ratio served/direct is printed per concurrency.

    python -m cluster.local.bench_serve [--concurrency 1 8] [--requests 24]   # make bench-serve

Numbers come from this machine with whatever else runs on it; the real Ray's shape is the
machine's (README, the local cluster).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from cluster.local import lifecycle, ray_head
from cluster.local.controlplane import Layout
from cluster.local.release import Release, helm_in, install, ray_targets, restricted_namespace
from cluster.local.up import chart_copy, local_values, wait_rayservice_ready
from harness.readiness import KubeFetcher, wait_until_ready
from harness.render import parse_manifests
from harness.tools import RELEASE, VALUES_DIR
from serving.bench import model_info, run_case

NAMESPACE = "bench-serve"


def direct_rps(model_dir: Path, params: dict[str, Any], guidance: float, threads: int,
               batch: int, images: int) -> float:
    """Images per second from the pipeline called in this process (no Ray, no HTTP)."""
    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(threads)
    pipe = StableDiffusionPipeline.from_pretrained(str(model_dir), torch_dtype=torch.float32,
                                                   local_files_only=True)
    pipe.set_progress_bar_config(disable=True)

    def call(count: int, seed: int) -> None:
        pipe([f"bench {seed + i}" for i in range(count)], height=params["img_size"],
             width=params["img_size"], num_inference_steps=params["steps"],
             guidance_scale=guidance,
             generator=[torch.Generator("cpu").manual_seed(seed + i) for i in range(count)])

    call(batch, 0)  # warm-up, unmeasured
    started, done = time.perf_counter(), 0
    while done < images:
        call(batch, done)
        done += batch
    return done / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=24, help="requests per case")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=180.0, help="seconds per case")
    args = parser.parse_args(argv)
    params = {"img_size": args.img_size, "steps": args.steps}
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731 - one-liner

    with tempfile.TemporaryDirectory(prefix="ray-platform-bench-serve-") as workdir:
        work = Path(workdir)
        layout = Layout(state_dir=work / "state", name="ray-platform-bench-serve")
        kubectl = lifecycle.up(layout, say=say)
        try:
            kubectl.apply([restricted_namespace(NAMESPACE)])
            release = Release(RELEASE, NAMESPACE, chart_copy(work),
                              (VALUES_DIR / "dev.yaml", local_values(work)))
            result = install(release, layout.kubeconfig, 4)
            if result.returncode != 0:
                raise RuntimeError(result.stderr)
            manifest = parse_manifests(helm_in(layout.kubeconfig, "get", "manifest", RELEASE,
                                               "-n", NAMESPACE, major=4).stdout)
            fetcher = KubeFetcher(str(layout.kubeconfig))
            wait_until_ready(ray_targets(fetcher, manifest, NAMESPACE), fetcher, timeout=300,
                             interval=2, report=say)
            service = next(o for o in manifest if o["kind"] == "RayService")["metadata"]["name"]
            started = time.monotonic()
            head = ray_head.start(layout, kubectl, NAMESPACE, service, say=say)
            wait_rayservice_ready(fetcher, service, NAMESPACE, 600, say)
            say(f"RayService Ready {time.monotonic() - started:.0f} s after its Ray head started")
            info = model_info(head.serve_url)
            # Requests leave guidance to the app's default; the direct calls use the same.
            guidance = requests.get(f"{head.serve_url}/info", timeout=30).json()["ingress"][
                "default_guidance"]
            threads = int(info.get("torch_threads") or 1)
            max_batch = int(info.get("config", {}).get("max_batch_size") or 1)
            served = {}
            for concurrency in args.concurrency:
                run_case(head.serve_url, concurrency, 4, params, args.time_limit)  # warm-up
                served[concurrency] = run_case(head.serve_url, concurrency, args.requests,
                                               params, args.time_limit)
                say(f"served c={concurrency}: {served[concurrency]}")
        finally:
            lifecycle.down(layout, say=say)
    direct_single = direct_rps(ray_head.TINY_MODEL_DIR, params, guidance, threads, 1,
                               args.requests)
    direct_batched = direct_rps(ray_head.TINY_MODEL_DIR, params, guidance, threads, max_batch,
                                args.requests)
    print(f"\nthrough the operator-deployed RayService (real Serve proxy, HTTP), img_size "
          f"{args.img_size}, steps {args.steps}, {args.requests} requests per case; direct: the "
          f"same pipeline in one process, {threads} torch threads")
    print("| concurrency | served req/s | p50 ms | p99 ms | mean batch | errors | direct img/s "
          "| served/direct |")
    print("|---|---|---|---|---|---|---|---|")
    failed = False
    for concurrency, row in served.items():
        # One request at a time is compared with one image per call; several at once with the
        # batches the deployment may form.
        direct = direct_single if concurrency == 1 else direct_batched
        print(f"| {concurrency} | {row['rps']:.2f} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} | "
              f"{row['mean_batch']:.2f} | {row['errors']} | {direct:.2f} | "
              f"{row['rps'] / direct:.2f} |")
        failed |= row["errors"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
