"""python -m cluster.local up|down [--state-dir DIR] [--name NAME]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cluster.local import lifecycle
from cluster.local.controlplane import DEFAULT_NAME, DEFAULT_STATE_DIR, Layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.local", description=__doc__)
    parser.add_argument("command", choices=("up", "down"))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--name", default=DEFAULT_NAME)
    args = parser.parse_args(argv)
    layout = Layout(state_dir=args.state_dir.resolve(), name=args.name)
    if args.command == "up":
        lifecycle.up(layout)
        print(f"kubeconfig: {layout.kubeconfig}")
    else:
        lifecycle.down(layout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
