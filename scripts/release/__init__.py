"""Releasing the chart: `make lint` (lint.py: what `ct lint` checks, with the tools pinned here),
`make package` / `make repo-index` (package_chart.py) and the previous release's stateful objects
for the upgrade-safety test (upgrade_baseline.py)."""
