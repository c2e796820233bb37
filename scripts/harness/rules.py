"""Semantic checks beyond schemas.

operator_problems: what the KubeRay operator (v1.7.0, validation.go) rejects at reconcile time,
caught at render time instead of in the operator's logs.
pod_problems: the chart's policies on every pod template - Pod Security at podSecurity.level
(podsecurity.py), resource requests and limits, pinned image tags, probes on non-Ray workloads.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterator

from harness import podsecurity
from harness.podsecurity import DEFAULT_LEVEL
from harness.pods import PodTemplate, ray_cluster_specs
from harness.versions import MIN_RAY_VERSION_FOR_TOKEN_AUTH, SUPPORTED_KUBE_MINORS

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# A RayCronJob's runs are RayJobs named <cron job>-<minutes since 1970>: KubeRay v1.7.0 refuses
# RayCronJob names over 47 - 11 (v1.6.2 named runs <cron job>-<5 random characters>, and one tick
# could start two of them: kuberay#4849).
NAME_LIMITS = {"RayCluster": 53, "RayService": 47, "RayJob": 47, "RayCronJob": 36}
# rayStartParams that describe resources; KubeRay refuses them next to a group's `resources` field.
RESOURCE_START_PARAMS = ("num-cpus", "num-gpus", "memory", "resources")
LEGACY_FT_HEAD_ENV = ("REDIS_PASSWORD", "RAY_REDIS_ADDRESS")
AUTOSCALER_V2_ENV = "RAY_enable_autoscaler_v2"  # KubeRay's RAY_ENABLE_AUTOSCALER_V2 constant
# Containers KubeRay adds to Ray pods (the head's autoscaler, a worker's wait-gcs-ready init container).
OPERATOR_CONTAINERS = ("autoscaler", "wait-gcs-ready")
# Volumes KubeRay adds to Ray pods (/dev/shm, the head's log volume next to the autoscaler).
OPERATOR_VOLUMES = ("shared-mem", "ray-logs")
RAY_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    match = RAY_VERSION.match(text or "")
    return tuple(int(part) for part in match.groups()) if match else None  # type: ignore[return-value]


def _groups(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "headGroupSpec", spec.get("headGroupSpec") or {}
    for index, group in enumerate(spec.get("workerGroupSpecs") or []):
        yield f"workerGroupSpecs[{group.get('groupName', index)}]", group


def _containers(group: dict[str, Any]) -> list[dict[str, Any]]:
    return ((group.get("template") or {}).get("spec") or {}).get("containers") or []


def _cluster_problems(spec: dict[str, Any], owned: bool) -> Iterator[str]:
    for where, group in _groups(spec):
        if not _containers(group):
            yield f"{where}: the pod template has no containers"
        params = group.get("rayStartParams") or {}
        if "labels" in params:
            yield f"{where}.rayStartParams.labels: not allowed; use the group's labels field"
        if group.get("resources") and any(key in params for key in RESOURCE_START_PARAMS):
            yield f"{where}: resources are set both in rayStartParams and in the resources field"
        if where != "headGroupSpec":
            low, high = group.get("minReplicas", 0), group.get("maxReplicas", 2147483647)
            if low < 0 or high < 0:
                yield f"{where}: minReplicas and maxReplicas must not be negative"
            elif low > high:
                yield f"{where}: minReplicas ({low}) is greater than maxReplicas ({high})"
    if owned and spec.get("upgradeStrategy"):
        yield "upgradeStrategy: not allowed on a RayCluster owned by a RayService or RayJob"
    yield from _fault_tolerance_problems(spec)
    yield from _autoscaler_problems(spec)
    auth = spec.get("authOptions") or {}
    if auth.get("mode") == "token":
        version = parse_version(spec.get("rayVersion"))
        if version is None:
            yield "authOptions.mode token needs rayVersion"
        elif version < MIN_RAY_VERSION_FOR_TOKEN_AUTH:
            yield f"authOptions.mode token needs rayVersion >= 2.52.0, got {spec.get('rayVersion')}"


def _fault_tolerance_problems(spec: dict[str, Any]) -> Iterator[str]:
    head_env = _head_env(spec)
    if "redis-username" in ((spec.get("headGroupSpec") or {}).get("rayStartParams") or {}) or "REDIS_USERNAME" in head_env:
        yield "a Redis username on the head (redis-username, REDIS_USERNAME): use gcsFaultToleranceOptions.redisUsername"
    if not spec.get("gcsFaultToleranceOptions"):
        if "RAY_REDIS_ADDRESS" in head_env:
            yield "RAY_REDIS_ADDRESS in the head's env without gcsFaultToleranceOptions"
        return
    head = spec.get("headGroupSpec") or {}
    annotations = ((head.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    if "ray.io/ft-enabled" in annotations:
        yield "gcsFaultToleranceOptions together with the legacy ray.io/ft-enabled annotation"
    if "redis-password" in (head.get("rayStartParams") or {}):
        yield "gcsFaultToleranceOptions together with rayStartParams.redis-password on the head"
    for container in _containers(head):
        for env in container.get("env") or []:
            if env.get("name") in LEGACY_FT_HEAD_ENV:
                yield f"gcsFaultToleranceOptions together with {env['name']} in the head's env"


def _head_env(spec: dict[str, Any]) -> dict[str, Any]:
    """The env of the head's Ray container (the first container), by name."""
    containers = _containers(spec.get("headGroupSpec") or {})
    return {env.get("name"): env for env in (containers[0].get("env") or [])} if containers else {}


