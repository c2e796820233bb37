"""Start and stop the real node of a local cluster, in order: network namespace, API forwards,
containerd (+ the images), kubelet, kube-proxy, kube-router's NetworkPolicy firewall, CoreDNS; and
forward a cluster port to the host.

    python -m cluster.node.node leftovers --state-dir .tools/local  # what a node left, if anything
    python -m cluster.node.node down --state-dir .tools/local       # the node alone (make down
                                                                    # stops it, then the control plane)
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from cluster.local import processes
from cluster.local.controlplane import Layout
from cluster.local.kubectl import Kubectl
from cluster.node import (cleanup, cni, containerd, coredns, kube_proxy, kube_router, kubelet,
                          netns, pki)
from cluster.node.layout import NODE_IP, NODE_NAME, NodeLayout
from harness.tools import REPO, TOOLS_BIN
from images.build import Built

Say = Callable[[str], None]
BINARIES = ("kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "runc",
            "bridge", "host-local", "loopback", "portmap", "coredns", "crictl", "kube-router")
FORWARD = [sys.executable, "-m", "cluster.node.forward"]
CONNECT_PROXY = [sys.executable, "-m", "cluster.node.connect_proxy"]


def python_env() -> dict[str, str]:
    return {"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/local/bin:/usr/bin:/bin"}


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if not (TOOLS_BIN / name).is_file()]


def start_api_forwards(layout: NodeLayout) -> None:
    """The API server's host port, reachable in the namespace at 127.0.0.1 (node components)
    and at the node IP (pods, through the `kubernetes` Service the API server advertises there)."""
    port = pki.api_port(layout)
    layout.pid("api-host").parent.mkdir(parents=True, exist_ok=True)
    if not processes.running(layout.pid("api-host")):
        processes.start([*FORWARD, "--host-side", "--listen", f"unix:{layout.api_socket}",
                         "--to", f"tcp:127.0.0.1:{port}"],
                        layout.pid("api-host"), layout.log("api-host"), python_env())
    if not processes.running(layout.pid("api-node")):
        processes.start([*netns.enter(layout), *FORWARD, "--listen", f"tcp:127.0.0.1:{port}",
                         "--listen", f"tcp:{layout.ip}:{port}", "--to", f"unix:{layout.api_socket}"],
                        layout.pid("api-node"), layout.log("api-node"), python_env())


def start_egress_proxy(layout: NodeLayout) -> None:
    """The API server's way to the kubelet, pods and Services (kubectl logs, exec, port-forward,
    the proxy subresources): its egress selector dials CONNECT on this socket, and the proxy,
    inside the namespace, dials the node's addresses and nothing else (connect_proxy.py)."""
    if not processes.running(layout.pid("egress-proxy")):
        layout.pid("egress-proxy").parent.mkdir(parents=True, exist_ok=True)
        processes.start([*netns.enter(layout), *CONNECT_PROXY,
                         "--listen", str(layout.egress_socket)],
                        layout.pid("egress-proxy"), layout.log("egress-proxy"), python_env())


def wait_node_ready(kubectl: Kubectl, timeout: float = 180, name: str = NODE_NAME) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = kubectl.run("get", "node", name, "-o", "json", check=False)
        if result.returncode == 0:
            conditions = json.loads(result.stdout)["status"].get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return
        time.sleep(1)
    raise RuntimeError(f"node {name} not Ready after {timeout:.0f} s")


def up(cluster: Layout, kubectl: Kubectl, images: Sequence[Built], say: Say) -> NodeLayout:
    """The node, joined and Ready, with the images imported. Idempotent."""
    layout = NodeLayout(cluster)
    missing = missing_binaries()
    if missing:
        raise RuntimeError(f"the real node needs {', '.join(missing)} in {TOOLS_BIN}: run `make tools`")
    if not processes.running(layout.pid(kubelet.COMPONENT)):
        for earlier in all_layouts(cluster):
            left = cleanup.leftovers(earlier)
            if not left.empty():
                say(f"real node: removing what an earlier run left of {earlier.name} ({left})")
                cleanup.sweep(earlier)
    started = time.monotonic()
    netns.create(layout)
    start_api_forwards(layout)
    start_egress_proxy(layout)
    start_runtime(layout, kubectl, images, say, "real node")
    kube_proxy.start(layout)
    # Before CoreDNS and the operator: every pod after this point starts under enforced policies.
    kube_router.start(layout, kubectl)
    coredns.start(layout, kubectl)
    say(f"real node: {NODE_NAME} Ready ({NODE_IP} in network namespace {layout.netns}, no route "
        f"out): kubelet, containerd, runc, CNI bridge, kube-proxy, kube-router (NetworkPolicies), "
        f"CoreDNS; up in {time.monotonic() - started:.0f} s")
    return layout


