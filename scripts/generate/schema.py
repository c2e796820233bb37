"""Generate charts/ray-platform/values.schema.json from schemas/values.schema.yaml and the
fragments beside it in schemas/values/ (one per feature: its top-level keys and definitions).

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
    """The schema source with every fragment of schemas/values/*.yaml merged in. A fragment holds
    `properties` (top-level values keys) and `definitions`; a name declared twice is an error, so
    a fragment never silently replaces a key of another."""
    source = load_yaml(path.read_text())
    for fragment_path in sorted((path.parent / "values").glob("*.yaml")):
        fragment = load_yaml(fragment_path.read_text()) or {}
        unknown = set(fragment) - {"properties", "definitions"}
        if unknown:
            raise ValueError(f"{fragment_path}: only properties and definitions, not {sorted(unknown)}")
        for section in ("properties", "definitions"):
            target = source.setdefault(section, {})
            for name, node in (fragment.get(section) or {}).items():
                if name in target:
                    raise ValueError(f"{fragment_path}: {section}.{name} is declared twice")
                target[name] = node
    return source


def render_json(source: dict[str, Any]) -> str:
    schema = strip_project_keywords(source)
    head = {key: schema.pop(key) for key in ("$schema",) if key in schema}
    head["$comment"] = marker("generate.schema", "schemas/values.schema.yaml")
    return json.dumps({**head, **schema}, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(TARGET, render_json(load_source()), check_flag(__doc__.splitlines()[0], argv))


if __name__ == "__main__":
    sys.exit(main())
