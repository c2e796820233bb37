"""`make up` on the local cluster: start it, install the chart with values/dev.yaml, wait for the
Ray clusters the operator reconciles, and say exactly what is real and what is simulated."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Sequence

from cluster.local import lifecycle
from cluster.local.controlplane import Layout
from cluster.local.operator import module_version
from cluster.local.release import (Release, helm_in, install, ray_targets, restricted_namespace,
                                   upgrade)
from harness.readiness import KubeFetcher, Target, rayservice_verdict, wait_until_ready
from harness.render import make_offline_copy, parse_manifests
from harness.tools import CHART_DIR, NAMESPACE, RELEASE

REAL_AND_SIMULATED = (
    "What is real and what is simulated: etcd, kube-apiserver (admission with Pod Security "
    "`restricted` on namespace {namespace}, CRD schema validation, server-side apply), "
    "kube-controller-manager, kube-scheduler and the KubeRay operator {operator} are real "
    "processes on this machine, and everything above was accepted, admitted, scheduled and "
    "reconciled by them. The nodes are simulated by kwok: no container runs, no image is pulled, "
    "no probe or command executes and no traffic flows between pods; a pod shown Running/Ready "
    "only means the API server admitted it and the scheduler placed it. Ray itself is not "
    "running, so the RayService's Serve application is not served."
)


def chart_copy(workdir: Path) -> Path:
    """The chart without its remote operator dependency (the operator runs on the host)."""
    return make_offline_copy(CHART_DIR, workdir)


def up(layout: Layout, values: Sequence[Path], timeout: float, helm_major: int = 4,
       say: Callable[[str], None] = print) -> None:
    kubectl = lifecycle.up(layout, say=say)
    kubectl.apply([restricted_namespace(NAMESPACE)])
    say(f"namespace {NAMESPACE}: pod-security.kubernetes.io/enforce=restricted")
    with tempfile.TemporaryDirectory(prefix="ray-platform-chart-") as workdir:
        release = Release(RELEASE, NAMESPACE, chart_copy(Path(workdir)), tuple(values))
        installed = helm_in(layout.kubeconfig, "status", RELEASE, "-n", NAMESPACE,
                            major=helm_major).returncode == 0
        action = upgrade if installed else install
        say(f"helm {helm_major}: {'upgrading' if installed else 'installing'} {RELEASE} with "
            f"{', '.join(str(v) for v in values)} (operator subchart off: the operator runs on "
            "the host) ...")
        result = action(release, layout.kubeconfig, helm_major)
        if result.returncode != 0:
            raise RuntimeError(f"helm {action.__name__} failed:\n{result.stderr.strip()}")
    manifest = parse_manifests(helm_in(layout.kubeconfig, "get", "manifest", RELEASE,
                                       "-n", NAMESPACE, major=helm_major).stdout)
    fetcher = KubeFetcher(str(layout.kubeconfig))
    targets = ray_targets(fetcher, manifest, NAMESPACE)
    services = [obj["metadata"]["name"] for obj in manifest if obj["kind"] == "RayService"]
    say("waiting for the RayClusters the operator reconciles (status read from the API) ...")
    wait_until_ready(targets, fetcher, timeout=timeout, interval=2, report=say)
    for name in services:
        verdict = rayservice_verdict(fetcher(Target("RayService", name, NAMESPACE)) or {})
        say(f"RayService/{name}: not served yet - its cluster's pods are ready on simulated "
            f"nodes, but no Ray runs behind them to serve the application ({verdict.detail})")
    say("")
    say(REAL_AND_SIMULATED.format(namespace=NAMESPACE, operator=module_version()))
    say("")
    say(f"kubeconfig: {layout.kubeconfig}")
    say(f"  {layout.bin_dir / 'kubectl'} --kubeconfig {layout.kubeconfig} get rayclusters,pods "
        f"-n {NAMESPACE}")
    say("stop everything with: make down")