def _autoscaler_problems(spec: dict[str, Any]) -> Iterator[str]:
    options = spec.get("autoscalerOptions") or {}
    if (options.get("idleTimeoutSeconds") or 0) < 0:
        yield "autoscalerOptions.idleTimeoutSeconds must not be negative"
    head_env = _head_env(spec)
    flag = head_env.get(AUTOSCALER_V2_ENV)
    flag_on = flag is not None and str(flag.get("value", "")).lower() in ("1", "true")
    enabled = bool(spec.get("enableInTreeAutoscaling"))
    if enabled and options.get("version") and flag is not None:
        yield f"autoscalerOptions.version and the head's {AUTOSCALER_V2_ENV} env var are both set"
    v2 = options.get("version") == "v2" or flag_on
    for where, group in _groups(spec):
        if where == "headGroupSpec":
            continue
        if group.get("idleTimeoutSeconds") is not None and not (enabled and v2):
            yield f"{where}.idleTimeoutSeconds needs the autoscaler v2"
        if group.get("suspend") and enabled:
            yield f"{where}.suspend: a worker group cannot be suspended while the autoscaler runs"
    if not v2:
        return
    if not enabled:
        yield "autoscaler v2 needs enableInTreeAutoscaling: true"
    for where, group in _groups(spec):
        policy = ((group.get("template") or {}).get("spec") or {}).get("restartPolicy")
        if policy not in (None, "Never"):
            yield f"{where}: autoscaler v2 needs restartPolicy Never, got {policy}"


def operator_problems(obj: dict[str, Any]) -> list[str]:
    """Reconcile-time rejections of the KubeRay operator for a rendered object."""
    found: list[str] = []
    kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name", "")
    if kind in NAME_LIMITS:
        if len(name) > NAME_LIMITS[kind]:
            found.append(f"{kind}/{name}: name longer than {NAME_LIMITS[kind]} characters")
        if not DNS1035.match(name):
            found.append(f"{kind}/{name}: name is not a DNS-1035 label")
    for where, spec, owned in ray_cluster_specs(obj):
        found += [f"{where}: {problem}" for problem in _cluster_problems(spec, owned)]
    return found


def image_version_problems(obj: dict[str, Any]) -> list[str]:
    """rayVersion must match the Ray version in the tags of rayproject images."""
    found = []
    for where, spec, _ in ray_cluster_specs(obj):
        want = parse_version(spec.get("rayVersion"))
        for group_where, group in _groups(spec):
            for container in _containers(group):
                image = container.get("image", "")
                if "rayproject/ray" not in image.rsplit(":", 1)[0]:
                    continue
                got = parse_version(image.rsplit(":", 1)[-1])
                if got and want and got != want:
                    found.append(f"{where} {group_where}: image {image} does not match rayVersion {spec.get('rayVersion')}")
    return found


# --- pod policies -------------------------------------------------------------------------

def _all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def pod_security_problems(pod: PodTemplate, level: str = DEFAULT_LEVEL,
                          minor: str = SUPPORTED_KUBE_MINORS[-1]) -> Iterator[str]:
    """The Kubernetes Pod Security admission at `level` (podSecurity.level) on the pod the API
    server gets from this template (the operator's autoscaler sidecar included)."""
    for violation in podsecurity.violations(pod.as_created(), level, minor):
        yield str(violation)


# What every container must state: the scheduler places by requests; a memory limit keeps one
# container from taking a node's memory.
REQUIRED_RESOURCES = (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))


def missing_resources(resources: dict[str, Any] | None) -> Iterator[str]:
    """`requests.cpu`-style names of the REQUIRED_RESOURCES that resources lacks."""
    resources = resources or {}
    for section, key in REQUIRED_RESOURCES:
        if key not in (resources.get(section) or {}):
            yield f"{section}.{key}"


def resource_problems(pod: PodTemplate) -> Iterator[str]:
    for container in _all_containers(pod.spec):
        for missing in missing_resources(container.get("resources")):
            yield f"container {container.get('name')}: resources.{missing} is not set"


