"""Pod settings and Ray group settings of every node group (schemas/values/pod-settings.yaml):
each key reaches the right field of the rendered RayCluster and of the RayService's cluster, for
the head and for a worker group, through the one pod builder (_pod.tpl) and cluster builder
(_cluster.tpl); the top-level env/envFrom; the deprecated RayService thresholds; the /tmp/ray
mount. Refusals are in tests/data/bad_values/pod-settings.yaml (tests/test_bad_values.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from harness import podsecurity, rules
from harness.check import check_objects
from harness.crds import CrdRegistry
from harness.pods import PodTemplate, pod_templates, ray_cluster_specs
from harness.render import Renderer, RenderRequest, normalise_paths, of_kind
from harness.tools import TEST_DATA_DIR
from harness.versions import HELM_MAJORS, SUPPORTED_KUBE_MINORS

# resourceClaims need the pod fields of Kubernetes 1.31+: the settings render for a DRA-era minor.
KUBE = "1.34.0"
ALL_SETTINGS_OVERLAY = TEST_DATA_DIR / "overlays" / "pod-settings-all-values.yaml"

# Where a group's values live, and how to find its spec in the rendered objects.
GROUPS = {
    "raycluster-head": ("rayCluster", "head", None),
    "raycluster-worker": ("rayCluster", "workerGroups", "cpu"),
    "rayservice-head": ("stableDiffusion", "head", None),
    "rayservice-worker": ("stableDiffusion", "workerGroups", "gpu"),
}

POD_SETTINGS: dict[str, Any] = {
    "initContainers": [{"name": "prepare", "image": "busybox:1.37.0", "command": ["true"],
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}}}],
    "sidecarContainers": [{"name": "log-tail", "image": "busybox:1.37.0",
                           "securityContext": {"readOnlyRootFilesystem": True},
                           "volumeMounts": [{"name": "ray-tmp", "mountPath": "/tmp/ray", "readOnly": True}],
                           "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"},
                                         "claims": [{"name": "accel"}]}}],
    "runtimeClassName": "gvisor",
    "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 5"]}}},
    "livenessProbe": {"exec": {"command": ["sh", "-c", "true"]}, "periodSeconds": 7},
    "readinessProbe": {"exec": {"command": ["sh", "-c", "true"]}, "periodSeconds": 11},
    "dnsPolicy": "None",
    "dnsConfig": {"nameservers": ["10.0.0.10"], "options": [{"name": "ndots", "value": "2"}]},
    "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["metadata.local"]}],
    "terminationGracePeriodSeconds": 75,
    "resourceClaims": [{"name": "accel", "resourceClaimTemplateName": "one-gpu", "request": "gpu"}],
    "rayLabels": {"example.com/zone": "a"},
    "env": [{"name": "SHARED", "value": "group"}, {"name": "OWN", "value": "1"}],
}
TOP_LEVEL = {"env": [{"name": "SHARED", "value": "top"}, {"name": "TOP", "value": "1"}],
             "envFrom": [{"configMapRef": {"name": "team-env", "optional": True}}]}


def group_values(where: str, settings: dict[str, Any]) -> dict[str, Any]:
    cluster, section, name = GROUPS[where]
    node = {name: settings} if name else settings
    return {cluster: {section: node}}


def rendered_group(objects: list[dict[str, Any]], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the group's spec: headGroupSpec or workerGroupSpecs[i], the whole cluster spec)."""
    cluster, section, name = GROUPS[where]
    kind = "RayCluster" if cluster == "rayCluster" else "RayService"
    (obj,) = [o for o in of_kind(objects, kind) if kind == "RayCluster" or "-sd" in o["metadata"]["name"]]
    ((_, spec, _),) = ray_cluster_specs(obj)
    if section == "head":
        return spec["headGroupSpec"], spec
    return next(g for g in spec["workerGroupSpecs"] if g["groupName"] == name), spec


