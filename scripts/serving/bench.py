"""Benchmark the Stable Diffusion Serve app with the tiny offline model on a local Ray (`make bench-serve`).

The same path as `make serve` and the Serve tests: the chart's rendered Serve config, adapted to the
tiny model on CPU and fitted to the local Ray's CPUs, on a private `ray start --head`. It prints:

- the cold start: seconds from the start of this program to the first image, in parts (the tiny
  pipeline written, `ray start`, the app RUNNING, the first image), and whether the runtime_env
  pip step ran;
- served vs direct, side by side: GET /imagine through the Serve proxy at each concurrency, next
  to the same pipeline called in this process with the same size, steps, guidance and torch
  threads as the replica (and the PNG encoding the replica does), one image per call at
  concurrency 1 and in batches of min(concurrency, max_batch_size) otherwise. At concurrency 8
  this runs --rounds times, alternating served and direct, so both see the same machine;
- batching on vs off at concurrency 8: served requests/s with the config's max_batch_size and
  with 1 (a user_config update, as a Helm upgrade does it), and the direct pipeline's own gain
  from batches, which bounds what batching can show on this hardware.

    python -m serving.bench [--concurrency 1 4 8] [--requests 32] [--rounds 3] [--img-size 64] [--steps 4]
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
from typing import Any, Dict, List

import requests

from serving import serve_api
from serving.direct_pipeline import Direct
from serving.local_ray import LocalRay
from serving.tiny_model import build_tiny_pipeline

SIDE_BY_SIDE_CONCURRENCY = 8


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def model_info(base):
    return requests.get(f"{base}/info", timeout=30).json()["model"]


def run_case(base, concurrency, n, params, time_limit_s):
    """n GET /imagine requests, concurrency at a time: requests/s, p50/p99 and the mean batch."""
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


def set_batching(ray: LocalRay, config: Dict[str, Any], max_batch_size: int) -> None:
    """Redeploy config with the model's max_batch_size (a user_config update) and wait for it."""
    cfg = copy.deepcopy(config)
    app = cfg["applications"][0]
    serve_api.find_deployment(app, serve_api.MODEL_DEPLOYMENT)["user_config"]["max_batch_size"] = max_batch_size
    serve_api.redeploy(ray, cfg, app["name"])
    base = serve_api.app_url(ray, cfg)
    deadline = time.monotonic() + 60
    while model_info(base)["config"]["max_batch_size"] != max_batch_size:
        if time.monotonic() > deadline:
            raise TimeoutError("the user_config update did not reach the replica")
        time.sleep(0.5)


