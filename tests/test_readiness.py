"""`make up`'s waiting code (harness.readiness) against recorded status objects: each verdict, the
progress output, and the wait loop's ready, failure and timeout paths - on a fake clock, without a
cluster and without waiting. The recorded objects are validated strictly against the KubeRay v1.7.0
CRDs (their status schema included) and Kubernetes' Deployment schema, so they cannot drift from
the real API."""
from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from harness import kubernetes, readiness
from harness.readiness import FAILED, READY, WAITING, Target, TargetFailed, TimedOut, wait_until_ready
from harness.tools import TEST_DATA_DIR
from harness.versions import SUPPORTED_KUBE_MINORS

CASES_DIR = TEST_DATA_DIR / "status"
CASES = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(CASES_DIR.glob("*.yaml"))}

OPERATOR = Target("Deployment", "kuberay-operator", "ray-platform",
                  "app.kubernetes.io/name=kuberay-operator,app.kubernetes.io/instance=ray-platform")
CLUSTER = Target("RayCluster", "ray-platform", "ray-platform")
SERVICE = Target("RayService", "ray-platform-sd", "ray-platform")


def case(name: str) -> dict[str, Any]:
    return copy.deepcopy(CASES[name]["object"])


def test_there_are_cases_of_every_kind_and_outcome() -> None:
    seen = {(c["object"]["kind"], c["expect"]) for c in CASES.values()}
    for kind in ("Deployment", "RayCluster", "RayService"):
        for outcome in (READY, WAITING, FAILED):
            assert (kind, outcome) in seen, f"no recorded {kind} status that is {outcome}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_object_matches_the_api_schema(name: str, crds) -> None:
    """Ray objects strictly against their CRD (status included), Deployments against Kubernetes."""
    obj = CASES[name]["object"]
    if obj["kind"] == "Deployment":
        problems = kubernetes.problems(obj, SUPPORTED_KUBE_MINORS[-1])
    else:
        assert crds.knows(obj) and "status" in obj
        problems = crds.problems(obj)
    assert not problems, f"{name}: " + "\n".join(problems)


def test_the_status_schema_check_can_fail(crds) -> None:
    obj = case("raycluster-ready")
    obj["status"]["conditions"][0]["status"] = "Yes"  # not True/False/Unknown
    obj["status"]["readyWorkers"] = 1  # no such field
    assert len(crds.problems(obj)) == 2


@pytest.mark.parametrize("name", sorted(CASES))
def test_verdict_of_recorded_status(name: str) -> None:
    recorded = CASES[name]
    obj = recorded["object"]
    verdict = readiness.VERDICTS[obj["kind"]](obj)
    assert verdict.state == recorded["expect"], f"{name}: {verdict}"
    assert recorded["detail"] in verdict.detail, f"{name}: {verdict.detail!r}"


def test_a_failed_apps_traceback_is_told_by_its_exception() -> None:
    """Serve reports a failed import as a long traceback; the verdict keeps its last line."""
    obj = case("rayservice-deploy-failed")
    frames = "".join(f'  File "/ray/serve/_private/f{i}.py", line {i}, in f{i}\n    x()\n'
                     for i in range(12))
    obj["status"]["pendingServiceStatus"]["applicationStatuses"]["stable_diffusion"]["message"] = (
        "Deploying app 'stable_diffusion' failed with exception:\nTraceback (most recent call "
        f"last):\n{frames}ModuleNotFoundError: No module named 'ray_platform_sd.no_such_module'\n")
    verdict = readiness.rayservice_verdict(obj)
    assert verdict.state == FAILED
    assert verdict.detail.endswith(
        "ModuleNotFoundError: No module named 'ray_platform_sd.no_such_module'"), verdict.detail
    assert "failed with exception:" in verdict.detail and "f11.py" not in verdict.detail


def test_missing_object_is_waited_for() -> None:
    assert readiness.verdict_of(CLUSTER, None) == readiness.Verdict(WAITING, "not found yet")


def test_raycluster_with_a_worker_short_is_not_ready() -> None:
    obj = case("raycluster-ready")
    obj["status"]["readyWorkerReplicas"] = 0
    verdict = readiness.raycluster_verdict(obj)
    assert verdict.state == WAITING and "workers 0/1 ready" in verdict.detail


