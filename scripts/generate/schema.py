"""Generate charts/ray-platform/values.schema.json from schemas/values.schema.yaml.

    python -m generate.schema [--check]

The YAML source carries descriptions and project-only `x-` keywords (read by the tests); the JSON
that Helm reads is the same schema without them, marked as generated in a `$comment`. `--check`
exits 1 when the committed JSON is stale, which `make lint` and the test suite use.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


from generate.generated_file import check_flag, marker, write_or_check
from harness.render import load_yaml
from harness.tools import CHART_DIR, SCHEMA_SOURCE

WHAT = "values.schema.json"
SOURCE = SCHEMA_SOURCE
TARGET = CHART_DIR / "values.schema.json"


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
    return load_yaml(path.read_text())


def render_json(source: dict[str, Any]) -> str:
    schema = strip_project_keywords(source)
    head = {key: schema.pop(key) for key in ("$schema",) if key in schema}
    head["$comment"] = marker("generate.schema", "schemas/values.schema.yaml")
    return json.dumps({**head, **schema}, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(TARGET, render_json(load_source()), check_flag(__doc__.splitlines()[0], argv))


if __name__ == "__main__":
    sys.exit(main())
