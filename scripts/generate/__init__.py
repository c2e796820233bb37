"""Every generated file of the project, each written from its one source (`make generate`, i.e.
`python -m generate`) and checked with `--check` by `make lint` and the tests:

- schema:          schemas/values.schema.yaml -> charts/ray-platform/values.schema.json
- values_comments: the schema's descriptions -> the comment above each key of values.yaml
- values_docs:     the schema and values.yaml -> docs/values.md
- chart_readme:    Chart.yaml, the overlays, the schema -> charts/ray-platform/README.md
- dashboards:      Python code -> charts/ray-platform/files/dashboards/*.json
- alert_table:     the rendered PrometheusRule -> README.md's alert table
- reachability_table: the rendered NetworkPolicies (tests/node's release) -> README.md's
                   reachability table
- artifacthub:     CHANGELOG.md, values.yaml, keys/ray-platform-release.asc -> Chart.yaml's
                   artifacthub.io annotations

Each module has `WHAT` (what it writes) and `main(argv)`; descriptions.py reads the schema for
the values generators, generated_file.py writes or checks.
"""
from __future__ import annotations

from types import ModuleType


def generators() -> list[ModuleType]:
    """The generator modules, in the order `make generate` runs them."""
    from generate import (alert_table, artifacthub, chart_readme, dashboards, reachability_table,
                          schema, values_comments, values_docs)

    return [schema, values_comments, values_docs, chart_readme, dashboards, alert_table,
            reachability_table, artifacthub]