def start_runtime(layout: NodeLayout, kubectl: Kubectl, images: Sequence[Built], say: Say,
                  label: str) -> None:
    """What runs pods on any node, in its namespace: the CNI config, containerd with `images`
    imported (the `pause` one its sandbox image), then the kubelet, until its Node is Ready.
    `label` starts the import messages."""
    cni.write(layout)
    sandbox = next(image.reference for image in images if image.name == "pause")
    containerd.start(layout, sandbox)
    for image in images:
        began = time.monotonic()
        if containerd.import_image(layout, image.reference, image.archive):
            say(f"{label}: imported {image.reference} ({image.size / 1e6:.0f} MB) in "
                f"{time.monotonic() - began:.0f} s")
    kubelet.start(layout)
    wait_node_ready(kubectl, name=layout.name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def expose(layout: NodeLayout, name: str, address: str, port: int) -> str:
    """http://127.0.0.1:<free port> on the host, forwarded to address:port in the node's network
    (a Service IP or a pod IP); the forward runs until the node stops."""
    host_port = free_port()
    socket_path = layout.dir / f"expose-{name}.sock"
    for side in ("host", "node"):
        processes.stop(layout.pid(f"expose-{name}-{side}"))
    socket_path.unlink(missing_ok=True)
    processes.start([*netns.enter(layout), *FORWARD, "--listen", f"unix:{socket_path}",
                     "--to", f"tcp:{address}:{port}"],
                    layout.pid(f"expose-{name}-node"), layout.log(f"expose-{name}"), python_env())
    # The host side must not take a connection before the node side listens: it would find no
    # socket and close the caller's connection unanswered.
    wait_for(lambda: socket_path.exists(), f"the forward to {address}:{port} in the node")
    processes.start([*FORWARD, "--host-side", "--listen", f"tcp:127.0.0.1:{host_port}",
                     "--to", f"unix:{socket_path}"],
                    layout.pid(f"expose-{name}-host"), layout.log(f"expose-{name}"), python_env())
    wait_for(lambda: accepts(host_port), f"the forward to {address}:{port} on the host")
    return f"http://127.0.0.1:{host_port}"


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen within {timeout:.0f} s")
        time.sleep(0.1)


def crictl(layout: NodeLayout, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """crictl against this node's containerd, run in the node's namespace (exec and logs stream
    through containerd's server on the namespace's loopback)."""
    return subprocess.run([*netns.enter(layout), str(TOOLS_BIN / "crictl"),
                           "--runtime-endpoint", f"unix://{layout.containerd_socket}",
                           "--image-endpoint", f"unix://{layout.containerd_socket}", *args],
                          text=True, capture_output=True, timeout=timeout)


# Nodes beyond the first that second_node.py may have joined: `make down`, the leftovers check
# and a new node's start-up sweep cover them too.
EXTRA_NODES = (2,)


def all_layouts(cluster: Layout) -> list[NodeLayout]:
    return [NodeLayout(cluster), *(NodeLayout(cluster, number) for number in EXTRA_NODES)]


def stop(layout: NodeLayout, say: Say) -> cleanup.Leftovers:
    """Stop one node: kubelet first (so nothing restarts), every pod sandbox through the CRI,
    then every process, mount, the namespace and the cgroups. Returns what is left (nothing)."""
    had_node = netns.exists(layout) or processes.running(layout.pid(kubelet.COMPONENT))
    processes.stop(layout.pid(kubelet.COMPONENT))
    if processes.running(layout.pid(containerd.COMPONENT)):
        crictl(layout, "rmp", "--all", "--force", timeout=120)
    for pid_file in sorted((layout.dir / "run").glob("*.pid")) if (layout.dir / "run").is_dir() else []:
        processes.stop(pid_file)
    left = cleanup.sweep(layout)
    if had_node:
        first = layout.number == 1
        say(f"real node: stopped {layout.name} (kubelet, containerd and its containers, "
            f"kube-proxy, kube-router{', CoreDNS' if first else ''}, forwards"
            f"{', the CONNECT proxy of the API server' if first else ''}); removed its network "
            f"namespace (with their iptables rules and ipsets), mounts and cgroups"
            + ("" if left.empty() else f"; could not remove: {left}"))
    return left


def down(cluster: Layout, say: Say) -> cleanup.Leftovers:
    """Stop every node of the cluster, extra ones first. Returns what is left (nothing)."""
    return cleanup.merged(*(stop(layout, say) for layout in reversed(all_layouts(cluster))))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("down", "leftovers"))
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--name", default="ray-platform")
    args = parser.parse_args(argv)
    cluster = Layout(state_dir=args.state_dir.resolve(), name=args.name)
    if args.action == "down":
        left = down(cluster, say=print)
    else:
        left = cleanup.merged(*(cleanup.leftovers(layout) for layout in all_layouts(cluster)))
    print(f"left: {left}")
    return 0 if left.empty() else 1


if __name__ == "__main__":
    sys.exit(main())
