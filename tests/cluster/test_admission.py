"""What the live API server and the operator refuse, and what the readiness code reports then.

Simulated nodes: admission and scheduling are real; the pods never execute.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.local.release import Release, helm_in, install
from harness.readiness import Target, TargetFailed, TimedOut
from harness.render import parse_manifests
from harness.scenarios import bad_value_cases
from harness.tools import RELEASE, VALUES_DIR
from harness.versions import HELM_MAJORS

pytestmark = pytest.mark.cluster

DEV = (VALUES_DIR / "dev.yaml",)
# Every sixth bad-values case: how a refused render creates nothing is the same for every case
# (helm renders all before it sends anything), and each case's refusal itself is proven offline
# with both majors (tests/test_bad_values.py); the sample keeps both kinds of refusal (schema and
# template `fail`) from every topic file at about 35 installs instead of ten times that.
# Cases marked offline_only depend on what the live install differs in (no operator subchart,
# other release names) and say so.
BAD_CASES: list[dict[str, Any]] = [case for case in bad_value_cases()
                                   if not case.get("offline_only")][::6]


@pytest.fixture(scope="module")
def bad_values_attempts(local_cluster, tmp_path_factory) -> tuple[str, dict[tuple[str, int], str]]:
    """The sampled bad-values cases, `helm install`ed with both majors into one namespace."""
    folder: Path = tmp_path_factory.mktemp("bad-values-live")
    namespace = local_cluster.namespace("bad-values")
    jobs = []
    for index, case in enumerate(BAD_CASES):
        path = folder / f"{case['id']}.yaml"
        path.write_text(yaml.safe_dump(case["values"]))
        for major in HELM_MAJORS:
            jobs.append((case["id"], major, Release(f"bad-{index}-h{major}", namespace,
                                                    local_cluster.chart, (path,))))

    def attempt(job):
        case_id, major, release = job
        result = install(release, local_cluster.kubeconfig, major)
        return (case_id, major), (None if result.returncode == 0 else result.stderr)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return namespace, dict(pool.map(attempt, jobs))


def test_bad_values_are_refused_before_anything_is_created(local_cluster, bad_values_attempts):
    namespace, attempts = bad_values_attempts
    accepted = [f"{case} (helm {major})" for (case, major), error in attempts.items()
                if error is None]
    assert not accepted, f"helm install accepted bad values: {accepted}"
    assert len(attempts) == len(BAD_CASES) * len(HELM_MAJORS)
    created = []
    for kind in ("rayclusters", "rayservices", "pods", "services", "secrets", "configmaps",
                 "serviceaccounts", "networkpolicies", "poddisruptionbudgets",
                 "persistentvolumeclaims"):
        for obj in local_cluster.get(kind, "-n", namespace)["items"]:
            name = obj["metadata"]["name"]
            if (obj["kind"], name) not in {("ConfigMap", "kube-root-ca.crt"),
                                           ("ServiceAccount", "default")}:
                created.append(f"{obj['kind']}/{name}")
    assert not created, f"objects created by refused installs: {created}"


def test_helm_test_hook_pods_are_admitted_under_restricted(local_cluster, fresh_namespace):
    """The chart's `helm test` Pods, created in a restricted namespace: the API server admits
    them and the scheduler places them. They cannot execute on simulated nodes, so `helm test`
    itself (which waits for them to succeed) is not run here."""
    namespace = fresh_namespace("helm-test-hooks")
    rendered = helm_in(local_cluster.kubeconfig, "template", RELEASE, str(local_cluster.chart),
                       "--namespace", namespace, "--values", str(DEV[0]),
                       "--set", "kuberay-operator.enabled=false", major=4)
    assert rendered.returncode == 0, rendered.stderr
    hooks = [obj for obj in parse_manifests(rendered.stdout)
             if "test" in (obj["metadata"].get("annotations") or {}).get("helm.sh/hook", "")]
    pods = [obj for obj in hooks if obj["kind"] == "Pod"]
    assert pods, "the chart renders no helm test Pod"
    for obj in hooks:
        obj["metadata"]["namespace"] = namespace
    local_cluster.kubectl.apply(hooks)
    for pod in pods:
        live = local_cluster.get("pod", pod["metadata"]["name"], "-n", namespace)
        assert live["metadata"]["uid"]
    local_cluster.kubectl.run("wait", "--for=condition=PodScheduled", "--timeout=60s",
                              "-n", namespace, *[f"pod/{p['metadata']['name']}" for p in pods])


def test_readiness_reports_pods_that_restricted_refuses(local_cluster, fresh_namespace):
    """A head running as root, with values that claim a baseline namespace (podSecurity.level,
    so the chart admits it) installed into one that enforces `restricted`: the API server refuses
    the operator's head pod, and the readiness code must say the RayCluster failed, not wait
    forever."""
    namespace = fresh_namespace("root-head")
    release = Release(RELEASE, namespace, local_cluster.chart, DEV,
                      ("kuberay-operator.enabled=false", "podSecurity.level=baseline",
                       "rayCluster.head.securityContext.runAsUser=0",
                       "rayCluster.head.securityContext.runAsNonRoot=false"))
    result = install(release, local_cluster.kubeconfig, 4)
    assert result.returncode == 0, result.stderr
    with pytest.raises(TargetFailed) as failure:
        local_cluster.wait_ready([Target("RayCluster", RELEASE, namespace)], timeout=120,
                                 fail_after=5)
    message = str(failure.value)
    assert "ReplicaFailure" in message and "forbidden" in message.lower(), message
    assert not local_cluster.get("pods", "-n", namespace, "-l",
                                 f"ray.io/cluster={RELEASE},ray.io/node-type=head")["items"]


def test_readiness_times_out_naming_a_worker_group_that_cannot_be_scheduled(local_cluster,
                                                                           fresh_namespace):
    """No simulated node has 1000 CPUs: the worker stays Pending and the readiness code's
    timeout message says how many workers are ready."""
    namespace = fresh_namespace("unschedulable")
    release = Release(RELEASE, namespace, local_cluster.chart, DEV,
                      ("kuberay-operator.enabled=false",
                       "rayCluster.workerGroups.cpu.minReplicas=1",
                       "rayCluster.workerGroups.cpu.resources.requests.cpu=1000",
                       "rayCluster.workerGroups.cpu.resources.limits.cpu=1000"))
    result = install(release, local_cluster.kubeconfig, 4)
    assert result.returncode == 0, result.stderr
    with pytest.raises(TimedOut) as timeout:
        local_cluster.wait_ready([Target("RayCluster", RELEASE, namespace)], timeout=45)
    message = str(timeout.value)
    assert f"RayCluster/{RELEASE}" in message and "workers 0/1 ready" in message, message
    pending = local_cluster.get("pods", "-n", namespace, "-l",
                                f"ray.io/cluster={RELEASE},ray.io/node-type=worker")["items"]
    phases = {p["metadata"]["name"]: (p["status"].get("phase"), p["spec"].get("nodeName"))
              for p in pending}
    assert pending and all(phase == "Pending" and not node for phase, node in phases.values()), phases