@pytest.fixture(scope="module")
def pod_settings_objects(renderer: Renderer, values_file: Callable[[dict[str, Any]], Path]
                         ) -> dict[tuple[str, int], list[dict[str, Any]]]:
    files = {where: values_file({**TOP_LEVEL, **group_values(where, POD_SETTINGS)}) for where in GROUPS}
    requests = {(where, major): RenderRequest((path,), major, kube_version=KUBE)
                for where, path in files.items() for major in HELM_MAJORS}
    renderer.prefetch(requests.values())
    return {key: renderer.render(request) for key, request in requests.items()}


@pytest.mark.parametrize("where", GROUPS)
def test_pod_settings_reach_the_pod_template(pod_settings_objects, where: str, helm_major: int) -> None:
    group, _ = rendered_group(pod_settings_objects[(where, helm_major)], where)
    spec = group["template"]["spec"]
    ray, *sidecars = spec["containers"]
    assert ray["name"] in ("ray-head", "ray-worker"), "the Ray container must stay first"
    assert [c["name"] for c in sidecars] == ["log-tail"]
    assert [c["name"] for c in spec["initContainers"]] == ["prepare"]
    assert spec["runtimeClassName"] == "gvisor"
    assert spec["dnsPolicy"] == "None" and spec["dnsConfig"] == POD_SETTINGS["dnsConfig"]
    assert spec["hostAliases"] == POD_SETTINGS["hostAliases"]
    assert spec["terminationGracePeriodSeconds"] == 75
    assert ray["lifecycle"] == POD_SETTINGS["lifecycle"]
    assert ray["livenessProbe"] == POD_SETTINGS["livenessProbe"]
    assert ray["readinessProbe"] == POD_SETTINGS["readinessProbe"]
    assert spec["resourceClaims"] == [{"name": "accel", "resourceClaimTemplateName": "one-gpu"}]
    assert ray["resources"]["claims"] == [{"name": "accel", "request": "gpu"}]
    assert sidecars[0]["resources"]["claims"] == [{"name": "accel"}]
    assert group["labels"] == {"example.com/zone": "a"}


@pytest.mark.parametrize("where", GROUPS)
def test_added_containers_get_the_restricted_security_context_under_their_own(
        pod_settings_objects, where: str, default_objects) -> None:
    (cluster,) = of_kind(default_objects, "RayCluster")
    top = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["securityContext"]
    group, _ = rendered_group(pod_settings_objects[(where, HELM_MAJORS[-1])], where)
    spec = group["template"]["spec"]
    assert spec["initContainers"][0]["securityContext"] == top
    assert spec["containers"][1]["securityContext"] == {**top, "readOnlyRootFilesystem": True}


@pytest.mark.parametrize("where", GROUPS)
def test_env_top_level_then_group_without_duplicates(pod_settings_objects, where: str, helm_major: int) -> None:
    objects = pod_settings_objects[(where, helm_major)]
    group, _ = rendered_group(objects, where)
    ray = group["template"]["spec"]["containers"][0]
    names = [e["name"] for e in ray["env"]]
    assert len(names) == len(set(names)), names
    values = {e["name"]: e.get("value") for e in ray["env"]}
    assert values["SHARED"] == "group" and values["TOP"] == "1" and values["OWN"] == "1"
    assert ray["envFrom"][0] == TOP_LEVEL["envFrom"][0]
    # The top-level env reaches every Ray container of every cluster, and no added container.
    for obj in objects:
        for pod in pod_templates(obj):
            if not pod.ray_node:
                continue
            first, *others = pod.spec["containers"]
            assert {e["name"]: e.get("value") for e in first["env"]}.get("TOP") == "1", pod.where
            assert first["envFrom"][0] == TOP_LEVEL["envFrom"][0], pod.where
            for container in others + (pod.spec.get("initContainers") or []):
                assert "TOP" not in {e["name"] for e in container.get("env") or []}


