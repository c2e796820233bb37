"""Generate docs/values.md, the values reference, from schemas/values.schema.yaml and the chart's
values.yaml: one row per key with its type, default and description.

    python -m generate.values_docs [--check]

`--check` exits 1 when the committed file is stale (`make lint` and the tests use it).
"""
from __future__ import annotations

import sys

from generate.descriptions import values_table
from generate.generated_file import check_flag, marker, write_or_check
from harness.tools import REPO

WHAT = "docs/values.md"
TARGET = REPO / "docs" / "values.md"

HEADER = f"""<!-- {marker("generate.values_docs", "schemas/values.schema.yaml and charts/ray-platform/values.yaml")} -->
# Values reference

Every key of the chart, from `schemas/values.schema.yaml` (descriptions, types) and
`charts/ray-platform/values.yaml` (defaults). `<name>` stands for a key you choose (a worker
group's name).

"""


def render() -> str:
    return HEADER + values_table()


def main(argv: list[str] | None = None) -> int:
    return write_or_check(TARGET, render(), check_flag(__doc__.splitlines()[0], argv))


if __name__ == "__main__":
    sys.exit(main())
