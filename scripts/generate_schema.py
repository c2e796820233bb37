#!/usr/bin/env python3
"""Generate charts/ray-platform/values.schema.json from schemas/values.schema.yaml.

The YAML source carries descriptions and project-only `x-` keywords (read by the tests); the JSON
that Helm reads is the same schema without them. `--check` exits 1 when the committed JSON is
stale, which `make lint` and the test suite use.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generated_file import write_or_check  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "schemas" / "values.schema.yaml"
TARGET = REPO / "charts" / "ray-platform" / "values.schema.json"


def strip_project_keywords(node: Any) -> Any:
    """Drop `x-...` keys, except Kubernetes' own `x-kubernetes-*` ones, recursively."""
    if isinstance(node, dict):
        return {
            key: strip_project_keywords(value)
            for key, value in node.items()
            if not (key.startswith("x-") and key != "x-kubernetes-int-or-string")
        }
    if isinstance(node, list):
        return [strip_project_keywords(item) for item in node]
    return node


def load_source(path: Path = SOURCE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def render_json(source: dict[str, Any]) -> str:
    return json.dumps(strip_project_keywords(source), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    args = parser.parse_args(argv)
    return write_or_check(TARGET, render_json(load_source()), args.check)


if __name__ == "__main__":
    sys.exit(main())