def test_chart_env_is_replaced_not_duplicated(render, renderer: Renderer, values_file) -> None:
    """A variable the chart sets (PYTHONPATH of the bundled Serve app, the Grafana embedding on the
    head) is replaced by the top-level env, and that by the group's."""
    path = values_file({"env": [{"name": "PYTHONPATH", "value": "/top"}, {"name": "RAY_GRAFANA_HOST", "value": "http://g"}],
                        "stableDiffusion": {"workerGroups": {"gpu": {"env": [{"name": "PYTHONPATH", "value": "/own"}]}}}})
    objects = renderer.render(RenderRequest((path,), HELM_MAJORS[-1]))
    head, _ = rendered_group(objects, "rayservice-head")
    worker, _ = rendered_group(objects, "rayservice-worker")
    for group, pythonpath in ((head, "/top"), (worker, "/own")):
        env = group["template"]["spec"]["containers"][0]["env"]
        assert [e["value"] for e in env if e["name"] == "PYTHONPATH"] == [pythonpath]
    head_env = head["template"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in head_env if e["name"] == "RAY_GRAFANA_HOST"] == ["http://g"]


def test_root_sidecar_is_what_the_python_check_finds_too(renderer: Renderer, values_file) -> None:
    """The render-time refusal names the sidecar's values path; the harness's Pod Security check
    finds the same rule in the rendered pod (rendered at level privileged, which checks nothing)."""
    values = group_values("raycluster-worker", {"sidecarContainers": [
        {"name": "root", "image": "busybox:1.37.0", "securityContext": {"runAsUser": 0}}]})
    path = values_file(values)
    newest = f"{SUPPORTED_KUBE_MINORS[-1]}.0"
    error = renderer.error(RenderRequest((path,), HELM_MAJORS[-1], kube_version=newest))
    assert error and "rayCluster.workerGroups.cpu.sidecarContainers[0].securityContext.runAsUser: 0" in normalise_paths(error)
    objects = renderer.render(RenderRequest((path,), HELM_MAJORS[-1], kube_version=newest,
                                            set_values=("podSecurity.level=privileged",)))
    (cluster,) = of_kind(objects, "RayCluster")
    found = {(v.rule, v.field) for pod in pod_templates(cluster)
             for v in podsecurity.violations(pod.as_created(), "restricted", SUPPORTED_KUBE_MINORS[-1])}
    assert ("runAsUser", "spec.containers[root].securityContext.runAsUser") in found, found


def test_resource_claims_need_kubernetes_1_31(renderer: Renderer, values_file) -> None:
    path = values_file(group_values("raycluster-head", {"resourceClaims": POD_SETTINGS["resourceClaims"]}))
    for major in HELM_MAJORS:
        error = renderer.error(RenderRequest((path,), major, kube_version="1.30.0"))
        assert error and "rayCluster.head.resourceClaims needs Kubernetes 1.31" in normalise_paths(error)
        assert renderer.error(RenderRequest((path,), major, kube_version="1.31.0")) is None


RAY_GROUP_VALUES: dict[str, Any] = {
    "rayCluster": {
        "autoscaler": {"version": "v2"},
        "head": {"rayResources": {"CPU": "0", "head-only": "1"}, "rayStartParams": {"num-cpus": None},
                 "rayLabels": {"example.com/role": "head"},
                 "service": {"annotations": {"example.com/lb": "internal"}, "labels": {"example.com/team": "ml"}}},
        "workerGroups": {"cpu": {"idleTimeoutSeconds": 30, "numOfHosts": 2, "rayResources": {"CPU": "2", "memory": "4Gi"},
                                 "rayLabels": {"example.com/pool": "cpu"}}},
        "gcsFaultTolerance": {"enabled": True, "redisAddress": "redis:6379", "existingSecret": "redis",
                              "existingSecretUsernameKey": "username"},
    },
    "stableDiffusion": {
        "autoscaler": {"enabled": False},
        "workerGroups": {"gpu": {"suspend": True}},
        "head": {"service": {"annotations": {"example.com/lb": "internal"}}},
        "gcsFaultTolerance": {"enabled": True, "redisAddress": "redis:6379", "redisUsername": "ray"},
        "serviceUnhealthySecondThreshold": 900,
        "deploymentUnhealthySecondThreshold": 900,
    },
    "kuberay-operator": {"featureGates": [{"name": "RayJobDeletionPolicy", "enabled": True}]},
}


