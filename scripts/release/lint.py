"""`make lint`: what chart-testing's `ct lint` checks, with the tools available offline.

helm lint (both majors, defaults and every scenario), the version increment against the last
release tag, yamllint on the chart's values, overlays and config, Chart.yaml against
schemas/chart.yamale, and the generated-files staleness checks.
Prints one line per check; exits 1 if any fails.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yamale
import yaml
from packaging.version import Version
from yamllint import linter
from yamllint.config import YamlLintConfig

from generate import generators
from harness import helm
from harness.render import Renderer
from harness.scenarios import scenarios
from harness.tools import CHART_DIR, REPO
from harness.versions import HELM_MAJORS
from release import upgrade_baseline


def helm_lint() -> list[str]:
    renderer = Renderer()
    try:
        failures = []
        for major in HELM_MAJORS:
            for scenario in scenarios():
                args = ["lint", "--strict", str(renderer.chart)]
                for path in scenario.values_files:
                    args += ["--values", str(path)]
                proc = helm.run(*args, major=major)
                if proc.returncode != 0:
                    failures.append(f"helm {major} lint {scenario}:\n{proc.stdout}{proc.stderr}")
        return failures
    finally:
        renderer.close()


def yaml_files() -> list[Path]:
    globs = ["charts/ray-platform/*.yaml", "charts/ray-platform/ci/*.yaml", "values/*.yaml",
             "schemas/*.yaml", "tests/data/*.yaml", "*.yaml", ".yamllint.yaml"]
    return sorted({path for pattern in globs for path in REPO.glob(pattern)})


def yamllint() -> list[str]:
    config = YamlLintConfig(file=str(REPO / ".yamllint.yaml"))
    failures = []
    for path in yaml_files():
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        for problem in linter.run(path.read_text(), config, str(path)):
            failures.append(f"{shown}:{problem.line}:{problem.column}: {problem.desc} ({problem.rule})")
    return failures


def chart_yaml_shape() -> list[str]:
    schema = yamale.make_schema(str(REPO / "schemas" / "chart.yamale"))
    data = yamale.make_data(str(CHART_DIR / "Chart.yaml"))
    try:
        yamale.validate(schema, data)
    except yamale.YamaleError as error:
        return [str(result) for result in error.results]
    return []


def generated_files() -> list[str]:
    return [f"{generator.WHAT} is stale: run `make generate`" for generator in generators()
            if generator.main(["--check"]) != 0]


def version_increment() -> list[str]:
    """What `ct lint --check-version-increment` checks: a chart changed since the last release
    tag has a higher version. No tag yet (the first release): nothing to compare."""
    tag = upgrade_baseline.last_release_tag()
    if tag is None:
        return []
    changed = subprocess.run(["git", "-C", str(REPO), "diff", "--quiet", tag, "--", str(CHART_DIR)],
                             check=False).returncode != 0
    released = Version(tag.removeprefix(upgrade_baseline.TAG_PREFIX))
    current = Version(yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"])
    if changed and current <= released:
        return [f"the chart changed since {tag} but its version {current} is not higher: bump Chart.yaml version"]
    return []


CHECKS = {"helm lint": helm_lint, "version increment": version_increment, "yamllint": yamllint, "Chart.yaml (yamale)": chart_yaml_shape,
          "generated files": generated_files}


def main() -> int:
    failed = False
    for name, check in CHECKS.items():
        problems = check()
        print(f"{'FAIL' if problems else 'ok  '} {name}")
        for problem in problems:
            print(f"       {problem}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