def main(argv=None):
    started = time.monotonic()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, SIDE_BY_SIDE_CONCURRENCY])
    ap.add_argument("--requests", type=int, default=32, help="requests (and direct images) per case")
    ap.add_argument("--rounds", type=int, default=3, help="side-by-side rounds at concurrency 8")
    ap.add_argument("--warmup", type=int, default=4, help="unmeasured requests per case")
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    ap.add_argument("--time-limit", type=float, default=180.0, help="seconds per case")
    ap.add_argument("--values", nargs="*", default=[],
                    help="chart values files whose rendered Serve config is benchmarked (default: the chart's defaults)")
    args = ap.parse_args(argv)
    concurrencies = sorted(set(args.concurrency) | {SIDE_BY_SIDE_CONCURRENCY})
    params = {"img_size": args.img_size, "steps": args.steps}
    say = lambda line: print(line, flush=True)  # noqa: E731 - one-liner

    with tempfile.TemporaryDirectory(prefix="rpsd-bench-") as tmp:
        from harness.serveconfig import render_serve_config

        model_dir = build_tiny_pipeline(Path(tmp) / "tiny-sd")
        rendered = render_serve_config(Path(v) for v in args.values)
        pip = (rendered["applications"][0].get("runtime_env") or {}).get("pip") or []
        pip = pip["packages"] if isinstance(pip, dict) else pip
        missing = serve_api.missing_packages(pip)
        config = serve_api.adapt_for_local(rendered, model_dir, num_cpus=args.num_cpus)
        t_model = time.monotonic()
        with LocalRay(num_cpus=args.num_cpus) as ray:
            t_ray = time.monotonic()
            base = serve_api.deploy_app(ray, config)
            t_running = time.monotonic()
            first = requests.get(f"{base}/imagine", params={"prompt": "first", **params}, timeout=300)
            t_first = time.monotonic()
            if first.status_code != 200:
                raise RuntimeError(f"first image: HTTP {first.status_code}: {first.text[:500]}")
            pip_note = (f"runtime_env pip: all {len(pip)} packages of the chart's app.pip already "
                        "installed here, no pip step" if not missing else
                        f"runtime_env pip installs {missing} (the other {len(pip) - len(missing)} are installed here)")
            say(f"cold start: {t_first - started:.1f} s from start to the first image (tiny pipeline and "
                f"Serve config {t_model - started:.1f} s, ray start {t_ray - t_model:.1f} s, app RUNNING "
                f"{t_running - t_ray:.1f} s, first image {t_first - t_running:.1f} s); {pip_note}")

            info = model_info(base)
            guidance = requests.get(f"{base}/info", timeout=30).json()["ingress"]["default_guidance"]
            threads = int(info["torch_threads"] or 1)
            on = int(info["config"]["max_batch_size"])
            say(f"model replica: {info['pipeline']} on {info['device']} ({info['dtype']}), torch threads "
                f"{threads}, max_batch_size {on}, batch_wait_timeout_s {info['config']['batch_wait_timeout_s']}; "
                f"img_size {args.img_size}, steps {args.steps}, guidance {guidance}, {args.requests} requests per case")
            direct = Direct(str(model_dir), threads, params, guidance)

            def served(c: int) -> Dict[str, Any]:
                if args.warmup:
                    run_case(base, c, args.warmup, params, args.time_limit)
                return run_case(base, c, args.requests, params, args.time_limit)

            rows: List[tuple] = []
            ratios: Dict[str, List[float]] = {"on": [], "off": [], "direct_on": [], "direct_off": []}
            for label, mbs in (("on", on), ("off", 1)):
                set_batching(ray, config, mbs)
                for c in concurrencies:
                    batch = 1 if c == 1 else min(c, mbs)
                    rounds = args.rounds if c == SIDE_BY_SIDE_CONCURRENCY else 1
                    cases, images = [], []
                    for _ in range(rounds):  # served, then direct, then again: the same machine
                        cases.append(served(c))
                        images.append(direct.images_per_s(args.requests, batch))
                    row = {
                        "rps": statistics.median(r["rps"] for r in cases),
                        "p50_ms": statistics.median(r["p50_ms"] for r in cases),
                        "p99_ms": max(r["p99_ms"] for r in cases),
                        "mean_batch": statistics.mean(r["mean_batch"] for r in cases),
                        "errors": sum(r["errors"] for r in cases),
                        "direct": statistics.median(images),
                        "batch": batch, "rounds": rounds,
                    }
                    rows.append((label, mbs, c, row))
                    if c == SIDE_BY_SIDE_CONCURRENCY:
                        ratios[label] = [r["rps"] for r in cases]
                        ratios[f"direct_{label}"] = images
                    say(f"batching {label:3} concurrency {c}: served {row['rps']:.2f} req/s, direct "
                        f"{row['direct']:.2f} img/s (batches of {batch}) -> {row['rps'] / row['direct']:.2f}; "
                        f"p50 {row['p50_ms']:.0f} ms, mean batch {row['mean_batch']:.2f}, errors {row['errors']}")

    say(f"\nimg_size {args.img_size}, steps {args.steps}, {args.requests} requests per case, torch threads "
        f"{threads} (replica and direct); concurrency {SIDE_BY_SIDE_CONCURRENCY}: median of {args.rounds} "
        "side-by-side rounds")
    say("| batching | concurrency | served req/s | p50 ms | p99 ms | mean batch | errors | direct img/s (batch) | served/direct |")
    say("|---|---|---|---|---|---|---|---|---|")
    for label, mbs, c, r in rows:
        say(f"| {label} (max {mbs}) | {c} | {r['rps']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
            f"{r['mean_batch']:.2f} | {r['errors']} | {r['direct']:.2f} ({r['batch']}) | {r['rps'] / r['direct']:.2f} |")
    med = statistics.median
    served_direct = med(ratios["on"]) / med(ratios["direct_on"])
    batching = med(ratios["on"]) / med(ratios["off"])
    ceiling = med(ratios["direct_on"]) / med(ratios["direct_off"])
    say(f"\nserved/direct at concurrency {SIDE_BY_SIDE_CONCURRENCY} (batching on): {served_direct:.2f}")
    say(f"batching on/off at concurrency {SIDE_BY_SIDE_CONCURRENCY}: {batching:.2f}x served; the pipeline "
        f"itself, direct: {ceiling:.2f}x (batches of {min(SIDE_BY_SIDE_CONCURRENCY, on)} vs 1)")
    say(f"cold start: {t_first - started:.1f} s to the first image")
    return 0 if all(r["errors"] == 0 for _, _, _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
