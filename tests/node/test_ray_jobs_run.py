"""RayJobs from `rayJobs.<name>` run to their end on the real node: on the chart's RayCluster
(clusterSelector) and on a cluster of their own, submitted by the submitter pod (K8sJobMode) and
by the operator over HTTP (HTTPMode). The entrypoint sums squares in Ray tasks, which can only
run on worker containers (the head has num-cpus 0); the RayJob reaches SUCCEEDED and the sum
appears in the submitter pod's output, or in the dashboard's job logs. A failing entrypoint
reaches FAILED with its message in the status; shutdownAfterJobFinishes deletes a job's own
cluster; the dashboard refuses a submission without the cluster's token. And a RayCronJob on the
chart's cluster: a RayJob per minute, each SUCCEEDED, none once suspended by helm upgrade.

One release in a namespace of its own with every job in it, removed at the end. The RayCronJob's
tests come first: it ticks from the install on, and the other jobs run meanwhile."""
from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from datetime import datetime
from typing import Any, Iterator

import pytest

from harness.render import make_offline_copy
from harness.tools import CHART_DIR
from own_release_helpers import OwnRelease, own_release, wait_for

pytestmark = pytest.mark.node

NAMESPACE = "rayjobs-real"
RELEASE = "rj"
PREFIX = f"{RELEASE}-ray-platform"
CLUSTER = PREFIX  # the chart's RayCluster
# Every Ray pod small in requests (the node has 2 cores and the dev release beside), with
# num-cpus and memory from the limits as values/local/real-node.yaml has them.
HEAD = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
WORKER = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
SUBMITTER = {"resources": {"requests": {"cpu": "50m", "memory": "200Mi"}}}
OWN_CLUSTER = {"head": {"resources": HEAD},
               "workerGroups": {"cpu": {"minReplicas": 1, "maxReplicas": 1, "resources": WORKER}}}
# Sum of i*i for i < COUNT, in Ray tasks, and the hosts (pod names) they ran on. One level of
# double quotes: the submitter's shell and the head's each read the entrypoint once.
SQUARES = (
    "python -c \"import os, socket, ray; ray.init(); "
    "square = ray.remote(lambda x: (x * x, socket.gethostname())); "
    "out = ray.get([square.options(scheduling_strategy='SPREAD').remote(i) "
    "for i in range(int(os.environ['COUNT']))]); "
    "print('sum of squares:', sum(v for v, _ in out)); "
    "print('hosts:', ','.join(sorted(set(h for _, h in out))))\"")
FAILURE = "intentional failure 4711"
FAILING = f"python -c \"raise SystemExit('{FAILURE}')\""
# Distinct counts, so no job can pass with another's output.
COUNTS = {"squares-k8s": 100, "squares-http": 50, "own-k8s": 30, "tick": 10}
TICK = "tick"


def sum_of_squares(count: int) -> int:
    return sum(i * i for i in range(count))


def job(key: str, **fields: Any) -> dict[str, Any]:
    return {"entrypoint": SQUARES, "runtimeEnv": {"env_vars": {"COUNT": str(COUNTS[key])}},
            **fields}


VALUES: dict[str, Any] = {
    "stableDiffusion": {"enabled": False},
    "rayCluster": {
        "head": {"resources": HEAD},
        # Two fixed workers: the tasks spread over both; no autoscaler to take one away.
        "workerGroups": {"cpu": {"replicas": 2, "minReplicas": 2, "maxReplicas": 2,
                                 "resources": WORKER}},
        "autoscaler": {"enabled": False},
    },
    "rayJobs": {
        "squares-k8s": job("squares-k8s", submitter=SUBMITTER),
        "squares-http": job("squares-http", submissionMode="HTTPMode"),
        "own-k8s": job("own-k8s", cluster=OWN_CLUSTER, submitter=SUBMITTER,
                       shutdownAfterJobFinishes=True),
        "fails": {"entrypoint": FAILING, "submissionMode": "HTTPMode", "cluster": OWN_CLUSTER},
        TICK: job(TICK, schedule="* * * * *", submitter=SUBMITTER),
    },
}
FINISH_TIMEOUT = 900


@pytest.fixture(scope="module")
def jobs(real_cluster, tmp_path_factory) -> Iterator[OwnRelease]:
    folder = tmp_path_factory.mktemp("rayjobs")
    chart = make_offline_copy(CHART_DIR, folder / "chart")
    with own_release(real_cluster, chart, folder, NAMESPACE, RELEASE, VALUES) as own:
        yield own


def rayjob(own: OwnRelease, name: str) -> dict[str, Any]:
    return own.get("rayjob", name, "-n", own.namespace)


def is_finished(job_: dict[str, Any]) -> bool:
    """The operator has judged the RayJob: Complete or Failed, where its reconcile ends."""
    return (job_.get("status") or {}).get("jobDeploymentStatus") in {"Complete", "Failed"}


