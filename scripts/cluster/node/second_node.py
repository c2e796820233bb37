"""A second real node, real-node-2, joined to a running local cluster on demand (the drain test,
tests/node/test_drain.py) and removed after, so that every other test keeps one node.

What it runs, each in its own network namespace `rpnode-<key>-2` (no route out, like node 1's):
containerd (its own image store, with only the images asked for: the drain test imports `pause`
and `ray`, not the 5.9 GB `ray-serve`), runc, the CNI bridge on pod subnet 10.244.1.0/24, a
kubelet (its own cgroup root, client certificate CN=system:node:real-node-2 from the cluster's CA),
kube-proxy and kube-router's NetworkPolicy firewall; the API server through its own pair of
forwards (node.start_api_forwards). The ports are node 1's (10250, 10248, 10256, ...): every
listener is inside the node's own namespace, so nothing collides.

Shared with node 1: the control plane, and CoreDNS, which stays a process on node 1; the two
namespaces are linked by a veth pair (netns.link) with routes to the other node's IP and pod
subnet only, so pods on either node reach each other, both nodes' Services (each node's
kube-proxy DNATs to pods anywhere) and the cluster DNS on node 1's IP.

Not there: the API server's way into node 2 (its egress selector dials node 1's CONNECT proxy,
which refuses node 2's addresses), so `kubectl logs/exec/port-forward` do not reach node 2's
pods; crictl on node 2 (node.crictl(layout, ...)) does.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

from cluster.local import processes
from cluster.local.controlplane import Layout
from cluster.local.kubectl import Kubectl
from cluster.node import cleanup, kube_proxy, kube_router, kubelet, netns, node
from cluster.node.layout import NodeLayout
from images.build import Built

Say = Callable[[str], None]
NUMBER = 2
# What a Ray worker of the chart's `ray`-image releases needs on the node.
IMAGES = ("pause", "ray")


def join(cluster: Layout, kubectl: Kubectl, images: Sequence[Built], say: Say,
         number: int = NUMBER) -> NodeLayout:
    """Node `number` joined and Ready beside node 1 (which must be up), with `images` imported
    (kept in its own store across runs, like node 1's). Idempotent."""
    first, layout = NodeLayout(cluster), NodeLayout(cluster, number)
    if not netns.exists(first):
        raise RuntimeError(f"{layout.name} joins a running cluster: {first.name} is not up")
    if not processes.running(layout.pid(kubelet.COMPONENT)):
        left = cleanup.leftovers(layout)
        if not left.empty():
            say(f"{layout.name}: removing what an earlier run left ({left})")
            cleanup.sweep(layout)
    started = time.monotonic()
    netns.create(layout)
    netns.link(first, layout)
    node.start_api_forwards(layout)
    node.start_runtime(layout, kubectl, images, say, layout.name)
    kube_proxy.start(layout)
    kube_router.start(layout, kubectl)
    say(f"{layout.name}: Ready ({layout.ip}, pods {layout.pod_subnet}, network namespace "
        f"{layout.netns} linked to {first.netns}, no route out): kubelet, containerd, runc, CNI "
        f"bridge, kube-proxy, kube-router; up in {time.monotonic() - started:.0f} s")
    return layout


def leave(cluster: Layout, kubectl: Kubectl, say: Say, number: int = NUMBER) -> cleanup.Leftovers:
    """Stop node `number` (node.stop: processes, mounts, namespace with the link, cgroups) and
    delete its Node object, so the scheduler and the tests see node 1 alone again. Its image
    store stays (the next join imports nothing). Returns what is left (nothing)."""
    layout = NodeLayout(cluster, number)
    left = node.stop(layout, say)
    netns.unlink(NodeLayout(cluster), layout)
    kubectl.run("delete", "node", layout.name, "--ignore-not-found", "--wait=false", check=False)
    return left
