"""Run the chart's Stable Diffusion app on a local Ray until Ctrl-C or SIGTERM (`make serve`).

    python -m serving [--values FILE ...] [--num-cpus 2]

Renders the chart's Serve config (with the values files), points it at a tiny random model on
CPU, fits it to the local Ray's CPUs, deploys it on a private `ray start --head` and prints
`Serving on http://127.0.0.1:<port>/imagine`. Ctrl-C (SIGINT) or SIGTERM stops every process of
that Ray (its own process session) and removes its temporary folder. Needs the serve
requirements (requirements/serve.txt).
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Optional

from serving import serve_api
from serving.local_ray import LocalRay
from serving.tiny_model import build_tiny_pipeline


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop(Exception):
    """Ctrl-C or SIGTERM: unwind, so every `with` block below cleans up."""


def _raise_stop(signum: int, _frame: Optional[FrameType]) -> None:
    # A second Ctrl-C must not cut the clean-up short (that would leave Ray processes behind).
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    parser.add_argument("--values", nargs="*", default=[], help="chart values files (default: the chart's defaults)")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args(argv)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    try:
        with tempfile.TemporaryDirectory(prefix="rpsd-run-") as tmp:
            print("building the tiny random pipeline and rendering the chart's Serve config ...", flush=True)
            config = serve_api.chart_config_for_local(args.values, build_tiny_pipeline(Path(tmp) / "tiny-sd"),
                                                      num_cpus=args.num_cpus)
            with LocalRay(num_cpus=args.num_cpus) as ray:
                print(f"Ray {ray.dashboard_url} (process session {ray.sid}, {ray.temp_dir}): deploying ...", flush=True)
                base = serve_api.deploy_app(ray, config)
                print(f"Serving on {base}/imagine\n"
                      f"  curl -o image.png '{base}/imagine?prompt=a+red+fox&img_size=64&steps=2'\n"
                      f"  (tiny random model on CPU: the images are noise). Ctrl-C stops this Ray.", flush=True)
                threading.Event().wait()  # until a signal interrupts it
    except Stop as e:
        print(f"stopped ({e}): every process of this Ray has ended", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
