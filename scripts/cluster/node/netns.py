"""The node's network namespace: loopback with the node IP on it, forwarding on, bridged traffic
through iptables (kube-proxy's Service rules must see pod-to-pod replies on the CNI bridge), and
no route out: no interface but its own loopback and the bridge and veths the CNI plugin makes,
no default route. Processes enter it with `nsenter --net` only (not `ip netns exec`, which also
makes a mount namespace whose mounts the kubelet's volumes would never reach runc through)."""
from __future__ import annotations

import shutil
import subprocess

from cluster.node.layout import NODE_IP, SERVICE_CIDR, NodeLayout

SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
}


class Unavailable(RuntimeError):
    """The node's namespace cannot be made here; str() says why."""


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), text=True, capture_output=True)


def enter(layout: NodeLayout) -> list[str]:
    """argv prefix that runs a command in the node's network namespace (same mount namespace)."""
    return [shutil.which("nsenter") or "/usr/bin/nsenter", f"--net={layout.netns_path}"]


def exists(layout: NodeLayout) -> bool:
    return layout.netns_path.exists()


def create(layout: NodeLayout) -> None:
    if not exists(layout):
        result = _run("ip", "netns", "add", layout.netns)
        if result.returncode != 0:
            raise Unavailable(f"`ip netns add {layout.netns}` failed: {result.stderr.strip()} "
                              "(the real node needs root)")
    inside = enter(layout)
    for argv in (("ip", "link", "set", "lo", "up"),
                 ("ip", "addr", "replace", f"{NODE_IP}/32", "dev", "lo"),
                 # Without a default route, a process of the node itself (the forwards `make up`
                 # opens to a Service) gets "network unreachable" for a Service IP before
                 # kube-proxy's OUTPUT rule can DNAT it to a pod; a route onto lo lets the packet
                 # reach that rule, and it leads nowhere else.
                 ("ip", "route", "replace", SERVICE_CIDR, "dev", "lo", "src", NODE_IP)):
        result = _run(*inside, *argv)
        if result.returncode != 0:
            raise Unavailable(f"{' '.join(argv)} in {layout.netns}: {result.stderr.strip()}")
    for key, value in SYSCTLS.items():
        result = _run(*inside, "sysctl", "-q", "-w", f"{key}={value}")
        if result.returncode != 0:
            raise Unavailable(f"sysctl {key}={value} in {layout.netns}: {result.stderr.strip()}")


def routes(layout: NodeLayout) -> str:
    return _run(*enter(layout), "ip", "route", "show", "table", "all").stdout


def delete(layout: NodeLayout) -> bool:
    if not exists(layout):
        return False
    _run("ip", "netns", "delete", layout.netns)
    return True