@pytest.fixture(scope="module")
def ray_group_objects(renderer: Renderer, values_file) -> dict[int, list[dict[str, Any]]]:
    path = values_file(RAY_GROUP_VALUES)
    requests = {major: RenderRequest((path,), major) for major in HELM_MAJORS}
    renderer.prefetch(requests.values())
    return {major: renderer.render(request) for major, request in requests.items()}


def test_ray_group_settings_reach_the_cluster_spec(ray_group_objects, helm_major: int) -> None:
    objects = ray_group_objects[helm_major]
    head, spec = rendered_group(objects, "raycluster-head")
    worker, _ = rendered_group(objects, "raycluster-worker")
    assert spec["autoscalerOptions"]["version"] == "v2"
    assert head["resources"] == {"CPU": "0", "head-only": "1"} and "num-cpus" not in head["rayStartParams"]
    assert head["labels"] == {"example.com/role": "head"}
    assert head["headService"] == {"metadata": {"annotations": {"example.com/lb": "internal"},
                                                "labels": {"example.com/team": "ml"}},
                                   "spec": {"clusterIP": "None", "publishNotReadyAddresses": True}}
    assert (worker["idleTimeoutSeconds"], worker["numOfHosts"]) == (30, 2)
    assert worker["resources"] == {"CPU": "2", "memory": "4Gi"} and worker["labels"] == {"example.com/pool": "cpu"}
    assert "suspend" not in worker
    assert spec["gcsFaultToleranceOptions"]["redisUsername"] == {
        "valueFrom": {"secretKeyRef": {"name": "redis", "key": "username"}}}
    sd_worker, sd_spec = rendered_group(objects, "rayservice-worker")
    assert sd_worker["suspend"] is True
    assert sd_spec["gcsFaultToleranceOptions"]["redisUsername"] == {"value": "ray"}
    assert "version" not in sd_spec.get("autoscalerOptions", {})


AUTOSCALER_V1: dict[str, Any] = {
    "rayCluster": {"autoscaler": {"version": "v1"}},
    "stableDiffusion": {"autoscaler": {"version": "v1"}},
    "rayJobs": {"etl": {"entrypoint": "python etl.py", "cluster": {"autoscaler": {"version": "v1"}}}},
}


def test_autoscaler_v1_is_the_heads_variable_on_every_cluster(renderer: Renderer, values_file,
                                                               crds: CrdRegistry) -> None:
    """Ray >= 2.48 started by KubeRay runs the v2 autoscaler unless the head's
    RAY_enable_autoscaler_v2 says otherwise. KubeRay 1.6 sets nothing for autoscalerOptions.version
    v1 (on the real node, v1 ran v2), 1.7 sets the variable to "false", and both refuse the field
    and the variable together: v1 renders the variable alone, which both accept."""
    path = values_file(AUTOSCALER_V1)
    for major in HELM_MAJORS:
        objects = renderer.render(RenderRequest((path,), major))
        specs = [(where, spec) for obj in objects for where, spec, _ in ray_cluster_specs(obj)]
        assert len(specs) == 3, [where for where, _ in specs]
        for where, spec in specs:
            assert spec["enableInTreeAutoscaling"] is True and "version" not in spec["autoscalerOptions"]
            head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
            flags = [e for e in head.get("env") or [] if e["name"] == rules.AUTOSCALER_V2_ENV]
            assert flags == [{"name": rules.AUTOSCALER_V2_ENV, "value": "false"}], (where, flags)
        assert not check_objects(objects, crds, [SUPPORTED_KUBE_MINORS[-1]])


