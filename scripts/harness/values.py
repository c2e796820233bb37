"""The values a release gets: the chart's values.yaml with values files merged over it in order,
the way helm coalesces them (maps merge key by key, anything else is replaced, a null removes the
key), for checks that read values rather than rendered objects."""
from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Iterable

from harness.render import load_yaml
from harness.tools import CHART_DIR


def merge(base: Any, overlay: Any) -> Any:
    """overlay over base, as helm merges a values file over the values before it."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(base.get(key), value) if key in base else value
    return merged


@functools.lru_cache(maxsize=8)
def _defaults(path: Path, mtime_ns: int) -> dict[str, Any]:
    return load_yaml(path.read_text()) or {}


def merged_values(values_files: Iterable[Path], chart_dir: Path = CHART_DIR) -> dict[str, Any]:
    defaults = chart_dir / "values.yaml"
    values = copy.deepcopy(_defaults(defaults, defaults.stat().st_mtime_ns))
    for path in values_files:
        values = merge(values, load_yaml(Path(path).read_text()) or {})
    return values
