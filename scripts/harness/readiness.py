"""Wait until the platform is up: the KubeRay operator Deployment, the RayCluster and the
RayService, judged by the status the API server reports for them.

The verdict functions read plain dicts (what the API server returns as JSON), so the tests feed
them status objects recorded in tests/data/status/ and need no cluster. `wait_until_ready` takes
its clock, sleep and fetch function as arguments: the tests drive it without waiting.
`KubeFetcher` is the one piece that talks to a cluster, through the Kubernetes Python client.

What "ready" means, from the KubeRay v1.7.0 API types (ray-operator/apis/ray/v1):
- Deployment: status.observedGeneration caught up, conditions Available=True, all replicas updated
  and available. Failed: Progressing=False with reason ProgressDeadlineExceeded.
- RayCluster: status.observedGeneration caught up, conditions RayClusterProvisioned=True (every
  Ray pod ready once) and HeadPodReady=True, and no worker missing. Failed: ReplicaFailure=True
  (the operator cannot create or delete pods: admission refused them, quota, ...).
- RayService: status.observedGeneration caught up, condition Ready=True (serve endpoints > 0), no
  UpgradeInProgress=True, and every Serve application of the active cluster RUNNING. Failed:
  Ready=False with reason InitializingTimeout, or an application in DEPLOY_FAILED.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

READY, WAITING, FAILED = "ready", "waiting", "failed"

# Serve application states (Ray's ApplicationStatus, mirrored by KubeRay's AppStatus).
APP_RUNNING = "RUNNING"
APP_FAILED = "DEPLOY_FAILED"


@dataclass(frozen=True)
class Verdict:
    state: str  # READY, WAITING or FAILED
    detail: str  # one line for the progress output

    @property
    def ready(self) -> bool:
        return self.state == READY


@dataclass(frozen=True)
class Target:
    """Something to wait for: `kind` is Deployment, RayCluster or RayService. For a Deployment
    found by labels (the operator's name depends on the subchart), `selector` is set and `name`
    is what the progress output calls it."""

    kind: str
    name: str
    namespace: str
    selector: str = ""

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


class NotReady(Exception):
    """Raised by wait_until_ready: a target failed, or time ran out. str() says which and why."""

    def __init__(self, message: str, verdicts: Mapping[Target, Verdict]):
        super().__init__(message)
        self.verdicts = dict(verdicts)


class TargetFailed(NotReady):
    pass


class TimedOut(NotReady):
    pass


# --- verdicts ------------------------------------------------------------------------------

def conditions(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """status.conditions by type."""
    found = ((obj.get("status") or {}).get("conditions")) or []
    return {c.get("type"): c for c in found if isinstance(c, dict)}


def _is(condition: Mapping[str, Any] | None, status: str) -> bool:
    return bool(condition) and condition.get("status") == status


def _describe(condition: Mapping[str, Any] | None) -> str:
    if not condition:
        return "not reported yet"
    text = f"{condition.get('status')} ({condition.get('reason') or 'no reason'})"
    message = (condition.get("message") or "").strip()
    return f"{text}: {_short(message)}" if message else text


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failure_message(text: str, limit: int = 300) -> str:
    """A Serve failure message, shortened: a Python traceback is told by its last line (the
    exception: what a user needs) after the sentence that precedes it."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        head = text.split("Traceback (most recent call last)")[0]
        return _short(f"{' '.join(head.split())} {lines[-1]}".strip(), limit)
    return _short(text, limit)


def _stale(obj: Mapping[str, Any]) -> str | None:
    """A reason to wait when the status describes an older generation of the spec."""
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is None:
        return None
    if observed is None or observed < generation:
        return f"status is for generation {observed}, spec is generation {generation}"
    return None


def deployment_verdict(obj: Mapping[str, Any]) -> Verdict:
    status = obj.get("status") or {}
    found = conditions(obj)
    progressing = found.get("Progressing")
    if _is(progressing, "False") and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Verdict(FAILED, f"rollout stuck: {_describe(progressing)}")
    stale = _stale(obj)
    if stale:
        return Verdict(WAITING, stale)
    wanted = (obj.get("spec") or {}).get("replicas", 1)
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    counts = f"{available}/{wanted} available, {updated}/{wanted} updated"
    if not _is(found.get("Available"), "True"):
        return Verdict(WAITING, f"Available {_describe(found.get('Available'))}; {counts}")
    if updated < wanted or available < wanted or status.get("replicas", 0) > wanted:
        return Verdict(WAITING, f"rolling out; {counts}")
    return Verdict(READY, counts)


def _worker_counts(status: Mapping[str, Any]) -> tuple[int, int]:
    return status.get("readyWorkerReplicas", 0), status.get("desiredWorkerReplicas", 0)


def raycluster_verdict(obj: Mapping[str, Any]) -> Verdict:
    status = obj.get("status") or {}
    found = conditions(obj)
    failure = found.get("ReplicaFailure")
    if _is(failure, "True"):
        return Verdict(FAILED, f"ReplicaFailure {_describe(failure)}")
    if status.get("state") == "failed":  # the deprecated state field; still set on hard failures
        return Verdict(FAILED, f"state failed: {_short(status.get('reason') or 'no reason given')}")
    stale = _stale(obj)
    if stale:
        return Verdict(WAITING, stale)
    ready, desired = _worker_counts(status)
    workers = f"workers {ready}/{desired} ready"
    if not found:  # the RayClusterStatusConditions feature gate is off: only `state` is set
        if status.get("state") == "ready" and ready >= desired:
            return Verdict(READY, f"state ready, {workers}")
        return Verdict(WAITING, f"state {status.get('state') or 'not reported yet'}; {workers}")
    head = found.get("HeadPodReady")
    if not _is(head, "True"):
        return Verdict(WAITING, f"HeadPodReady {_describe(head)}; {workers}")
    provisioned = found.get("RayClusterProvisioned")
    if not _is(provisioned, "True"):
        return Verdict(WAITING, f"RayClusterProvisioned {_describe(provisioned)}; {workers}")
    if ready < desired:
        return Verdict(WAITING, f"head ready; {workers}")
    return Verdict(READY, f"head ready, {workers}")


def _applications(service_status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(service_status.get("applicationStatuses") or {})


def rayservice_verdict(obj: Mapping[str, Any]) -> Verdict:
    status = obj.get("status") or {}
    found = conditions(obj)
    active = status.get("activeServiceStatus") or {}
    pending = status.get("pendingServiceStatus") or {}
    for where, service_status in (("active", active), ("pending", pending)):
        for name, app in _applications(service_status).items():
            if app.get("status") == APP_FAILED:
                cluster = service_status.get("rayClusterName") or "?"
                return Verdict(FAILED, f"Serve application {name} on the {where} cluster {cluster} is "
                                       f"{APP_FAILED}: {_failure_message(app.get('message') or 'no message')}")
    ready = found.get("Ready")
    if _is(ready, "False") and ready.get("reason") == "InitializingTimeout":
        return Verdict(FAILED, f"Ready {_describe(ready)}")
    stale = _stale(obj)
    if stale:
        return Verdict(WAITING, stale)
    apps = _applications(active)
    app_states = ", ".join(f"{name} {app.get('status') or '?'}" for name, app in sorted(apps.items()))
    apps_text = f"apps: {app_states}" if apps else "no Serve application reported yet"
    if ready is None and status.get("serviceStatus") == "Running" and apps \
            and all(app.get("status") == APP_RUNNING for app in apps.values()):
        return Verdict(READY, f"serviceStatus Running; {apps_text}")  # an operator without conditions
    if not _is(ready, "True"):
        cluster = active.get("rayClusterName") or pending.get("rayClusterName") or "not created yet"
        return Verdict(WAITING, f"Ready {_describe(ready)}; cluster {cluster}; {apps_text}")
    upgrading = found.get("UpgradeInProgress")
    if _is(upgrading, "True"):
        return Verdict(WAITING, f"upgrade in progress: {_describe(upgrading)}")
    if not apps or any(app.get("status") != APP_RUNNING for app in apps.values()):
        return Verdict(WAITING, f"Ready but {apps_text}")
    endpoints = status.get("numServeEndpoints", 0)
    return Verdict(READY, f"{apps_text}; {endpoints} serve endpoint(s); cluster {active.get('rayClusterName')}")


VERDICTS: dict[str, Callable[[Mapping[str, Any]], Verdict]] = {
    "Deployment": deployment_verdict,
    "RayCluster": raycluster_verdict,
    "RayService": rayservice_verdict,
}


def verdict_of(target: Target, obj: Mapping[str, Any] | None) -> Verdict:
    if obj is None:
        return Verdict(WAITING, "not found yet")
    return VERDICTS[target.kind](obj)


# --- waiting -------------------------------------------------------------------------------

Fetch = Callable[[Target], "Mapping[str, Any] | None"]


@dataclass
class Progress:
    """Prints a line when a target's state changes, and a reminder of what is still pending
    every `every` seconds, so a long wait never looks hung."""

    report: Callable[[str], None] = print
    every: float = 30.0
    _last: dict[Target, Verdict] = field(default_factory=dict)
    _last_reminder: float = 0.0

    def update(self, elapsed: float, verdicts: Mapping[Target, Verdict]) -> None:
        changed = False
        for target, verdict in verdicts.items():
            if self._last.get(target) != verdict:
                self.report(f"[{_clock(elapsed)}] {target}: {verdict.state} - {verdict.detail}")
                self._last[target] = verdict
                changed = True
        if changed:
            self._last_reminder = elapsed
        elif elapsed - self._last_reminder >= self.every:
            pending = ", ".join(str(t) for t, v in verdicts.items() if not v.ready)
            self.report(f"[{_clock(elapsed)}] still waiting for {pending}")
            self._last_reminder = elapsed


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:2d}m{secs:02d}s"


def wait_until_ready(
    targets: Iterable[Target],
    fetch: Fetch,
    timeout: float,
    interval: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    report: Callable[[str], None] = print,
    remind_every: float = 30.0,
    fail_after: float = 60.0,
) -> dict[Target, Verdict]:
    """Poll every target until all are ready. Raises TargetFailed once a target has reported a
    failure for `fail_after` seconds in a row (the operator clears some failures itself, e.g. a
    quota that frees up), and TimedOut after `timeout` seconds; both name each target that is not
    ready and why."""
    targets = list(targets)
    progress = Progress(report, remind_every)
    start = clock()
    verdicts: dict[Target, Verdict] = {}
    failing_since: dict[Target, float] = {}
    while True:
        elapsed = clock() - start
        for target in targets:
            if target in verdicts and verdicts[target].ready:
                continue  # once ready, stays counted: a later blip is the next step's business
            try:
                verdicts[target] = verdict_of(target, fetch(target))
            except Exception as error:  # the API server restarting, a dropped connection: keep trying
                verdicts[target] = Verdict(WAITING, f"cannot read it: {_short(f'{type(error).__name__}: {error}')}")
            if verdicts[target].state == FAILED:
                failing_since.setdefault(target, elapsed)
            else:
                failing_since.pop(target, None)
        progress.update(elapsed, verdicts)
        failed = {t: v for t, v in verdicts.items() if t in failing_since and elapsed - failing_since[t] >= fail_after}
        if failed:
            lines = "; ".join(f"{t}: {v.detail}" for t, v in failed.items())
            raise TargetFailed(f"{lines}", verdicts)
        if all(v.ready for v in verdicts.values()):
            report(f"[{_clock(elapsed)}] all ready: {', '.join(map(str, targets))}")
            return verdicts
        if elapsed >= timeout:
            waiting = "; ".join(f"{t}: {v.detail}" for t, v in verdicts.items() if not v.ready)
            raise TimedOut(f"not ready after {int(timeout)}s - {waiting}", verdicts)
        sleep(min(interval, timeout - elapsed))


# --- the cluster side ----------------------------------------------------------------------

RAY_GROUP, RAY_VERSION = "ray.io", "v1"
PLURALS = {"RayCluster": "rayclusters", "RayService": "rayservices", "RayJob": "rayjobs"}


class KubeFetcher:
    """fetch(target) for wait_until_ready, through the Kubernetes Python client. Objects come
    back as the API server's JSON (camelCase keys), like the recorded status objects."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        from kubernetes import client, config  # imported here: only `make up` and e2e need it

        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        self._client = client
        self._api_client = api_client
        self._apps = client.AppsV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    def __call__(self, target: Target) -> Mapping[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            if target.kind == "Deployment":
                if target.selector:
                    found = self._apps.list_namespaced_deployment(target.namespace, label_selector=target.selector)
                    if not found.items:
                        return None
                    return self._api_client.sanitize_for_serialization(found.items[0])
                return self._api_client.sanitize_for_serialization(
                    self._apps.read_namespaced_deployment(target.name, target.namespace))
            return self._custom.get_namespaced_custom_object(
                RAY_GROUP, RAY_VERSION, target.namespace, PLURALS[target.kind], target.name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise


# --- names the operator generates ------------------------------------------------------------

def operator_secret_name(cluster_name: str) -> str:
    """The Secret KubeRay generates for a token-auth RayCluster without authOptions.secretName.

    KubeRay v1.7.0 names it utils.CheckName(<RayCluster name>) (pod.go, where RAY_AUTH_TOKEN is
    wired from it, and the history server/kubectl plugin that read it back): names longer than 50
    characters keep their last 50, and a leading digit or punctuation becomes `r`. The chart's
    template helper "ray-platform.tests.operatorSecretName" computes the same; a test keeps them
    in step.
    """
    name = cluster_name[-50:] if len(cluster_name) > 50 else cluster_name
    if name and (name[0].isdigit() or not name[0].isalnum()):
        name = "r" + name[1:]
    return name
