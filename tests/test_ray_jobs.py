"""RayJobs and RayCronJobs from rayJobs.<name>: the fields each key renders to, the job on the
chart's RayCluster (clusterSelector) against a cluster of its own (built by the shared cluster
builder, with the chart's security defaults and token auth), the restricted submitter pod, and
the harness finding every pod of a RayJob and a RayCronJob. Refusals are in
tests/data/bad_values/ray-jobs.yaml."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from cluster.local.release import ray_targets
from harness import podsecurity
from harness.check import check_objects, semantic_problems
from harness.crds import CrdRegistry
from harness.pods import pod_templates, ray_cluster_specs
from harness.readiness import Target
from harness.render import Renderer, RenderRequest, of_kind
from harness.scenarios import Scenario, scenarios
from harness.tools import REPO
from harness.versions import HELM_MAJORS, SUPPORTED_KUBE_MINORS

ON_CHART_CLUSTER = next(s for s in scenarios() if s.name == "values/examples/rayjob-on-chart-cluster.yaml")
NIGHTLY = next(s for s in scenarios() if s.name == "values/examples/rayjob-nightly-gpu.yaml")
NO_SD = {"stableDiffusion": {"enabled": False}}  # its RayService is not what these tests are about
CRON_GATE = {"kuberay-operator": {"featureGates": [{"name": "RayCronJob", "enabled": True}]}}
OWN_CLUSTER = {"workerGroups": {"cpu": {"minReplicas": 1, "maxReplicas": 2, "resources": {
    "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}}}}


def values_of(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def the(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"{len(found)} {kind} objects: {[o['metadata']['name'] for o in found]}"
    return found[0]


# Values of the tests below, rendered together up front.
CASES: dict[str, dict[str, Any]] = {
    "own-cluster": {"rayJobs": {"train": {"entrypoint": "python train.py", "cluster": OWN_CLUSTER}}},
    "own-cluster-no-autoscaler": {"rayJobs": {"train": {
        "entrypoint": "python train.py", "cluster": {**OWN_CLUSTER, "autoscaler": {"enabled": False}}}}},
    "head-resources-whole": {"rayJobs": {"train": {"entrypoint": "python train.py", "cluster": {
        "head": {"resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}}}}}},
    "resources": {"rayJobs": {"etl": {
        "entrypoint": "python etl.py --date \"$(date +%F)\" 'quoted'", "entrypointNumCpus": 0.5,
        "entrypointNumGpus": 1, "entrypointResources": {"accelerator_type:L4": 1, "disk": 0.25},
        "backoffLimit": 0, "submitter": {"backoffLimit": 4, "resources": {"requests": {"cpu": "100m"}}}}}},
    "http-mode": {"rayJobs": {"etl": {"entrypoint": "python etl.py", "submissionMode": "HTTPMode"}}},
    "disabled": {"rayJobs": {"etl": {"entrypoint": "python etl.py", "enabled": False}}},
    "named": {"rayJobs": {"etl": {"entrypoint": "python etl.py", "name": "nightly-etl",
                                  "labels": {"team": "data"}, "annotations": {"owner": "data@example.com"}}}},
    "existing-secret": {"auth": {"existingSecret": "ray-token"},
                        "rayJobs": {"etl": {"entrypoint": "python etl.py", "cluster": {}}}},
    "cron-suspended": {**CRON_GATE, "rayJobs": {"hourly": {
        "entrypoint": "python report.py", "schedule": "@every 1h30m", "suspend": True}}},
    "network-policy-off": {"networkPolicy": {"enabled": False},
                           "rayJobs": {"etl": {"entrypoint": "python etl.py", "cluster": {}}}},
}
SCHEDULES = ("@daily", "@annually", "@every 45m", "*/15 * * * *", "0 2 * * MON-FRI", "30 4 1,15 * ?")


@pytest.fixture(scope="module")
def case(renderer: Renderer, scenario_of) -> Callable[..., list[dict[str, Any]]]:
    made = {name: scenario_of({**NO_SD, **values}) for name, values in CASES.items()}
    schedules = {s: scenario_of({**NO_SD, **CRON_GATE, "rayJobs": {"etl": {"entrypoint": "python etl.py", "schedule": s}}})
                 for s in SCHEDULES}
    renderer.prefetch([RenderRequest(s.values_files, major) for s in made.values() for major in HELM_MAJORS]
                      + [RenderRequest(s.values_files, 4) for s in schedules.values()])

    def _render(name: str, helm_major: int = 4) -> list[dict[str, Any]]:
        scenario = schedules[name] if name in schedules else made[name]
        return renderer.render(RenderRequest(scenario.values_files, helm_major))
    return _render


# --- a job on the chart's RayCluster --------------------------------------------------------

def test_a_job_on_the_chart_cluster_renders_its_fields(render, helm_major: int) -> None:
    objects = render(ON_CHART_CLUSTER, helm_major)
    want = values_of(ON_CHART_CLUSTER.values_files[0])["rayJobs"]["squares"]
    job = the(objects, "RayJob")
    assert job["metadata"]["name"] == "ray-platform-squares"
    spec = job["spec"]
    assert spec["entrypoint"] == want["entrypoint"]
    assert spec["submissionMode"] == "K8sJobMode"
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == want["runtimeEnv"]
    assert spec["metadata"] == want["metadata"]
    assert spec["activeDeadlineSeconds"] == 600 and spec["preRunningDeadlineSeconds"] == 300
    # The operator finds the cluster by its name; nothing of a cluster of its own is rendered.
    assert spec["clusterSelector"] == {"ray.io/cluster": the(objects, "RayCluster")["metadata"]["name"]}
    for field in ("rayClusterSpec", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished", "backoffLimit"):
        assert field not in spec
    assert not of_kind(objects, "RayCronJob")


def test_the_submitter_pod_is_restricted_and_has_no_token(render) -> None:
    job = the(render(ON_CHART_CLUSTER), "RayJob")
    template = job["spec"]["submitterPodTemplate"]
    pod_spec = template["spec"]
    for minor in (SUPPORTED_KUBE_MINORS[0], SUPPORTED_KUBE_MINORS[-1]):
        assert podsecurity.violations(template, "restricted", minor) == []
    assert pod_spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod_spec
    assert pod_spec["restartPolicy"] == "Never"
    (container,) = pod_spec["containers"]
    # The operator treats the first container as the submitter and sets its command (none here).
    assert container["name"] == "ray-job-submitter" and "command" not in container
    assert container["image"] == "rayproject/ray:2.60.0-py311"
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "200Mi"},
                                      "limits": {"cpu": "1", "memory": "1Gi"}}
    assert template["metadata"]["labels"]["app.kubernetes.io/component"] == "rayjob-submitter"


def test_numbers_entrypoint_resources_as_json_and_the_submitter_config(case, helm_major: int) -> None:
    spec = the(case("resources", helm_major), "RayJob")["spec"]
    assert spec["entrypoint"] == "python etl.py --date \"$(date +%F)\" 'quoted'"
    assert spec["entrypointNumCpus"] == 0.5 and spec["entrypointNumGpus"] == 1
    assert isinstance(spec["entrypointResources"], str)
    assert json.loads(spec["entrypointResources"]) == {"accelerator_type:L4": 1, "disk": 0.25}
    assert spec["backoffLimit"] == 0
    assert spec["submitterConfig"] == {"backoffLimit": 4}
    # The submitter's resources merge over the defaults key by key.
    resources = spec["submitterPodTemplate"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "100m", "memory": "200Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def test_http_mode_has_no_submitter_pod(case) -> None:
    spec = the(case("http-mode"), "RayJob")["spec"]
    assert spec["submissionMode"] == "HTTPMode"
    assert "submitterPodTemplate" not in spec and "submitterConfig" not in spec


def test_a_disabled_job_renders_nothing(case) -> None:
    objects = case("disabled")
    assert not of_kind(objects, "RayJob") and not of_kind(objects, "RayCronJob")
    assert not [o for o in of_kind(objects, "NetworkPolicy") if "submitter" in o["metadata"]["name"]]


def test_name_labels_and_annotations(case) -> None:
    job = the(case("named"), "RayJob")
    assert job["metadata"]["name"] == "nightly-etl"
    assert job["metadata"]["labels"]["team"] == "data"
    assert job["metadata"]["labels"]["ray-platform.io/rayjob"] == "etl"
    assert job["metadata"]["annotations"] == {"owner": "data@example.com"}


# --- a job with a cluster of its own ------------------------------------------------------

def test_a_cluster_of_its_own_comes_from_the_cluster_builder(case, render, helm_major: int) -> None:
    objects = case("own-cluster", helm_major)
    spec = the(objects, "RayJob")["spec"]
    assert "clusterSelector" not in spec
    assert spec["shutdownAfterJobFinishes"] is True and "ttlSecondsAfterFinished" not in spec
    cluster = spec["rayClusterSpec"]
    # Built like the chart's RayCluster: same version, token auth, autoscaler, head pod.
    chart_cluster = the(render(scenarios()[0], helm_major), "RayCluster")["spec"]
    assert cluster["rayVersion"] == chart_cluster["rayVersion"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["autoscalerOptions"] == chart_cluster["autoscalerOptions"]
    assert "upgradeStrategy" not in cluster  # refused on a RayJob's cluster by the operator
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"] == chart_cluster["headGroupSpec"]["rayStartParams"]
    head_pod = head["template"]["spec"]
    assert head_pod["containers"][0]["resources"] == chart_cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]
    # The autoscaler's own token volume, no token for the Ray container, no ServiceAccount to name.
    assert "autoscaler-kube-api" in [v["name"] for v in head_pod["volumes"]]
    assert head_pod["automountServiceAccountToken"] is False and "serviceAccountName" not in head_pod
    labels = head["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "rayjob-train"
    (group,) = cluster["workerGroupSpecs"]
    assert (group["groupName"], group["minReplicas"], group["maxReplicas"]) == ("cpu", 1, 2)
    for pod in pod_templates(the(objects, "RayJob")):
        assert podsecurity.violations(pod.as_created(), "restricted", SUPPORTED_KUBE_MINORS[-1]) == [], pod.where


def test_without_the_autoscaler_the_head_has_no_token_volume(case) -> None:
    cluster = the(case("own-cluster-no-autoscaler"), "RayJob")["spec"]["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is False and "autoscalerOptions" not in cluster
    volumes = [v["name"] for v in cluster["headGroupSpec"]["template"]["spec"].get("volumes") or []]
    assert "autoscaler-kube-api" not in volumes


def test_head_resources_given_replace_the_default_resources_whole(case) -> None:
    head = the(case("head-resources-whole"), "RayJob")["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert head["template"]["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "4", "memory": "16Gi"},
                                                                      "limits": {"memory": "16Gi"}}


def test_an_existing_token_secret_reaches_the_job_cluster(case) -> None:
    cluster = the(case("existing-secret"), "RayJob")["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token", "secretName": "ray-token"}
    assert cluster["workerGroupSpecs"] == []


def test_the_nightly_example_is_a_raycronjob_on_a_gpu_cluster(render, helm_major: int) -> None:
    objects = render(NIGHTLY, helm_major)
    want = values_of(NIGHTLY.values_files[0])["rayJobs"]["embeddings"]
    assert not of_kind(objects, "RayJob") and not of_kind(objects, "RayCluster")
    cron = the(objects, "RayCronJob")
    assert cron["metadata"]["name"] == "ray-platform-embeddings"
    assert cron["spec"]["schedule"] == "0 2 * * *" and "timeZone" not in cron["spec"]
    assert "suspend" not in cron["spec"]
    job = cron["spec"]["jobTemplate"]
    assert job["entrypoint"] == want["entrypoint"]
    assert yaml.safe_load(job["runtimeEnvYAML"]) == want["runtimeEnv"]
    assert (job["backoffLimit"], job["shutdownAfterJobFinishes"], job["ttlSecondsAfterFinished"]) == (1, True, 600)
    assert job["entrypointNumCpus"] == 1
    (gpu,) = job["rayClusterSpec"]["workerGroupSpecs"]
    container = gpu["template"]["spec"]["containers"][0]
    assert container["image"] == "rayproject/ray:2.60.0-py311-gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu["template"]["spec"]["tolerations"]
    assert "submitterPodTemplate" in job


def test_suspend_and_interval_schedules(case) -> None:
    spec = the(case("cron-suspended"), "RayCronJob")["spec"]
    assert spec["schedule"] == "@every 1h30m" and spec["suspend"] is True and "timeZone" not in spec


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_cron_schedules_of_every_shape_render(case, schedule: str) -> None:
    assert the(case(schedule), "RayCronJob")["spec"]["schedule"] == schedule


# --- the harness sees every pod -----------------------------------------------------------

def test_the_harness_finds_every_pod_of_a_raycronjob(render) -> None:
    cron = the(render(NIGHTLY), "RayCronJob")
    paths = {pod.path: pod.ray_node for pod in pod_templates(cron)}
    assert paths == {"spec.jobTemplate.rayClusterSpec.headGroupSpec.template": True,
                     "spec.jobTemplate.rayClusterSpec.workerGroupSpecs[gpu].template": True,
                     "spec.jobTemplate.submitterPodTemplate": False}
    # The head carries the operator's autoscaler sidecar in Pod Security's view.
    head = next(p for p in pod_templates(cron) if "headGroupSpec" in p.path)
    assert [c["name"] for c in head.sidecars] == ["autoscaler"]
    assert [where for where, _, owned in ray_cluster_specs(cron) if owned] == [
        "RayCronJob/ray-platform-embeddings spec.jobTemplate.rayClusterSpec"]


@pytest.mark.parametrize("kind, example", [("RayJob", ON_CHART_CLUSTER), ("RayCronJob", NIGHTLY)])
def test_a_root_submitter_is_caught_by_the_harness(render, kind: str, example: Scenario) -> None:
    """Rendered objects changed by hand (the chart refuses such values itself): the harness's
    Pod Security and CRD checks reach the submitter pod of both kinds."""
    obj = copy.deepcopy(the(render(example), kind))
    job = obj["spec"]["jobTemplate"] if kind == "RayCronJob" else obj["spec"]
    del job["submitterPodTemplate"]["spec"]["containers"][0]["securityContext"]
    problems = [p for p in semantic_problems(obj) if p.check == "pod-security"]
    assert problems and all(p.where.endswith("submitterPodTemplate") for p in problems), problems


def test_the_harness_holds_a_raycronjob_name_to_36_characters(render) -> None:
    """KubeRay 1.7 names a run's RayJob <name>-<minutes since 1970> (11 characters more) and
    refuses longer RayCronJob names; 36 passes."""
    cron = copy.deepcopy(the(render(NIGHTLY), "RayCronJob"))
    cron["metadata"]["name"] = "x" * 37
    assert [p for p in semantic_problems(cron) if p.check == "operator-rules" and "36" in p.message]
    cron["metadata"]["name"] = "x" * 36
    assert not [p for p in semantic_problems(cron) if p.check == "operator-rules"]


def test_job_objects_pass_every_check(case, crds: CrdRegistry) -> None:
    for name in ("own-cluster", "resources", "http-mode", "cron-suspended", "existing-secret"):
        objects = case(name)
        problems = check_objects(objects, crds, [SUPPORTED_KUBE_MINORS[0], SUPPORTED_KUBE_MINORS[-1]])
        assert not problems, f"{name}:\n" + "\n".join(map(str, problems))


# --- NetworkPolicies ----------------------------------------------------------------------

def test_the_submitter_policy_targets_the_cluster_the_job_runs_on(render, case) -> None:
    def policy(objects: list[dict[str, Any]]) -> dict[str, Any]:
        (found,) = [o for o in of_kind(objects, "NetworkPolicy") if o["metadata"]["name"].endswith("-from-submitter")]
        return found["spec"]
    on_chart = policy(render(ON_CHART_CLUSTER))
    assert on_chart["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "raycluster"
    own = policy(case("own-cluster"))
    assert own["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "rayjob-train"
    peer = own["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer["app.kubernetes.io/component"] == "rayjob-submitter" and peer["ray-platform.io/rayjob"] == "train"
    assert own["ingress"][0]["ports"] == [{"protocol": "TCP", "port": "dashboard"}]
    assert not of_kind(case("network-policy-off"), "NetworkPolicy")


# --- the local cluster waits for a job's own cluster ----------------------------------------

def test_ray_targets_wait_for_the_cluster_a_rayjob_creates(case) -> None:
    """release.ray_targets against recorded API answers: a RayJob with a cluster of its own adds
    the RayCluster named in its status; one on the chart's cluster adds nothing of its own."""
    statuses = {("RayJob", "ray-platform-train"): [{}, {"status": {"rayClusterName": "ray-platform-train-x7k2q"}}]}
    asked: list[Target] = []

    def fetcher(target: Target) -> dict[str, Any] | None:
        asked.append(target)
        answers = statuses[(target.kind, target.name)]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    targets = ray_targets(fetcher, case("own-cluster"), "ns", timeout=10)
    assert targets == [Target("RayCluster", "ray-platform", "ns"), Target("RayCluster", "ray-platform-train-x7k2q", "ns")]
    assert len(asked) == 2
    assert ray_targets(fetcher, case("resources"), "ns") == [Target("RayCluster", "ray-platform", "ns")]
    assert not [t for t in ray_targets(fetcher, case("cron-suspended"), "ns") if t.name != "ray-platform"]
