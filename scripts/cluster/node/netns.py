"""The node's network namespace: loopback with the node IP on it, forwarding on, bridged traffic
through iptables (kube-proxy's Service rules must see pod-to-pod replies on the CNI bridge), and
no route out: no interface but its own loopback and the bridge and veths the CNI plugin makes,
no default route. Processes enter it with `nsenter --net` only (not `ip netns exec`, which also
makes a mount namespace whose mounts the kubelet's volumes would never reach runc through)."""
from __future__ import annotations

import shutil
import subprocess

from cluster.node.layout import SERVICE_CIDR, NodeLayout

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
                 ("ip", "addr", "replace", f"{layout.ip}/32", "dev", "lo"),
                 # Without a default route, a process of the node itself (the forwards `make up`
                 # opens to a Service) gets "network unreachable" for a Service IP before
                 # kube-proxy's OUTPUT rule can DNAT it to a pod; a route onto lo lets the packet
                 # reach that rule, and it leads nowhere else.
                 ("ip", "route", "replace", SERVICE_CIDR, "dev", "lo", "src", layout.ip)):
        result = _run(*inside, *argv)
        if result.returncode != 0:
            raise Unavailable(f"{' '.join(argv)} in {layout.netns}: {result.stderr.strip()}")
    for key, value in SYSCTLS.items():
        result = _run(*inside, "sysctl", "-q", "-w", f"{key}={value}")
        if result.returncode != 0:
            raise Unavailable(f"sysctl {key}={value} in {layout.netns}: {result.stderr.strip()}")


def link_name(peer: NodeLayout) -> str:
    """The veth end that leads to `peer`'s namespace (15 characters at most)."""
    return f"rplink-{peer.number}"


def link_routes(layout: NodeLayout, peer: NodeLayout) -> list[tuple[str, ...]]:
    """`ip route` arguments in `layout`'s namespace: the peer's node IP on the link, its pod
    subnet through it. Nothing else goes there: no default route, so still no way out."""
    device = link_name(peer)
    return [("route", "replace", f"{peer.ip}/32", "dev", device, "src", layout.ip),
            ("route", "replace", peer.pod_subnet, "via", peer.ip, "dev", device, "onlink",
             "src", layout.ip)]


def link(first: NodeLayout, second: NodeLayout) -> None:
    """A veth pair between two nodes' namespaces (no addresses on it: each side's node IP,
    on its lo, is the source), so that pods on either node reach pods, node IPs and, through
    kube-proxy's DNAT, Services on the other. The pair lives in the namespaces only and goes
    with the second one's deletion."""
    there, here = link_name(first), link_name(second)
    if _run(*enter(first), "ip", "link", "show", here).returncode != 0:
        result = _run("ip", "-n", second.netns, "link", "add", there, "type", "veth",
                      "peer", "name", here, "netns", first.netns)
        if result.returncode != 0:
            raise Unavailable(f"veth {there}/{here} between {second.netns} and {first.netns}: "
                              f"{result.stderr.strip()}")
    for layout, peer, device in ((first, second, here), (second, first, there)):
        for argv in (("link", "set", device, "up"), *link_routes(layout, peer)):
            result = _run(*enter(layout), "ip", *argv)
            if result.returncode != 0:
                raise Unavailable(f"ip {' '.join(argv)} in {layout.netns}: {result.stderr.strip()}")


def unlink(first: NodeLayout, second: NodeLayout) -> None:
    """Remove `first`'s end of the link to `second` now: deleting `second`'s namespace takes the
    pair with it, but only once the kernel has finished with that namespace, and node 1's "no
    way out" check must not see a stale end."""
    if exists(first):
        _run(*enter(first), "ip", "link", "delete", link_name(second))


def routes(layout: NodeLayout) -> str:
    return _run(*enter(layout), "ip", "route", "show", "table", "all").stdout


def delete(layout: NodeLayout) -> bool:
    if not exists(layout):
        return False
    _run("ip", "netns", "delete", layout.netns)
    return True
