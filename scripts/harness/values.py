"""The values a release gets: the chart's values.yaml with values files merged over it in order,
the way helm coalesces them (maps merge key by key, anything else is replaced, a null removes the
key), for checks that read values rather than rendered objects."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

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


def merged_values(values_files: Iterable[Path], chart_dir: Path = CHART_DIR) -> dict[str, Any]:
    values = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    for path in values_files:
        values = merge(values, yaml.safe_load(Path(path).read_text()) or {})
    return values
