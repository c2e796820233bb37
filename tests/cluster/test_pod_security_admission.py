"""podSecurity.level against a real API server: for every case of tests/data/pod_security_cases.yaml
and every level, the chart's verdict when helm installs equals the Pod Security admission's verdict
on the pods the KubeRay operator creates.

One namespace per level, enforcing it (pod-security.kubernetes.io/enforce=<level>), and one
`helm install` per case into it with podSecurity.level set to that level:
- privileged: the chart checks nothing, the API server admits everything: every case installs and
  the operator creates its pods. Those live pods (built by the operator: the autoscaler sidecar,
  the wait-gcs-ready init container, probes) and the release's helm test Pods are what the other
  levels' API servers judge.
- baseline, restricted: a case the chart admits installs, and the API server admits the pods the
  operator creates for it. A case the chart refuses fails `helm install` with the lines written
  down for it. Either way the privileged install's pods are then created with server-side dry-run
  in the level's namespace, and the API server must admit them, or refuse them for exactly the
  rules the chart named.
Why server-side dry-run of those pods for the refused cases: the shipped chart has no switch that
renders a refused pod at a stricter level (privileged is its honest "check nothing"), and a
test-only switch would prove things about a chart nobody installs. The live pods are exactly what
the operator would create in that namespace, the dry-run runs the API server's whole admission
chain on them, and it stores nothing. Only serviceAccountName and the fields the API server sets
itself (node, priority) are dropped: Pod Security reads none of them, and the release's
ServiceAccount does not exist in the other namespace.

Simulated nodes: admission and the operator are real; no container runs.
"""
from __future__ import annotations

import copy
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.local.release import NO_SUBCHART, Release, helm_in, install
from harness import podsecurity
from harness.pods import pod_templates
from harness.render import normalise_paths, parse_manifests
from harness.tools import TEST_DATA_DIR
from harness.versions import HELM_MAJORS

pytestmark = pytest.mark.cluster

CASES: list[dict[str, Any]] = yaml.safe_load((TEST_DATA_DIR / "pod_security_cases.yaml").read_text())
LEVELS = podsecurity.LEVELS
MAJOR = HELM_MAJORS[-1]  # both majors render the same refusals (tests/test_pod_security_level.py)
PODS_TIMEOUT = 240
FORBIDDEN = re.compile(r'pods "(?P<name>[^"]+)" is forbidden: (?P<why>.*)$')


def level_namespace(level: str) -> dict[str, Any]:
    labels = {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "warn", "audit")}
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": f"pss-{level}", "labels": {**labels, "ray-platform.io/test": "cluster"}}}


def expected_pods(manifest: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(component, node type, group) of every Ray pod the operator should create for a manifest:
    each head, and each worker group with replicas."""
    wanted = set()
    for obj in manifest:
        for pod in pod_templates(obj):
            if not pod.ray_node:
                continue
            if "workerGroupSpecs" in pod.path:
                group = next(g for g in (obj["spec"].get("rayClusterConfig") or obj["spec"])["workerGroupSpecs"]
                             if pod.path.endswith(f"workerGroupSpecs[{g['groupName']}].template"))
                if not group.get("replicas"):
                    continue
            wanted.add(pod_kind(pod.template))
    return wanted


def pod_kind(pod: dict[str, Any]) -> tuple[str, str, str]:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return (labels.get("app.kubernetes.io/component", ""), labels.get("ray-platform.io/node-type", ""),
            labels.get("ray-platform.io/group", ""))


def as_new_pod(live: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A live pod as a new Pod for another namespace (see the module docstring for what goes)."""
    spec = copy.deepcopy(live["spec"])
    for key in ("nodeName", "serviceAccountName", "serviceAccount", "priority", "preemptionPolicy"):
        spec.pop(key, None)
    metadata = live["metadata"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": metadata["name"], "namespace": namespace,
                         "labels": metadata.get("labels") or {},
                         "annotations": metadata.get("annotations") or {}},
            "spec": spec}


@dataclass
class Attempt:
    """One case installed at one level, and what the API server made of its pods."""

    case: dict[str, Any]
    level: str
    release: Release
    error: str | None = None  # helm's message when the install failed
    manifest: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)  # the operator's pods, as created
    hooks: list[dict[str, Any]] = field(default_factory=list)  # the release's helm test Pods
    missing: set[tuple[str, str, str]] = field(default_factory=set)  # pods never created
    # pod name -> the API server's reasons for refusing it in this level's namespace (empty: admitted)
    admission: dict[str, set[str]] = field(default_factory=dict)