def finished(own: OwnRelease, name: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job_ = rayjob(own, name)
        return job_ if is_finished(job_) else None
    return wait_for(f"RayJob {name} finished", probe, FINISH_TIMEOUT, interval=5)


def submitter_output(own: OwnRelease, job_name: str) -> str:
    """What the submitter pod printed (`ray job submit`, then `ray job logs --follow`)."""
    pods = wait_for(f"the submitter pod of {job_name}",
                    lambda: own.items("pods", f"job-name={job_name}"), 120)
    done = [p for p in pods if p["status"].get("phase") == "Succeeded"]
    assert done, [(p["metadata"]["name"], p["status"].get("phase")) for p in pods]
    return own.logs(done[0], "ray-job-submitter")


def worker_pod_names(own: OwnRelease, cluster: str) -> set[str]:
    return {p["metadata"]["name"]
            for p in own.items("pods", f"ray.io/cluster={cluster},ray.io/node-type=worker")}


def assert_squares(output: str, key: str, workers: set[str]) -> None:
    assert f"sum of squares: {sum_of_squares(COUNTS[key])}" in output, output
    hosts = next(line.split(":", 1)[1].strip().split(",") for line in output.splitlines()
                 if line.startswith("hosts:"))
    assert hosts and set(hosts) <= workers, (hosts, workers)


def cron_runs(own: OwnRelease) -> list[dict[str, Any]]:
    return own.items("rayjobs", f"ray.io/cronjob-name={PREFIX}-{TICK}")


def tick_of(run: dict[str, Any]) -> datetime:
    stamp = run["metadata"]["annotations"]["ray.io/cronjob-scheduled-timestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def by_tick(runs: list[dict[str, Any]]) -> dict[datetime, list[dict[str, Any]]]:
    ticks: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        ticks[tick_of(run)].append(run)
    return dict(sorted(ticks.items()))


def two_ticks_finished(own: OwnRelease) -> dict[datetime, list[dict[str, Any]]] | None:
    """The RayCronJob's runs by tick once two ticks have every run finished."""
    ticks = by_tick(cron_runs(own))
    done = [tick for tick, runs in ticks.items() if all(is_finished(r) for r in runs)]
    return ticks if len(done) >= 2 else None


def test_a_raycronjob_starts_one_rayjob_per_minute_each_succeeding(jobs) -> None:
    """Two ticks, each its own RayJob on the chart's cluster, each SUCCEEDED with its sum.

    KubeRay v1.6.2, the local cluster's operator, can start a tick twice: it names runs
    <cron>-<5 random characters>, and a reconcile that reads the RayCronJob before its own
    lastScheduleTime write is visible creates a second run for the same tick (kuberay#4849).
    v1.7.0, the chart's operator, names runs <cron>-<minutes since 1970>, so a second create of a
    tick collides: with it, exactly one run per tick is asserted. With v1.6.2 a tick's extra runs
    must be that race's (created together), never a run outside the schedule."""
    ticks = wait_for("two ticks of the RayCronJob finished", lambda: two_ticks_finished(jobs),
                     420, interval=5)
    times = list(ticks)
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])]
    assert all(gap == 60 for gap in gaps), f"not one tick per minute: {times}"
    for tick, runs in ticks.items():
        names = sorted(r["metadata"]["name"] for r in runs)
        if all(re.fullmatch(rf"{PREFIX}-{TICK}-\d+", name) for name in names):
            assert len(runs) == 1, f"{len(runs)} runs for the tick {tick}: {names}"
        else:
            created = [datetime.fromisoformat(r["metadata"]["creationTimestamp"].replace(
                "Z", "+00:00")) for r in runs]
            assert (max(created) - min(created)).total_seconds() <= 10, (tick, names, created)
            if len(runs) > 1:
                print(f"tick {tick:%H:%M}: {len(runs)} runs {names} (KubeRay v1.6.2, #4849)")
    finished_ticks = [runs for runs in ticks.values() if all(is_finished(r) for r in runs)]
    for run in [r for runs in finished_ticks for r in runs]:
        name = run["metadata"]["name"]
        assert [o["kind"] for o in run["metadata"]["ownerReferences"]] == ["RayCronJob"]
        status = run["status"]
        assert status["jobStatus"] == "SUCCEEDED", (name, status)
        output = submitter_output(jobs, name)
        assert f"sum of squares: {sum_of_squares(COUNTS[TICK])}" in output, output


def test_suspend_stops_new_runs(jobs) -> None:
    """helm upgrade with suspend: true; the next minute passes without a new RayJob."""
    values = {"rayJobs": {TICK: {"suspend": True}}}
    jobs.upgrade("suspend.yaml", values)
    cron = jobs.get("raycronjob", f"{PREFIX}-{TICK}", "-n", jobs.namespace)
    assert cron["spec"]["suspend"] is True
    time.sleep(5)  # a run the operator was creating as the upgrade landed counts as before
    before = {r["metadata"]["name"] for r in cron_runs(jobs)}
    # Past the next minute's tick, with room for a slow reconcile.
    time.sleep(60 - time.time() % 60 + 30)
    after = {r["metadata"]["name"] for r in cron_runs(jobs)}
    assert after == before, f"new runs while suspended: {sorted(after - before)}"