def test_unset_ray_group_settings_render_nothing(default_objects) -> None:
    for obj in default_objects:
        for _, spec, _ in ray_cluster_specs(obj):
            assert "headService" not in spec["headGroupSpec"]
            for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
                assert not {"labels", "resources", "idleTimeoutSeconds", "numOfHosts", "suspend"} & set(group)
                pod = group["template"]["spec"]
                assert not {"initContainers", "runtimeClassName", "dnsPolicy", "dnsConfig", "hostAliases",
                            "terminationGracePeriodSeconds", "resourceClaims"} & set(pod)
                assert len(pod["containers"]) == 1
                assert not {"lifecycle", "livenessProbe", "readinessProbe"} & set(pod["containers"][0])
            assert "version" not in spec.get("autoscalerOptions", {})


def test_deprecated_thresholds_are_accepted_not_rendered_and_warned(ray_group_objects, renderer: Renderer,
                                                                    default_objects) -> None:
    for objects in (default_objects, ray_group_objects[HELM_MAJORS[-1]]):
        for service in of_kind(objects, "RayService"):
            assert not {"serviceUnhealthySecondThreshold", "deploymentUnhealthySecondThreshold"} & set(service["spec"])
    warned = renderer.install_output(["stableDiffusion.deploymentUnhealthySecondThreshold=600"])
    notes = warned[warned.index("NOTES:"):]
    assert "stableDiffusion.deploymentUnhealthySecondThreshold is deprecated and ignored" in notes
    quiet = renderer.install_output()
    assert "deprecated and ignored" not in quiet[quiet.index("NOTES:"):]


def test_own_volume_at_tmp_ray_when_the_chart_leaves_it(renderer: Renderer, values_file) -> None:
    """With rayTmpDir.enabled false a user volume takes /tmp/ray (KubeRay's samples mount logs
    there): one mount at that path, the user's."""
    path = values_file({"rayTmpDir": {"enabled": False}, "rayCluster": {"head": {
        "volumes": [{"name": "ray-logs-own", "emptyDir": {}}],
        "volumeMounts": [{"name": "ray-logs-own", "mountPath": "/tmp/ray"}]}}})
    objects = renderer.render(RenderRequest((path,), HELM_MAJORS[-1]))
    head, _ = rendered_group(objects, "raycluster-head")
    mounts = head["template"]["spec"]["containers"][0]["volumeMounts"]
    assert [m["name"] for m in mounts if m["mountPath"] == "/tmp/ray"] == ["ray-logs-own"]


@pytest.mark.parametrize("minor", SUPPORTED_KUBE_MINORS[1:])
def test_every_setting_at_once_passes_every_check(renderer: Renderer, crds: CrdRegistry, minor: str) -> None:
    """tests/data/overlays/pod-settings-all-values.yaml sets every key of this feature (also those
    the local cluster cannot install: runtimeClassName, resourceClaims, suspend, redisUsername)."""
    objects = renderer.render(RenderRequest((ALL_SETTINGS_OVERLAY,), HELM_MAJORS[-1], kube_version=f"{minor}.0"))
    problems = check_objects(objects, crds, [minor])
    assert not problems, "\n".join(map(str, problems))


# --- the harness sees what the chart refuses (make check on overlays the chart never rendered) ---

def ray_pod(spec: dict[str, Any]) -> PodTemplate:
    return PodTemplate("RayCluster/x", "spec.workerGroupSpecs[cpu].template", {"spec": spec}, True)


