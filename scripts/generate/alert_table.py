"""Generate the alert table of README.md's Monitoring section from the chart's PrometheusRule.

    python -m generate.alert_table           # rewrite the table between the markers
    python -m generate.alert_table --check   # exit 1 when the committed table is stale

The rules are rendered with the chart's defaults (as if the cluster served monitoring.coreos.com/v1),
so the table shows exactly what is installed: alert, severity, how long the condition must hold,
the default threshold, and the summary with its labels as <placeholders>.
"""
from __future__ import annotations

import re
import sys

from generate.generated_file import between_markers, check_flag, marker, write_or_check
from harness.monitoring import alerts
from harness.render import Renderer, RenderRequest, load_yaml
from harness.tools import CHART_DIR, REPO

WHAT = "README.md alert table"
README = REPO / "README.md"
START = f"<!-- alert-table:start: {marker('generate.alert_table', 'the rendered PrometheusRule')} -->"
END = "<!-- alert-table:end -->"


def _placeholders(text: str) -> str:
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", r"`<\1>`", text)
    text = re.sub(r"\{\{\s*\$value[^}]*\}\}", "`<value>`", text)
    return text


def _threshold(settings: dict) -> str:
    parts = []
    if "threshold" in settings:
        parts.append(f"`{settings['threshold']}`")
    if "minRequestRate" in settings:
        parts.append(f"(from `{settings['minRequestRate']}` req/s)")
    return " ".join(parts) or "-"


def table() -> str:
    renderer = Renderer()
    try:
        objects = renderer.render(RenderRequest((), 4, api_versions=("monitoring.coreos.com/v1",)))
    finally:
        renderer.close()
    settings = load_yaml((CHART_DIR / "values.yaml").read_text())["monitoring"]["prometheusRule"]["alerts"]
    lines = ["| alert | severity | for | threshold | summary |", "|---|---|---|---|---|"]
    for alert in alerts(objects):
        name = alert["alert"]
        lines.append(f"| [`{name}`](docs/runbook.md#{name.lower()}) | {alert['labels']['severity']} | {alert['for']} "
                     f"| {_threshold(settings[name])} | {_placeholders(alert['annotations']['summary'])} |")
    return "\n".join(lines)


def updated(readme: str, generated: str) -> str:
    return between_markers(readme, START, END, generated, README, "alert table")


def main(argv: list[str] | None = None) -> int:
    return write_or_check(README, updated(README.read_text(), table()), check_flag(__doc__.splitlines()[0], argv))


if __name__ == "__main__":
    sys.exit(main())