def operator_resource_problems(values: dict[str, Any]) -> Iterator[str]:
    """The kuberay-operator subchart's Deployment takes its container's resources from
    `kuberay-operator.resources`. Offline the subchart is not rendered, so the values that reach
    it are checked instead (that chart's own defaults set no requests)."""
    operator = values.get("kuberay-operator") or {}
    if operator.get("enabled", True) is False:
        return
    for missing in missing_resources(operator.get("resources")):
        yield (f"kuberay-operator.resources.{missing} is not set: the operator Deployment would run "
               "without it")


def image_problems(pod: PodTemplate) -> Iterator[str]:
    for container in _all_containers(pod.spec):
        image = container.get("image") or ""
        tail = image.rsplit("/", 1)[-1]
        if "@" in tail:
            continue
        if ":" not in tail or tail.endswith(":latest"):
            yield f"container {container.get('name')}: image {image!r} needs a pinned tag, not latest"


def probe_problems(pod: PodTemplate) -> Iterator[str]:
    """Long-running non-Ray containers need a readiness probe (KubeRay adds Ray nodes' own).
    Pods that run to completion do not: Pods, Jobs, and a RayJob's submitter (a Job's pod)."""
    if pod.ray_node or pod.owner.split("/")[0] in ("Pod", "Job", "CronJob"):
        return
    if pod.path.endswith("submitterPodTemplate"):
        return
    for container in pod.spec.get("containers") or []:
        if "readinessProbe" not in container:
            yield f"container {container.get('name')}: no readinessProbe"


def structure_problems(pod: PodTemplate) -> Iterator[str]:
    """What the API server refuses in any pod, which no schema catches: a container name, a volume
    name, an env name or a mount path twice, a mount of a volume the pod lacks, a resource claim
    the pod does not declare; on Ray pods also a container named like one KubeRay adds."""
    spec = pod.spec
    containers = _all_containers(spec)
    names = [c.get("name") for c in containers]
    for name in _repeated(names):
        yield f"container name {name} appears twice"
    if pod.ray_node:
        for name in sorted({n for n in names if n in OPERATOR_CONTAINERS}, key=str):
            yield f"container {name}: KubeRay adds a container of that name to Ray pods"
    volumes = [v.get("name") for v in spec.get("volumes") or []]
    for name in _repeated(volumes):
        yield f"volume name {name} appears twice"
    known = set(volumes) | (set(OPERATOR_VOLUMES) if pod.ray_node else set())
    claims = {c.get("name") for c in spec.get("resourceClaims") or []}
    for container in containers:
        cname = container.get("name")
        for name in _repeated([e.get("name") for e in container.get("env") or []]):
            yield f"container {cname}: env {name} appears twice"
        for path in _repeated([str(m.get("mountPath", "")).rstrip("/") for m in container.get("volumeMounts") or []]):
            yield f"container {cname}: two volumes mounted at {path}"
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in known:
                yield f"container {cname}: volumeMount {mount.get('name')} names no volume of the pod"
        for claim in (container.get("resources") or {}).get("claims") or []:
            if claim.get("name") not in claims:
                yield f"container {cname}: resources.claims {claim.get('name')} is not in spec.resourceClaims"


def _repeated(items: list[Any]) -> list[Any]:
    """The items that appear more than once, each once, sorted."""
    return sorted({item for item in items if items.count(item) > 1}, key=str)


POD_POLICIES: dict[str, Callable[[PodTemplate, str, str], Iterator[str]]] = {
    "pod-security": pod_security_problems,
    "resources": lambda pod, level, minor: resource_problems(pod),
    "image-tag": lambda pod, level, minor: image_problems(pod),
    "probes": lambda pod, level, minor: probe_problems(pod),
    "pod-structure": lambda pod, level, minor: structure_problems(pod),
}


def pod_problems(pod: PodTemplate, level: str = DEFAULT_LEVEL,
                 minor: str = SUPPORTED_KUBE_MINORS[-1]) -> dict[str, list[str]]:
    """Policy name -> violations for one pod template (Pod Security at level and minor)."""
    return {name: list(check(pod, level, minor)) for name, check in POD_POLICIES.items()}


def autoscaler_container_problems(obj: dict[str, Any]) -> list[str]:
    """The operator builds the autoscaler sidecar from autoscalerOptions: hold it to the same
    resource policy as the containers the chart writes itself (its Pod Security is judged in the
    head's pod, pods.PodTemplate.sidecars)."""
    found = []
    for where, spec, _ in ray_cluster_specs(obj):
        if not spec.get("enableInTreeAutoscaling"):
            continue
        options = spec.get("autoscalerOptions") or {}
        container = {"name": "autoscaler", "resources": options.get("resources"), "image": "autoscaler:from-head"}
        pod = PodTemplate(where, "autoscalerOptions", {"spec": {"containers": [container]}}, True)
        found += [f"{where} autoscalerOptions: {problem}" for problem in resource_problems(pod)]
    return found