STRUCTURE_MISTAKES = {
    "container-twice": ({"containers": [{"name": "ray-worker"}, {"name": "ray-worker"}]}, "container name ray-worker appears twice"),
    "operator-container-name": ({"containers": [{"name": "ray-worker"}, {"name": "autoscaler"}]}, "container autoscaler: KubeRay adds"),
    "volume-twice": ({"containers": [{"name": "ray-worker"}], "volumes": [{"name": "a"}, {"name": "a"}]}, "volume name a appears twice"),
    "env-twice": ({"containers": [{"name": "ray-worker", "env": [{"name": "A"}, {"name": "A"}]}]}, "env A appears twice"),
    "mount-path-twice": ({"containers": [{"name": "ray-worker", "volumeMounts": [
        {"name": "a", "mountPath": "/tmp/ray"}, {"name": "b", "mountPath": "/tmp/ray/"}]}],
        "volumes": [{"name": "a"}, {"name": "b"}]}, "two volumes mounted at /tmp/ray"),
    "mount-without-volume": ({"containers": [{"name": "ray-worker", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]},
                             "volumeMount x names no volume"),
    "claim-not-declared": ({"containers": [{"name": "ray-worker", "resources": {"claims": [{"name": "gpu"}]}}]},
                           "resources.claims gpu is not in spec.resourceClaims"),
}


@pytest.mark.parametrize("case", STRUCTURE_MISTAKES, ids=str)
def test_harness_finds_pod_structure_mistakes(case: str) -> None:
    spec, message = STRUCTURE_MISTAKES[case]
    found = rules.structure_problems(ray_pod(spec))
    assert any(message in problem for problem in found), list(rules.structure_problems(ray_pod(spec)))


def test_harness_structure_check_passes_every_rendered_pod(pod_settings_objects, ray_group_objects) -> None:
    for objects in [*pod_settings_objects.values(), *ray_group_objects.values()]:
        for obj in objects:
            for pod in pod_templates(obj):
                assert not list(rules.structure_problems(pod)), pod.where


def cluster_with(head_env: list[dict[str, str]] | None = None, autoscaler: dict[str, Any] | None = None,
                 worker: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "ray-head", "env": head_env or []}]}}
    worker_template = {"spec": {"containers": [{"name": "ray-worker"}]}}
    return {"kind": "RayCluster", "metadata": {"name": "x"}, "spec": {
        "headGroupSpec": {"template": template, "rayStartParams": {}},
        "workerGroupSpecs": [{"groupName": "cpu", "minReplicas": 0, "maxReplicas": 1, "template": worker_template,
                              **(worker or {})}],
        **({"enableInTreeAutoscaling": True, "autoscalerOptions": autoscaler} if autoscaler is not None else {}),
        **spec}}


OPERATOR_MISTAKES = {
    "idle-timeout-with-v1": (cluster_with(autoscaler={}, worker={"idleTimeoutSeconds": 30}), "idleTimeoutSeconds needs the autoscaler v2"),
    "suspend-with-autoscaler": (cluster_with(autoscaler={}, worker={"suspend": True}), "cannot be suspended while the autoscaler runs"),
    "version-and-env": (cluster_with([{"name": "RAY_enable_autoscaler_v2", "value": "1"}], {"version": "v2"}),
                        "autoscalerOptions.version and the head's RAY_enable_autoscaler_v2"),
    "v2-env-without-autoscaler": (cluster_with([{"name": "RAY_enable_autoscaler_v2", "value": "true"}]),
                                  "autoscaler v2 needs enableInTreeAutoscaling: true"),
    "redis-username-env": (cluster_with([{"name": "REDIS_USERNAME", "value": "ray"}]), "a Redis username on the head"),
    "redis-address-without-ft": (cluster_with([{"name": "RAY_REDIS_ADDRESS", "value": "r:6379"}]),
                                 "RAY_REDIS_ADDRESS in the head's env without gcsFaultToleranceOptions"),
}


@pytest.mark.parametrize("case", OPERATOR_MISTAKES, ids=str)
def test_harness_finds_what_the_operator_rejects(case: str) -> None:
    obj, message = OPERATOR_MISTAKES[case]
    found = rules.operator_problems(obj)
    assert any(message in problem for problem in found), found
    good = cluster_with(autoscaler={"version": "v2"}, worker={"idleTimeoutSeconds": 30})
    assert rules.operator_problems(good) == []
