"""Write-or-check of a generated file: shared by the generators behind `make generate`, whose
`--check` mode (used by `make lint` and the tests) fails when the committed copy is stale."""
from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(target: Path, wanted: str, check: bool) -> int:
    """With check, 1 (and a line on stderr) when target differs from wanted; else write it."""
    current = target.read_text() if target.exists() else None
    if check:
        if current != wanted:
            print(f"{target} is stale: run `make generate`", file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(wanted)
        print(f"wrote {target}")
    return 0
