"""Bring the whole local cluster up or down: control plane, simulated fleet, KubeRay operator."""
from __future__ import annotations

import shutil
import sys
import time
from typing import Callable

from cluster.local import controlplane, fleet, operator
from cluster.local.controlplane import Layout
from cluster.local.kubectl import Kubectl

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def kubectl_for(layout: Layout) -> Kubectl:
    return Kubectl(layout.binary("kubectl"), layout.kubeconfig)


def wait_nodes_ready(kubectl: Kubectl, names: list[str], timeout: float = 90) -> None:
    kubectl.run("wait", "--for=condition=Ready", f"--timeout={int(timeout)}s",
                *[f"node/{name}" for name in names], timeout=timeout + 30)


def up(layout: Layout, simulated: fleet.Fleet = fleet.UP_FLEET, say: Say = _say,
       host_operator: bool = True) -> Kubectl:
    """Idempotent: a running cluster is reused, a missing operator process restarted. Without
    host_operator the operator's CRDs and RBAC are installed but the operator is not started
    (the real node runs it as a pod: cluster/node/operator_pod.py), and the API server reaches
    into the cluster through that real node, which joins next (controlplane.create's real_node)."""
    started = time.monotonic()
    if controlplane.exists(layout):
        say(f"local cluster: reusing {layout.name} ({layout.state_dir})")
    else:
        say("local cluster: starting etcd, kube-apiserver, kube-controller-manager, "
            "kube-scheduler and kwok (host processes, loopback only) ...")
        # Only a real node's cluster: its kubelet is reachable through the node's proxy alone.
        controlplane.create(layout, real_node=not host_operator)
    kubectl = kubectl_for(layout)
    objects = fleet.all_objects(simulated)
    kubectl.apply(objects)
    names = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "Node"]
    wait_nodes_ready(kubectl, names)
    say(f"local cluster: {len(names)} simulated nodes Ready "
        f"({', '.join(f'{p.count} {p.name}' for p in simulated.pools)}), "
        f"{simulated.volumes} volumes each of StorageClasses "
        f"{', '.join((fleet.STORAGE_CLASS, *fleet.NAMED_CLASSES))}")
    operator.install(layout, kubectl)
    # Gateway API CRDs (standard channel), so that an HTTPRoute is checked by the live API too.
    kubectl.apply_files(operator.gateway_api_crd_files())
    if not host_operator:
        say(f"local cluster: control plane up in {time.monotonic() - started:.0f} s")
        return kubectl
    operator.start(layout, kubectl)
    say(f"local cluster: KubeRay operator {operator.module_version()} running as a host process "
        f"(ServiceAccount {operator.NAMESPACE}/{operator.SERVICE_ACCOUNT}); "
        f"up in {time.monotonic() - started:.0f} s")
    return kubectl


def down(layout: Layout, say: Say = _say) -> None:
    from cluster.node import node  # the real node, if this cluster has one

    node.down(layout, say)
    stopped = operator.stop(layout)
    had_cluster = controlplane.exists(layout)
    controlplane.delete(layout)
    shutil.rmtree(layout.state_dir, ignore_errors=True)
    say(f"local cluster: {'stopped the operator, ' if stopped else ''}"
        f"{'deleted' if had_cluster else 'no'} cluster {layout.name}; "
        f"removed {layout.state_dir}")
