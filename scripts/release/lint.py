"""`make lint`: chart-testing's `ct lint` on the chart, then what ct does not check.

ct lint runs .tools/bin/ct (built from its Go module by `make tools`) with the project's ct.yaml,
offline: `--charts charts/ray-platform`, no chart repositories (`--chart-repos=`, so no `helm
repo add`) and `--skip-helm-dependencies` (no `helm dependency build`: the kuberay-operator archive
cannot be fetched here), no maintainer validation (it asks the code host over the network) and
no version-increment check of its own (it compares git branches; the tag-based check below does
that job). What ct then checks: Chart.yaml against schemas/chart.yamale (yamale), yamllint on
Chart.yaml, values.yaml and ci/*-values.yaml, and `helm lint` (helm 4) with each ci values file.
What that leaves out: the subchart is not in charts/, so helm lint neither lints the
kuberay-operator chart with our values nor runs with --strict (it warns that the dependency is
missing).

What ct does not do, checked here:
- `helm lint --strict` with both helm majors, with the defaults and with each overlay in values/
  (ct lints the ci scenarios only), on the offline copy of the chart;
- yamllint on the YAML ct does not read (values/, schemas/, tests/data/, the root config files);
- the version increment against the last release tag;
- the generated files' staleness.
Prints one line per check (ct's verdict on the first); exits 1 if any fails.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml
from packaging.version import Version
from yamllint import linter
from yamllint.config import YamlLintConfig

from generate import generators
from harness import helm
from harness.render import Renderer
from harness.scenarios import Scenario, scenarios
from harness.tools import CHART_DIR, CI_VALUES_DIR, REPO, TOOLS_BIN, ToolMissing
from harness.versions import HELM_MAJORS
from release import upgrade_baseline

CT_TIMEOUT_S = 600


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    note: str = ""  # said after "ok" when nothing failed


# --- ct lint -----------------------------------------------------------------------------------------

def ct_arguments(chart_dir: Path = CHART_DIR) -> list[str]:
    """`ct lint` with ct.yaml, made offline (see the module docstring); paths relative to REPO."""
    shown = chart_dir.relative_to(REPO) if chart_dir.is_relative_to(REPO) else chart_dir
    return ["lint", "--config", "ct.yaml", "--charts", str(shown), "--chart-repos=",
            "--skip-helm-dependencies", "--validate-maintainers=false", "--check-version-increment=false",
            "--chart-yaml-schema", "schemas/chart.yamale", "--lint-conf", ".yamllint.yaml"]


def ct_environment(helm_dir: Path) -> dict[str, str]:
    """ct runs `helm`, `yamllint` and `yamale` from PATH: helm_dir's helm, the virtualenv's
    linters (the pinned ones), then the pinned tools. CT_* variables would override ct.yaml."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CT_")}
    env["PATH"] = os.pathsep.join([str(helm_dir), str(Path(sys.prefix) / "bin"), str(TOOLS_BIN),
                                   os.environ.get("PATH", os.defpath)])
    return env