def test_rayservice_ready_but_an_app_still_deploying_is_not_ready() -> None:
    obj = case("rayservice-ready")
    obj["status"]["activeServiceStatus"]["applicationStatuses"]["other"] = {"status": "DEPLOYING"}
    verdict = readiness.rayservice_verdict(obj)
    assert verdict.state == WAITING and "other DEPLOYING" in verdict.detail


def test_operator_secret_name_follows_kuberay_check_name() -> None:
    assert readiness.operator_secret_name("ray-platform") == "ray-platform"
    long = "a" * 3 + "-" + "b" * 49  # 53 characters, the RayCluster maximum
    assert readiness.operator_secret_name(long) == "r" + "b" * 49  # last 50 start with '-'
    assert readiness.operator_secret_name("ab9" + "x" * 49) == "r" + "x" * 49  # last 50 start with 9
    assert readiness.operator_secret_name("q" * 50) == "q" * 50


# --- the wait loop, on a fake clock --------------------------------------------------------------

class FakeClock:
    """clock() and sleep() for wait_until_ready: sleeping advances time, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the loop must never spin without sleeping"
        self.sleeps.append(seconds)
        self.now += seconds


class Timeline:
    """fetch() replaying, per target, a list of (from this many seconds on, recorded case name)."""

    def __init__(self, clock: FakeClock, script: dict[Target, list[tuple[float, str | None]]]):
        self.clock, self.start, self.script = clock, clock.now, script
        self.calls: list[Target] = []

    def __call__(self, target: Target) -> dict[str, Any] | None:
        self.calls.append(target)
        elapsed = self.clock.now - self.start
        name = [case_name for since, case_name in self.script[target] if since <= elapsed][-1]
        return None if name is None else case(name)


def run(script, timeout=600.0, **options) -> tuple[dict, list[str], FakeClock, Timeline]:
    clock = FakeClock()
    fetch = Timeline(clock, script)
    lines: list[str] = []
    options.setdefault("fail_after", 0.0)
    result = wait_until_ready(list(script), fetch, timeout, interval=5.0, clock=clock.clock,
                              sleep=clock.sleep, report=lines.append, **options)
    return result, lines, clock, fetch


HAPPY = {
    OPERATOR: [(0, None), (5, "deployment-progressing"), (20, "deployment-ready")],
    CLUSTER: [(0, None), (10, "raycluster-creating"), (60, "raycluster-head-ready-worker-pending"),
              (90, "raycluster-ready")],
    SERVICE: [(0, "rayservice-not-observed"), (15, "rayservice-initializing"), (300, "rayservice-ready")],
}


def test_waits_until_everything_is_ready_with_progress() -> None:
    verdicts, lines, clock, fetch = run(HAPPY)
    assert all(v.ready for v in verdicts.values())
    assert clock.now - 1000.0 == 300.0  # returned on the first poll that saw the service ready
    assert set(clock.sleeps) == {5.0}
    text = "\n".join(lines)
    for expected in ("Deployment/kuberay-operator: waiting - not found yet",
                     "RayCluster/ray-platform: waiting - HeadPodReady False (ContainersNotReady)",
                     "RayService/ray-platform-sd: waiting - Ready False (Initializing)",
                     "RayCluster/ray-platform: ready", "all ready"):
        assert expected in text, text
    assert lines[-1].startswith("[ 5m00s] all ready")
    # A target is not fetched again once ready.
    assert fetch.calls.count(OPERATOR) == 5  # at 0, 5, 10, 15, 20 s


def test_progress_reminds_what_is_pending_when_nothing_changes() -> None:
    _, lines, _, _ = run(HAPPY, remind_every=60.0)
    reminders = [line for line in lines if "still waiting for" in line]
    assert reminders and all("RayService/ray-platform-sd" in line for line in reminders)
    # Nothing printed twice in a row for an unchanged state.
    state_lines = [line.split("] ", 1)[1] for line in lines if "still waiting" not in line]
    assert len(state_lines) == len(set(state_lines))


def test_times_out_naming_what_is_not_ready() -> None:
    stuck = {**HAPPY, SERVICE: [(0, "rayservice-initializing")]}
    with pytest.raises(TimedOut) as raised:
        run(stuck, timeout=120.0)
    message = str(raised.value)
    assert message.startswith("not ready after 120s")
    assert "RayService/ray-platform-sd: Ready False (Initializing)" in message
    assert "RayCluster/ray-platform" not in message  # that one was ready
    assert raised.value.verdicts[CLUSTER].ready


def test_timeout_never_oversleeps() -> None:
    clock = FakeClock()
    fetch = Timeline(clock, {CLUSTER: [(0, "raycluster-creating")]})
    with pytest.raises(TimedOut):
        wait_until_ready([CLUSTER], fetch, 12.0, interval=5.0, clock=clock.clock, sleep=clock.sleep,
                         report=lambda _: None)
    assert clock.sleeps == [5.0, 5.0, 2.0] and clock.now - 1000.0 == 12.0


@pytest.mark.parametrize("target,failure,expected", [
    (CLUSTER, "raycluster-replica-failure", "FailedCreateHeadPod"),
    (SERVICE, "rayservice-deploy-failed", "DEPLOY_FAILED"),
    (SERVICE, "rayservice-initializing-timeout", "InitializingTimeout"),
    (OPERATOR, "deployment-deadline-exceeded", "ProgressDeadlineExceeded"),
])
def test_a_failure_stops_the_wait_at_once(target: Target, failure: str, expected: str) -> None:
    script = {**HAPPY, target: [(0, failure)]}
    with pytest.raises(TargetFailed) as raised:
        run(script, timeout=3600.0)
    assert str(raised.value).startswith(f"{target}: ") and expected in str(raised.value)
    assert not isinstance(raised.value, TimedOut)


def test_a_failure_must_last_before_the_wait_gives_up() -> None:
    # The operator clears ReplicaFailure once it can create the pods (a quota freed up, say).
    recovering = {CLUSTER: [(0, "raycluster-replica-failure"), (40, "raycluster-ready")]}
    verdicts, lines, _, _ = run(recovering, fail_after=60.0)
    assert verdicts[CLUSTER].ready
    assert any("failed - ReplicaFailure" in line for line in lines)
    lasting = {CLUSTER: [(0, "raycluster-replica-failure")]}
    with pytest.raises(TargetFailed):
        run(lasting, fail_after=60.0)


def test_a_failure_gives_up_after_fail_after_seconds() -> None:
    clock = FakeClock()
    fetch = Timeline(clock, {CLUSTER: [(0, "raycluster-creating"), (30, "raycluster-replica-failure")]})
    with pytest.raises(TargetFailed):
        wait_until_ready([CLUSTER], fetch, 3600.0, interval=5.0, clock=clock.clock, sleep=clock.sleep,
                         report=lambda _: None, fail_after=60.0)
    assert clock.now - 1000.0 == 90.0


def test_an_upgrade_waits_for_the_new_generation() -> None:
    script = {CLUSTER: [(0, "raycluster-upgrade-not-observed"), (25, "raycluster-ready")]}
    upgraded = case("raycluster-ready")
    upgraded["metadata"]["generation"] = upgraded["status"]["observedGeneration"] = 2
    clock = FakeClock()
    fetch = Timeline(clock, script)
    original = fetch.__call__

    def with_generation_2(target: Target):
        obj = original(target)
        if obj["status"].get("state") == "ready" and obj["metadata"]["generation"] == 1:
            return upgraded
        return obj

    lines: list[str] = []
    wait_until_ready([CLUSTER], with_generation_2, 600.0, interval=5.0, clock=clock.clock,
                     sleep=clock.sleep, report=lines.append)
    assert clock.now - 1000.0 == 25.0
    assert "status is for generation 1, spec is generation 2" in lines[0]


# --- the client adapter, with a stand-in for the Kubernetes API ------------------------------------

def test_kube_fetcher_maps_targets_to_api_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("kubernetes")
    from kubernetes import client, config
    from kubernetes.client import exceptions

    calls: list[tuple] = []

    class Custom:
        def __init__(self, _api): pass

        def get_namespaced_custom_object(self, group, version, namespace, plural, name):
            calls.append((group, version, namespace, plural, name))
            if name == "missing":
                raise exceptions.ApiException(status=404)
            if name == "broken":
                raise exceptions.ApiException(status=500)
            return case("raycluster-ready")

    class Apps:
        def __init__(self, _api): pass

        def list_namespaced_deployment(self, namespace, label_selector):
            calls.append(("deployments", namespace, label_selector))
            spec = client.V1DeploymentSpec(selector=client.V1LabelSelector(match_labels={"a": "b"}),
                                           template=client.V1PodTemplateSpec())
            item = client.V1Deployment(metadata=client.V1ObjectMeta(name="op", generation=1), spec=spec,
                                       status=client.V1DeploymentStatus(observed_generation=1, replicas=1))
            return client.V1DeploymentList(items=[item] if "present" in label_selector else [])

    class ApiClient:
        def sanitize_for_serialization(self, obj):
            return client.ApiClient().sanitize_for_serialization(obj)

    monkeypatch.setattr(config, "new_client_from_config", lambda **_: ApiClient())
    monkeypatch.setattr(client, "CustomObjectsApi", Custom)
    monkeypatch.setattr(client, "AppsV1Api", Apps)
    fetch = readiness.KubeFetcher()
    assert fetch(CLUSTER)["status"]["state"] == "ready"
    assert calls[-1] == ("ray.io", "v1", "ray-platform", "rayclusters", "ray-platform")
    assert fetch(Target("RayService", "missing", "ns")) is None
    assert calls[-1][3] == "rayservices"
    with pytest.raises(exceptions.ApiException):
        fetch(Target("RayCluster", "broken", "ns"))
    deployment = fetch(Target("Deployment", "op", "ns", "present=1"))
    assert deployment["metadata"]["name"] == "op" and deployment["status"]["observedGeneration"] == 1
    assert fetch(Target("Deployment", "op", "ns", "absent=1")) is None


def test_kube_fetcher_over_http_against_a_stub_api_server(tmp_path) -> None:
    """The real client over HTTP: URL paths, the label selector, JSON in camelCase, 404 -> None."""
    pytest.importorskip("kubernetes")
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    requests_seen: list[str] = []
    operator = case("deployment-ready")

    class Api(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests_seen.append(self.path)
            url = urlsplit(self.path)
            if url.path == "/apis/ray.io/v1/namespaces/ray-platform/rayclusters/ray-platform":
                body, status = case("raycluster-ready"), 200
            elif url.path == "/apis/apps/v1/namespaces/ray-platform/deployments":
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                items = [operator] if selector == OPERATOR.selector else []
                body, status = {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": items}, 200
            else:
                body, status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                "code": 404, "message": "not found"}, 404
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub",
        "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "stub", "user": {"token": "t"}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}]}))
    try:
        fetch = readiness.KubeFetcher(str(kubeconfig))
        assert readiness.verdict_of(CLUSTER, fetch(CLUSTER)).ready
        deployment = fetch(OPERATOR)
        assert deployment["status"]["availableReplicas"] == 1  # camelCase, as the recorded cases
        assert readiness.verdict_of(OPERATOR, deployment).ready
        assert fetch(SERVICE) is None
        assert fetch(Target("Deployment", "kuberay-operator", "ray-platform", "app=other")) is None
    finally:
        server.shutdown()
        server.server_close()
    selectors = [parse_qs(urlsplit(path).query).get("labelSelector", [""])[0] for path in requests_seen]
    assert OPERATOR.selector in selectors


def test_a_read_error_is_waited_through_and_shown() -> None:
    clock = FakeClock()
    answers = iter([ConnectionResetError("connection reset by peer"), case("raycluster-ready")])

    def flaky(target: Target):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    lines: list[str] = []
    verdicts = wait_until_ready([CLUSTER], flaky, 60.0, interval=5.0, clock=clock.clock, sleep=clock.sleep,
                                report=lines.append)
    assert verdicts[CLUSTER].ready
    assert "waiting - cannot read it: ConnectionResetError: connection reset by peer" in lines[0]
