"""podSecurity.level: when helm renders, the chart refuses every pod that the Kubernetes Pod
Security admission would refuse at that level, naming the values key and the rule
(templates/_podsecurity.tpl). The harness's Python check (harness/podsecurity.py) gives the same
verdicts, and both give the ones written down by hand in tests/data/pod_security_cases.yaml.
(tests/cluster/test_pod_security_admission.py holds both to a real API server.)"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from harness import podsecurity
from harness.pods import pod_templates
from harness.render import Renderer, RenderRequest, normalise_paths, of_kind
from harness.tools import NAMESPACE, TEST_DATA_DIR
from harness.versions import HELM_MAJORS, SUPPORTED_KUBE_MINORS

CASES: list[dict[str, Any]] = yaml.safe_load((TEST_DATA_DIR / "pod_security_cases.yaml").read_text())
NEWEST = SUPPORTED_KUBE_MINORS[-1]
LEVELS = podsecurity.LEVELS
ROOT_HEAD = {"rayCluster": {"head": {"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}}}
PRIVILEGED_WORKER = {"rayCluster": {"workerGroups": {"cpu": {"securityContext": {
    "privileged": True, "allowPrivilegeEscalation": True}}}}}


def expected(case: dict[str, Any], level: str) -> tuple[set[str], set[str]]:
    """(the chart's refusal lines, the admission's check IDs) the case is written down with."""
    return podsecurity.written_refusals((case.get("refused") or {}).get(level, []), level)


def refusal(error: str) -> tuple[set[str], str]:
    """(the lines, the suggested level) of the chart's Pod Security refusal."""
    found = podsecurity.chart_refusal(normalise_paths(error))
    assert found, f"not a Pod Security refusal:\n{error}"
    return found


def python_rules(objects: list[dict[str, Any]], level: str, minor: str) -> set[str]:
    """The check IDs the harness finds in every pod the objects lead to (the operator's autoscaler
    sidecar included)."""
    return {found.rule for obj in objects for pod in pod_templates(obj)
            for found in podsecurity.violations(pod.as_created(), level, minor)}


def request(path: Path, level: str, minor: str = NEWEST, major: int = HELM_MAJORS[-1]) -> RenderRequest:
    return RenderRequest((path,), major, kube_version=f"{minor}.0", set_values=(f"podSecurity.level={level}",))


@pytest.fixture(scope="module")
def case_files(renderer: Renderer, values_file: Callable[[dict[str, Any]], Path]) -> dict[str, Path]:
    """Each case as a values file, rendered at every level up front, side by side."""
    files = {case["id"]: values_file(case["values"]) for case in CASES}
    renderer.prefetch(request(path, level) for path in files.values() for level in LEVELS)
    return files


def test_cases_cover_both_verdicts_and_every_rule_the_values_reach() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))
    for level in ("restricted", "baseline"):
        verdicts = {bool(expected(case, level)[0]) for case in CASES}
        assert verdicts == {True, False}, f"{level}: the cases need both admitted and refused pods"
    written = {rule for case in CASES for level in LEVELS for rule in expected(case, level)[1]}
    assert written >= {"runAsNonRoot", "runAsUser", "privileged", "allowPrivilegeEscalation",
                       "capabilities_baseline", "capabilities_restricted", "hostPathVolumes",
                       "restrictedVolumes", "seccompProfile_baseline", "seccompProfile_restricted",
                       "sysctls", "appArmorProfile", "seLinuxOptions"}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case["id"])
def test_render_time_check_and_python_check_agree(renderer: Renderer, case_files: dict[str, Path],
                                                  case: dict[str, Any], level: str) -> None:
    lines, rules = expected(case, level)
    path = case_files[case["id"]]
    # The pods as rendered with nothing checked (privileged), judged by the Python check at level.
    pods = renderer.render(request(path, "privileged"))
    assert python_rules(pods, level, NEWEST) == rules, f"{case['id']} at {level}: the harness disagrees"
    error = renderer.error(request(path, level))
    if not lines:
        assert error is None, f"{case['id']} at {level}: the chart refused what the level admits:\n{error}"
        assert renderer.render(request(path, level)) == pods  # the level changes no manifest
        return
    assert error is not None, f"{case['id']} at {level}: the chart rendered what the level refuses"
    found, suggest = refusal(error)
    assert found == lines, f"{case['id']} at {level}: the chart's message differs from the written verdict"
    meets_baseline = not expected(case, "baseline")[0]
    assert suggest == ("baseline" if level == "restricted" and meets_baseline else "privileged")