def run_ct(chart_dir: Path = CHART_DIR, helm_major: int = HELM_MAJORS[-1]) -> subprocess.CompletedProcess[str]:
    ct = TOOLS_BIN / "ct"
    if not ct.is_file():
        raise ToolMissing(f"chart-testing is not built at {ct}: run `make tools`")
    with tempfile.TemporaryDirectory(prefix="ct-helm.") as helm_dir:
        (Path(helm_dir) / "helm").symlink_to(helm.binary(helm_major))
        return subprocess.run([str(ct), *ct_arguments(chart_dir)], cwd=REPO, env=ct_environment(Path(helm_dir)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=CT_TIMEOUT_S,
                              check=False)


def ct_verdict(proc: subprocess.CompletedProcess[str]) -> Verdict:
    """ct's result lines (✔︎/✖︎ per chart, then its last word); on failure what it printed before.
    ct v3.14.0 can drop what a fast-exiting yamale, yamllint or helm printed (its RunProcess
    closes the pipes while still relaying them); its own "Linting chart with values file" lines
    still say where it stopped."""
    lines = [line.strip() for line in (proc.stdout + (proc.stderr or "")).splitlines() if line.strip()]
    results = [line for line in lines if line.startswith(("✔︎", "✖︎"))]
    if proc.returncode == 0:
        return Verdict(note=" ".join(results + proc.stdout.strip().splitlines()[-1:]))
    explanation = [line for line in lines if not set(line) <= {"-"}][-25:]
    return Verdict([f"ct lint exited {proc.returncode}:", *explanation])


def ci_files_ct_skips(ci_dir: Path = CI_VALUES_DIR) -> list[str]:
    """ct lints ci/*-values.yaml only; the harness renders every ci/*.yaml."""
    return [f"{path.name}: ct lint skips it (name it *-values.yaml)"
            for path in sorted(ci_dir.glob("*.yaml")) if not path.name.endswith("-values.yaml")]


def ct_lint() -> Verdict:
    verdict = ct_verdict(run_ct())
    verdict.problems[:0] = ci_files_ct_skips()
    return verdict


# --- what ct does not check -----------------------------------------------------------------------

def strict_lint_scenarios() -> list[Scenario]:
    """The scenarios ct does not lint: the defaults and the overlays in values/."""
    return [scenario for scenario in scenarios()
            if not any(path.parent == CI_VALUES_DIR for path in scenario.values_files)]


def helm_lint() -> Verdict:
    renderer = Renderer()
    try:
        failures = []
        for major in HELM_MAJORS:
            for scenario in strict_lint_scenarios():
                args = ["lint", "--strict", str(renderer.chart)]
                for path in scenario.values_files:
                    args += ["--values", str(path)]
                proc = helm.run(*args, major=major)
                if proc.returncode != 0:
                    failures.append(f"helm {major} lint --strict {scenario}:\n{proc.stdout}{proc.stderr}")
        return Verdict(failures)
    finally:
        renderer.close()


def yaml_files() -> list[Path]:
    """YAML that ct lint does not read (it reads Chart.yaml, values.yaml and ci/*-values.yaml)."""
    globs = ["values/*.yaml", "schemas/*.yaml", "tests/data/*.yaml", "*.yaml", ".yamllint.yaml"]
    return sorted({path for pattern in globs for path in REPO.glob(pattern)})


def yamllint() -> Verdict:
    config = YamlLintConfig(file=str(REPO / ".yamllint.yaml"))
    failures = []
    for path in yaml_files():
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        for problem in linter.run(path.read_text(), config, str(path)):
            failures.append(f"{shown}:{problem.line}:{problem.column}: {problem.desc} ({problem.rule})")
    return Verdict(failures)


def generated_files() -> Verdict:
    return Verdict([f"{generator.WHAT} is stale: run `make generate`" for generator in generators()
                    if generator.main(["--check"]) != 0])


def version_increment() -> Verdict:
    """A chart changed since the last release tag has a higher version (ct's own check compares
    git branches and is off with --charts). No tag yet (the first release): nothing to compare."""
    tag = upgrade_baseline.last_release_tag()
    if tag is None:
        return Verdict()
    changed = subprocess.run(["git", "-C", str(REPO), "diff", "--quiet", tag, "--", str(CHART_DIR)],
                             check=False).returncode != 0
    released = Version(tag.removeprefix(upgrade_baseline.TAG_PREFIX))
    current = Version(yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"])
    if changed and current <= released:
        return Verdict([f"the chart changed since {tag} but its version {current} is not higher: bump Chart.yaml version"])
    return Verdict()


CHECKS: dict[str, Callable[[], Verdict]] = {
    "ct lint": ct_lint, "helm lint --strict (defaults, values/)": helm_lint, "version increment": version_increment,
    "yamllint (files ct does not read)": yamllint, "generated files": generated_files}


def main() -> int:
    failed = False
    for name, check in CHECKS.items():
        try:
            verdict = check()
        except ToolMissing as missing:
            verdict = Verdict([str(missing)])
        if verdict.problems:
            print(f"FAIL {name}")
        else:
            print(f"ok   {name}" + (f": {verdict.note}" if verdict.note else ""))
        for problem in verdict.problems:
            print(f"       {problem}")
        failed |= bool(verdict.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
