"""`make lint`'s checks run in the test suite too, so CI enforces them: chart-testing's real
`ct lint` (offline), and what ct does not check."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.tools import CHART_DIR, CI_VALUES_DIR, REPO
from release import lint


@pytest.mark.parametrize("name", sorted(lint.CHECKS))
def test_lint_check_passes(name: str) -> None:
    verdict = lint.CHECKS[name]()
    assert not verdict.problems, "\n".join(verdict.problems)


def test_ct_lint_runs_offline_with_the_projects_config() -> None:
    args = lint.ct_arguments()
    config = yaml.safe_load((REPO / "ct.yaml").read_text())
    assert args[:5] == ["lint", "--config", "ct.yaml", "--charts", "charts/ray-platform"]
    assert {"--chart-repos=", "--skip-helm-dependencies", "--validate-maintainers=false",
            "--check-version-increment=false"} <= set(args)
    # The same schema and yamllint config as ct.yaml names for CI systems that run ct themselves.
    assert args[args.index("--chart-yaml-schema") + 1] == config["chart-yaml-schema"]
    assert args[args.index("--lint-conf") + 1] == config["lint-conf"]


def broken_chart(tmp_path: Path, breakage: str) -> Path:
    chart = tmp_path / "ray-platform"
    shutil.copytree(CHART_DIR, chart, ignore=shutil.ignore_patterns("charts"))
    if breakage == "Chart.yaml":
        chart_yaml = chart / "Chart.yaml"
        chart_yaml.write_text(chart_yaml.read_text().replace("\nversion: 0.1.0\n", "\nversion: one\n"))
    elif breakage == "values.yaml":
        values = chart / "values.yaml"
        values.write_text(values.read_text() + "rayVersion: 2.60.0\n")
    else:  # a ci scenario helm lint rejects (the values schema), the only one (ct need not lint the rest)
        shutil.rmtree(chart / "ci")
        (chart / "ci").mkdir()
        (chart / "ci" / "aaa-broken-values.yaml").write_text("rayCluster:\n  enabled: \"yes\"\n")
    return chart


# ct v3.14.0 relays a child's output from a goroutine that can lose it when the child exits
# fast (pkg/exec RunProcess: Wait closes the pipes), so what yamale, yamllint or helm said is not
# always in ct's output. Which step failed is: ct prints "Linting chart with values file" itself
# before each helm lint. Each broken copy has one defect that only one step can see.
@pytest.mark.parametrize("breakage, failing_step", [
    ("Chart.yaml", "yamale"),  # valid YAML, but not schemas/chart.yamale's version pattern
    ("values.yaml", "yamllint"),  # a duplicated key: a YAML lint error, no schema error
    ("ci values", "helm lint ci/aaa-broken-values.yaml"),  # the values schema refuses it
])
def test_ct_lint_fails_on_a_broken_chart(tmp_path: Path, breakage: str, failing_step: str) -> None:
    proc = lint.run_ct(broken_chart(tmp_path, breakage))
    verdict = lint.ct_verdict(proc)
    assert proc.returncode != 0 and verdict.problems
    assert any(line.startswith("✖︎ ray-platform") for line in verdict.problems)
    helm_lints = [line for line in proc.stdout.splitlines() if line.startswith("Linting chart with values file")]
    if failing_step.startswith("helm lint"):
        assert helm_lints and helm_lints[-1].endswith('ci/aaa-broken-values.yaml"...'), helm_lints
    else:
        assert not helm_lints, f"{failing_step} should have failed before helm lint ran:\n{proc.stdout}"


def test_ct_verdict_of_a_clean_run_is_its_result_line() -> None:
    proc = subprocess.CompletedProcess([], 0, "Linting charts...\n ✔︎ ray-platform => (version: \"0.1.0\")\n"
                                              "All charts linted successfully\n", "")
    assert lint.ct_verdict(proc).note == '✔︎ ray-platform => (version: "0.1.0") All charts linted successfully'


def test_a_ci_scenario_ct_would_skip_is_named(tmp_path: Path) -> None:
    for path in CI_VALUES_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path)
    assert lint.ci_files_ct_skips(tmp_path) == []
    (tmp_path / "gpu.yaml").write_text("{}\n")
    assert lint.ci_files_ct_skips(tmp_path) == ["gpu.yaml: ct lint skips it (name it *-values.yaml)"]


def test_strict_helm_lint_covers_what_ct_does_not() -> None:
    names = [str(scenario) for scenario in lint.strict_lint_scenarios()]
    assert names[0] == "defaults" and all(name.startswith("values/") for name in names[1:]) and len(names) > 1


def test_yamllint_reads_what_ct_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {path.relative_to(REPO).as_posix() for path in lint.yaml_files()}
    assert "values/production.yaml" in files and "ct.yaml" in files
    assert not any(name.startswith("charts/") for name in files)  # ct lint reads those
    bad = tmp_path / "bad.yaml"
    bad.write_text("rayCluster:\n  enabled: true\n  enabled: false\n")
    monkeypatch.setattr(lint, "yaml_files", lambda: [bad])
    assert any("duplication" in problem for problem in lint.yamllint().problems)


@pytest.mark.parametrize("released, complaints", [("0.1.0", 1), ("0.0.9", 0)])
def test_version_increment_against_the_last_tag(monkeypatch: pytest.MonkeyPatch, released: str, complaints: int) -> None:
    monkeypatch.setattr(lint.upgrade_baseline, "last_release_tag", lambda: f"ray-platform-{released}")
    # As if `git diff --quiet <tag> -- charts/ray-platform` found changes.
    monkeypatch.setattr(lint.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    assert len(lint.version_increment().problems) == complaints