# Rules that changed between supported minors: the chart follows the Kubernetes helm renders for
# (.Capabilities.KubeVersion), as the admission follows its API server's version.
MINOR_CASES = [
    # net.ipv4.tcp_rmem joined the safe sysctls in 1.32.
    ({"rayCluster": {"head": {"podSecurityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]}}}},
     "1.31", 'rayCluster.head.podSecurityContext.sysctls: "net.ipv4.tcp_rmem" is not allowed at podSecurity.level baseline (sysctls)'),
    ({"rayCluster": {"head": {"podSecurityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]}}}},
     "1.32", None),
    # The SELinux type container_engine_t is allowed from 1.31.
    ({"rayCluster": {"head": {"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}}},
     "1.30", 'rayCluster.head.securityContext.seLinuxOptions.type: "container_engine_t" is not allowed at podSecurity.level baseline (seLinuxOptions)'),
    ({"rayCluster": {"head": {"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}}},
     "1.31", None),
]


@pytest.mark.parametrize("values, minor, line", MINOR_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_rules_follow_the_kubernetes_minor(renderer: Renderer, values_file, values: dict[str, Any],
                                           minor: str, line: str | None) -> None:
    path = values_file(values)
    error = renderer.error(request(path, "baseline", minor))
    # The manifests do not depend on the minor (test_render_matrix.py): one unchecked render serves both.
    harness = python_rules(renderer.render(request(path, "privileged")), "baseline", minor)
    if line is None:
        assert error is None and not harness
    else:
        assert error is not None and refusal(error)[0] == {line}
        assert harness == {line.rsplit("(", 1)[1].rstrip(")")}


# --- the "done when", with both helm majors and helm's own Kubernetes version --------

def head_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (cluster,) = of_kind(objects, "RayCluster")
    return cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


def test_root_overlay_is_refused_by_default_and_renders_at_baseline(renderer: Renderer, values_file,
                                                                    helm_major: int) -> None:
    path = values_file(ROOT_HEAD)
    error = renderer.error(RenderRequest((path,), helm_major))
    assert error is not None, f"helm {helm_major} rendered a root head at the default level"
    assert ("rayCluster.head.securityContext.runAsUser: 0 is not allowed at podSecurity.level "
            "restricted (runAsUser)") in error
    assert error.rstrip().endswith("set podSecurity.level: baseline if the namespace allows it")
    objects = renderer.render(RenderRequest((path,), helm_major, set_values=("podSecurity.level=baseline",)))
    security = head_container(objects)["securityContext"]
    assert security["runAsUser"] == 0 and security["runAsNonRoot"] is False


def test_privileged_container_is_refused_at_baseline_and_renders_at_privileged(
        renderer: Renderer, values_file, helm_major: int) -> None:
    path = values_file(PRIVILEGED_WORKER)
    error = renderer.error(RenderRequest((path,), helm_major, set_values=("podSecurity.level=baseline",)))
    assert error is not None, f"helm {helm_major} rendered a privileged container at baseline"
    assert ("rayCluster.workerGroups.cpu.securityContext.privileged: true is not allowed at "
            "podSecurity.level baseline (privileged)") in error
    objects = renderer.render(RenderRequest((path,), helm_major, set_values=("podSecurity.level=privileged",)))
    (cluster,) = of_kind(objects, "RayCluster")
    (worker,) = cluster["spec"]["workerGroupSpecs"]
    assert worker["template"]["spec"]["containers"][0]["securityContext"]["privileged"] is True


# --- NOTES.txt ------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_notes_print_the_namespace_label_of_the_level(renderer: Renderer, level: str) -> None:
    """helm 4 renders NOTES.txt offline (helm 3 cannot dry-run an install without a cluster)."""
    notes = renderer.install_output((f"podSecurity.level={level}",)).split("NOTES:", 1)[1]
    assert f"Pod Security (podSecurity.level: {level}):" in notes
    assert f"kubectl label namespace {NAMESPACE} pod-security.kubernetes.io/enforce={level} --overwrite" in notes
    admits_everything = "privileged admits everything: the chart checked nothing" in notes
    assert admits_everything == (level == "privileged")
    assert (f'meets the "{level}" Pod Security level' in notes) == (level != "privileged")
