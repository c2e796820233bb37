"""The in-tree autoscaler for real, with both versions the chart offers (autoscaler.version v1 and
v2): in a release of its own (the chart's RayCluster, one 1-CPU worker, minReplicas 1,
maxReplicas 2, idleTimeoutSeconds 20), a driver asks for two CPUs on distinct nodes; the
autoscaler container in the head pod raises the group's replicas, the operator creates the pod,
the worker joins and runs the task; idle again, the group shrinks back to minReplicas.

Behaviour only: the seconds each step takes are printed here and by `make bench-cluster`
(cluster/node/bench_autoscaler.py); the deadlines are generous bounds, not expectations."""
from __future__ import annotations

from typing import Any

import pytest

from cluster.node import autoscaling, platform
from harness.render import make_offline_copy
from harness.tools import CHART_DIR
from own_release_helpers import own_release

pytestmark = pytest.mark.node

RELEASE = "as"
CLUSTER = f"{RELEASE}-ray-platform"


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


@pytest.mark.parametrize("version", autoscaling.VERSIONS)
def test_the_autoscaler_adds_a_worker_for_demand_and_removes_it_when_idle(
        real_cluster, tmp_path, version: str) -> None:
    namespace = f"autoscaler-{version}"
    chart = make_offline_copy(CHART_DIR, tmp_path / "chart")
    with own_release(real_cluster, chart, tmp_path, namespace, RELEASE,
                     autoscaling.values(version)) as own:
        platform.wait_clusters(real_cluster, own.manifest, namespace, autoscaling.DEADLINE, print)
        autoscaling.wait_nodes_alive(real_cluster, namespace, CLUSTER, 1 + autoscaling.MIN_REPLICAS)
        head = autoscaling.head_pod(real_cluster, namespace, CLUSTER)
        # The autoscaler runs as a container of the head pod, of the version asked for.
        sidecar = next(s for s in head["status"]["containerStatuses"] if s["name"] == "autoscaler")
        assert sidecar["ready"] and "running" in sidecar["state"], sidecar
        # v1 and v2 as Ray sees them: the head's flag (v1's from the chart, v2's from the
        # operator) and the autoscaler the GCS says runs (without the flag Ray 2.60 picks v2).
        env = {e["name"]: e.get("value") for e in container(head, "ray-head").get("env") or []}
        assert env.get("RAY_enable_autoscaler_v2") == {"v1": "false", "v2": "true"}[version], env
        assert autoscaling.running_version(real_cluster, namespace, CLUSTER) == version
        if version == "v2":  # what the operator requires of v2 and sets itself
            assert head["spec"]["restartPolicy"] == "Never"
        assert "--no-monitor" in " ".join(container(head, "ray-head").get("args") or [])
        spec = own.get("raycluster", CLUSTER, "-n", namespace)["spec"]
        assert spec["enableInTreeAutoscaling"] is True
        assert spec["autoscalerOptions"]["idleTimeoutSeconds"] == autoscaling.IDLE_TIMEOUT

        up = autoscaling.scale_up(real_cluster, namespace, CLUSTER)
        # A pod that was not there before the demand ran the task: the operator created it
        # after the autoscaler raised the group's replicas.
        assert up.new_host not in up.hosts_before
        assert up.new_host.startswith(f"{CLUSTER}-{autoscaling.GROUP}-worker-"), up.new_host
        assert up.demand <= up.replicas_raised and up.pod_created <= up.first_task + 1, up
        autoscaling.wait_nodes_alive(real_cluster, namespace, CLUSTER,
                                     2 + autoscaling.MIN_REPLICAS)

        down = autoscaling.scale_down(real_cluster, namespace, CLUSTER, up.done)
        # Not before the idle timeout: the autoscaler waited for it.
        assert down.replicas_lowered - up.done >= autoscaling.IDLE_TIMEOUT - 2, (up, down)
        autoscaling.wait_nodes_alive(real_cluster, namespace, CLUSTER,
                                     1 + autoscaling.MIN_REPLICAS)
        print(f"autoscaler {version}: demand -> replicas raised "
              f"{up.replicas_raised - up.demand:.1f} s, -> pod created "
              f"{up.pod_created - up.demand:.1f} s, -> first task on the new worker "
              f"{up.first_task - up.demand:.1f} s; idle -> replicas lowered "
              f"{down.replicas_lowered - up.done:.1f} s, -> pod gone "
              f"{down.pod_gone - up.done:.1f} s (idleTimeoutSeconds {autoscaling.IDLE_TIMEOUT})")
