"""Run the chart's Stable Diffusion app on a local Ray until Ctrl-C.

    python -m serving [--values FILE ...] [--num-cpus 2]

Renders the chart's Serve config (with the values files), points it at a tiny random model on
CPU, deploys it on a private `ray start --head` and prints where to call it. Needs the serve
requirements (requirements/serve.txt).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from serving import serve_api
from serving.local_ray import LocalRay
from serving.tiny_model import build_tiny_pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    parser.add_argument("--values", nargs="*", default=[], help="chart values files (default: the chart's defaults)")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rpsd-run-") as tmp:
        config = serve_api.chart_config_for_local(args.values, build_tiny_pipeline(Path(tmp) / "tiny-sd"))
        with LocalRay(num_cpus=args.num_cpus) as ray:
            base = serve_api.deploy_app(ray, config)
            print(f"{config['applications'][0]['name']} is running (tiny random model, CPU): "
                  f"curl -o image.png '{base}/imagine?prompt=a+red+fox&img_size=64&steps=2'\n"
                  f"Ray dashboard: {ray.dashboard_url}. Ctrl-C stops this Ray.", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