def test_a_job_on_the_charts_cluster_succeeds_with_its_sum_in_the_submitter_output(jobs) -> None:
    name = f"{PREFIX}-squares-k8s"
    status = finished(jobs, name)["status"]
    assert status["jobStatus"] == "SUCCEEDED", status
    assert status["jobDeploymentStatus"] == "Complete", status
    submitter = jobs.get("job", name, "-n", jobs.namespace)
    env = {e["name"]: e for e in submitter["spec"]["template"]["spec"]["containers"][0]["env"]}
    # The submitter authenticated with the cluster's token: the operator wires it from the
    # cluster's Secret (the chart renders token auth), and the submission above went through.
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == CLUSTER
    assert_squares(submitter_output(jobs, name), "squares-k8s", worker_pod_names(jobs, CLUSTER))


def dashboard_logs(own: OwnRelease, cluster: str, job_id: str) -> str:
    """`ray job logs` in the head container (its environment has the cluster's token)."""
    answer = own.exec(own.head_pod(cluster), "ray-head", "ray", "job", "logs", "--address",
                      "http://127.0.0.1:8265", job_id)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return answer.stdout


def test_a_job_in_http_mode_succeeds_with_its_sum_in_the_dashboard_logs(jobs) -> None:
    name = f"{PREFIX}-squares-http"
    status = finished(jobs, name)["status"]
    assert status["jobStatus"] == "SUCCEEDED", status
    # HTTPMode: the operator submitted it; no submitter Job exists.
    assert jobs.kubectl.run("get", "job", name, "-n", jobs.namespace, check=False).returncode != 0
    output = dashboard_logs(jobs, CLUSTER, status["jobId"])
    assert_squares(output, "squares-http", worker_pod_names(jobs, CLUSTER))


def cluster_gone(own: OwnRelease, name: str) -> bool:
    return (own.kubectl.run("get", "raycluster", name, "-n", own.namespace,
                            check=False).returncode != 0
            and not own.items("pods", f"ray.io/cluster={name}"))


def test_a_job_on_its_own_cluster_succeeds_and_the_cluster_is_deleted(jobs) -> None:
    name = f"{PREFIX}-own-k8s"
    job_ = finished(jobs, name)
    status = job_["status"]
    assert status["jobStatus"] == "SUCCEEDED", status
    cluster = status["rayClusterName"]
    assert cluster.startswith(f"{name}-"), cluster
    workers = worker_pod_names(jobs, cluster)  # may already be going: read before the output
    output = submitter_output(jobs, name)
    assert f"sum of squares: {sum_of_squares(COUNTS['own-k8s'])}" in output, output
    hosts = next(line for line in output.splitlines() if line.startswith("hosts:"))
    assert f"{cluster}-" in hosts, (hosts, workers)  # its own cluster's worker, not the chart's
    wait_for(f"RayCluster {cluster} and its pods deleted after the job", lambda: cluster_gone(
        jobs, cluster), 300)
    # The submitter Job stays for its logs.
    assert jobs.get("job", name, "-n", jobs.namespace)


def test_a_failing_entrypoint_fails_with_its_message_and_the_cluster_is_deleted(jobs) -> None:
    name = f"{PREFIX}-fails"
    status = finished(jobs, name)["status"]
    assert status["jobStatus"] == "FAILED", status
    assert status["jobDeploymentStatus"] == "Failed", status
    assert FAILURE in status.get("message", ""), status
    cluster = status["rayClusterName"]
    wait_for(f"RayCluster {cluster} deleted after the failure", lambda: cluster_gone(
        jobs, cluster), 300)


REFUSAL = """
import json, os, sys, urllib.error, urllib.request
url = "http://{host}:8265/api/jobs/"
def post(headers):
    body = json.dumps({{"entrypoint": "echo should-not-run"}}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={{"Content-Type": "application/json", **headers}})
    try:
        return urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as error:
        return error.code
def get(headers):
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=30).status
token = {{"x-ray-authorization": "Bearer " + os.environ["RAY_AUTH_TOKEN"]}}
print(json.dumps({{"without": post({{}}), "wrong": post({{"x-ray-authorization": "Bearer nope"}}),
                  "with_get": get(token)}}))
"""


def test_the_dashboard_refuses_a_submission_without_the_clusters_token(jobs) -> None:
    """What a submitter without the token would meet: the Jobs API on the head Service answers
    401/403 to a POST without or with a wrong token (and 200 to a read with it)."""
    host = f"{CLUSTER}-head-svc.{jobs.namespace}.svc.cluster.local"
    worker = next(iter(jobs.items("pods", f"ray.io/cluster={CLUSTER},ray.io/node-type=worker")))
    answer = jobs.exec(worker, "ray-worker", "python3", "-c", REFUSAL.format(host=host))
    assert answer.returncode == 0, answer.stdout + answer.stderr
    codes = json.loads(answer.stdout.strip().splitlines()[-1])
    assert codes["without"] in {401, 403} and codes["wrong"] in {401, 403}, codes
    assert codes["with_get"] == 200, codes
