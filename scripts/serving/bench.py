"""Benchmark the Stable Diffusion Serve app with the tiny offline model on a local Ray.

Deploys the chart's rendered Serve config (adapted to the tiny model on CPU) on a
private `ray start --head`, then for batching on (the config's max_batch_size, or
--max-batch-size) and off (max_batch_size 1) and each concurrency level, sends a bounded
number of GET /imagine requests to 127.0.0.1 and prints requests/s, p50/p99 latency and
the mean batch size the model replica saw. Switching batching is a user_config update
(reconfigure), as a Helm upgrade of the chart would do it.

    python -m serving.bench [--concurrency 1 4 8] [--requests 32] [--img-size 64]   # make bench-serve
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from serving import serve_api
from serving.local_ray import LocalRay
from serving.tiny_model import build_tiny_pipeline


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def model_info(base):
    return requests.get(f"{base}/info", timeout=30).json()["model"]


def run_case(base, concurrency, n, params, time_limit_s):
    latencies, errors = [], 0
    deadline = time.monotonic() + time_limit_s

    def one(i):
        if time.monotonic() > deadline:
            return None
        t = time.perf_counter()
        r = requests.get(f"{base}/imagine", params={**params, "prompt": f"bench {i}",
                                                    "seed": i}, timeout=120)
        return (time.perf_counter() - t, r.status_code == 200)

    before = model_info(base)["batch_size_counts"]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for res in pool.map(one, range(n)):
            if res is None:
                continue
            latencies.append(res[0])
            errors += not res[1]
    wall = time.perf_counter() - started
    after = model_info(base)["batch_size_counts"]
    delta = {int(k): v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    batches = sum(delta.values())
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 99),
        "mean_batch": (sum(k * v for k, v in delta.items()) / batches) if batches else 0.0,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--requests", type=int, default=32, help="requests per case")
    ap.add_argument("--warmup", type=int, default=4, help="unmeasured requests per case")
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--max-batch-size", type=int, default=None,
                    help="max_batch_size for 'batching on' (default: the config's)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per case")
    ap.add_argument("--values", nargs="*", default=[],
                    help="chart values files whose rendered Serve config is benchmarked (default: the chart's defaults)")
    args = ap.parse_args(argv)

    params = {"img_size": args.img_size, "steps": args.steps}
    with tempfile.TemporaryDirectory(prefix="rpsd-bench-") as tmp:
        base_cfg = serve_api.chart_config_for_local(args.values, build_tiny_pipeline(Path(tmp) / "tiny-sd"))
        app = base_cfg["applications"][0]
        model_uc = serve_api.find_deployment(app, serve_api.MODEL_DEPLOYMENT)["user_config"]
        on = args.max_batch_size or model_uc.get("max_batch_size", 4)
        rows = []
        with LocalRay(num_cpus=2) as ray:
            for label, mbs in (("on", on), ("off", 1)):
                cfg = copy.deepcopy(base_cfg)
                uc = serve_api.find_deployment(cfg["applications"][0],
                                               serve_api.MODEL_DEPLOYMENT)["user_config"]
                uc["max_batch_size"] = mbs
                base = serve_api.deploy_app(ray, cfg)
                deadline = time.monotonic() + 60
                while model_info(base)["config"]["max_batch_size"] != mbs:
                    if time.monotonic() > deadline:
                        raise TimeoutError("user_config update did not reach the replica")
                    time.sleep(0.5)
                wait_s = uc.get("batch_wait_timeout_s", 0.1)
                info = model_info(base)
                print(f"model replica: {info['pipeline']} on {info['device']} ({info['dtype']}), "
                      f"torch threads {info['torch_threads']}, max_batch_size {mbs}", flush=True)
                for c in args.concurrency:
                    if args.warmup:
                        run_case(base, c, args.warmup, params, args.time_limit)
                    res = run_case(base, c, args.requests, params, args.time_limit)
                    rows.append((f"{label} (max {mbs}, wait {wait_s}s)", c, res))
                    print(f"batching {label:3} concurrency {c}: {res['rps']:.2f} req/s, "
                          f"p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms, "
                          f"mean batch {res['mean_batch']:.2f}, errors {res['errors']}",
                          flush=True)

    print(f"\nimg_size {args.img_size}, steps {args.steps}, {args.requests} requests per case")
    print("| batching | concurrency | req/s | p50 ms | p99 ms | mean batch | errors |")
    print("|---|---|---|---|---|---|---|")
    for label, c, r in rows:
        print(f"| {label} | {c} | {r['rps']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
              f"{r['mean_batch']:.2f} | {r['errors']} |")
    return 0 if all(r["errors"] == 0 for _, _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