class PodSecurityRuns:
    def __init__(self, cluster, folder: Path):
        self.cluster = cluster
        self.folder = folder
        self.attempts: dict[tuple[str, str], Attempt] = {}

    def run(self) -> None:
        self.cluster.kubectl.apply([level_namespace(level) for level in LEVELS])
        with ThreadPoolExecutor(max_workers=4) as pool:
            for level in LEVELS:  # privileged first: its pods are the others' source
                attempts = [self.attempt(case, index, level) for index, case in enumerate(CASES)]
                list(pool.map(self.install, attempts))
                self.wait_for_pods([a for a in attempts if a.error is None], f"pss-{level}")
                if level != "privileged":
                    list(pool.map(self.dry_run, attempts))

    def attempt(self, case: dict[str, Any], index: int, level: str) -> Attempt:
        path = self.folder / f"{case['id']}.yaml"
        path.write_text(yaml.safe_dump(case["values"]))
        release = Release(f"pss-{index:02d}", f"pss-{level}", self.cluster.chart, (path,),
                          (*NO_SUBCHART, f"podSecurity.level={level}"))
        attempt = Attempt(case, level, release)
        self.attempts[(case["id"], level)] = attempt
        return attempt

    def install(self, attempt: Attempt) -> None:
        release, kubeconfig = attempt.release, self.cluster.kubeconfig
        result = install(release, kubeconfig, MAJOR)
        if result.returncode != 0:
            attempt.error = normalise_paths(result.stderr.strip())
            return
        manifest = helm_in(kubeconfig, "get", "manifest", release.name, "-n", release.namespace, major=MAJOR)
        attempt.manifest = parse_manifests(manifest.stdout)
        hooks = helm_in(kubeconfig, "get", "hooks", release.name, "-n", release.namespace, major=MAJOR)
        attempt.hooks = [obj for obj in parse_manifests(hooks.stdout) if obj.get("kind") == "Pod"]

    def wait_for_pods(self, attempts: list[Attempt], namespace: str) -> None:
        wanted = {a.release.name: expected_pods(a.manifest) for a in attempts}
        deadline = time.monotonic() + PODS_TIMEOUT
        while True:
            live = self.cluster.get("pods", "-n", namespace, "-l", "ray.io/is-ray-node=yes")["items"]
            by_release: dict[str, list[dict[str, Any]]] = {}
            for pod in live:
                by_release.setdefault(pod["metadata"]["labels"].get("app.kubernetes.io/instance", ""), []).append(pod)
            for attempt in attempts:
                attempt.pods = by_release.get(attempt.release.name, [])
                attempt.missing = wanted[attempt.release.name] - {pod_kind(p) for p in attempt.pods}
            if not any(a.missing for a in attempts) or time.monotonic() > deadline:
                return
            time.sleep(2)

    def dry_run(self, attempt: Attempt) -> None:
        """The privileged install's pods, created with server-side dry-run in this level's namespace."""
        source = self.attempts[(attempt.case["id"], "privileged")]
        namespace = f"pss-{attempt.level}"
        pods = [as_new_pod(pod, namespace) for pod in source.pods + source.hooks]
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": pods})
        result = self.cluster.kubectl.run("create", "--dry-run=server", "-o", "name", "-f", "-",
                                          stdin=document, check=False)
        for line in result.stdout.splitlines():
            name = line.strip().removeprefix("pod/")
            if name:
                attempt.admission[name] = set()
        for line in result.stderr.splitlines():
            match = FORBIDDEN.search(line)
            if match:
                reasons = podsecurity.admission_reasons(match["why"])
                attempt.admission[match["name"]] = reasons or {f"not a Pod Security refusal: {match['why']}"}
        unanswered = {pod["metadata"]["name"] for pod in pods} - set(attempt.admission)
        for name in unanswered:
            attempt.admission[name] = {f"no answer from the API server: {result.stderr.strip()}"}


@pytest.fixture(scope="module")
def pod_security_runs(local_cluster, tmp_path_factory) -> dict[tuple[str, str], Attempt]:
    runs = PodSecurityRuns(local_cluster, tmp_path_factory.mktemp("pod-security"))
    try:
        runs.run()
        yield runs.attempts
    finally:
        for level in LEVELS:
            local_cluster.kubectl.run("delete", "namespace", f"pss-{level}", "--wait=false", check=False)


def forbidden_events(cluster, attempt: Attempt) -> list[str]:
    events = cluster.get("events", "-n", attempt.release.namespace)["items"]
    return [event.get("message", "") for event in events
            if "forbidden" in event.get("message", "") and attempt.release.name in event.get("message", "")]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case["id"])
def test_the_charts_verdict_is_the_api_servers(local_cluster, pod_security_runs, case: dict[str, Any],
                                               level: str) -> None:
    attempt = pod_security_runs[(case["id"], level)]
    lines, rules = podsecurity.written_refusals((case.get("refused") or {}).get(level, []), level)
    source = pod_security_runs[(case["id"], "privileged")]
    assert source.error is None and source.pods and not source.missing, (
        f"{case['id']}: the privileged install gave no pods to judge: {source.error or source.missing}")
    if lines:
        # Refused by the chart: helm install names the keys and rules, and creates nothing ...
        assert attempt.error is not None, f"{case['id']}: helm install accepted it at {level}"
        found = podsecurity.chart_refusal(attempt.error)
        assert found and found[0] == lines, f"{case['id']} at {level}:\n{attempt.error}"
        assert not attempt.pods
    else:
        # ... admitted by the chart: installed, and the API server admits the operator's pods.
        assert attempt.error is None, f"{case['id']}: helm install refused it at {level}:\n{attempt.error}"
        assert not attempt.missing, (f"{case['id']} at {level}: the operator's pods {sorted(attempt.missing)} "
                                     f"were never created: {forbidden_events(local_cluster, attempt)}")
    if level == "privileged":
        return
    # The API server's verdict on the same pods, pod by pod: refused for exactly the rules the chart named.
    assert set(attempt.admission) == {p["metadata"]["name"] for p in source.pods + source.hooks}
    refused = {name: reasons for name, reasons in attempt.admission.items() if reasons}
    if not rules:
        assert not refused, f"{case['id']}: the API server refuses at {level} what the chart admits: {refused}"
        return
    assert refused, f"{case['id']}: the API server admits at {level} what the chart refuses"
    union = set().union(*refused.values())
    assert union == podsecurity.reasons_of(rules), f"{case['id']} at {level}: {refused}"
