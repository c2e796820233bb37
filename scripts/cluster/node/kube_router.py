"""kube-router's NetworkPolicy firewall on the real node (its router, service proxy and CNI off:
the bridge plugin wires pods, kube-proxy serves Services), so that the chart's NetworkPolicies
are enforced for the pods on this node, not only admitted.

Why kube-router: kube-network-policies decides in userspace behind the nftables `queue`
statement, which this kernel lacks (CONFIG_NFT_QUEUE unset); kube-router writes plain iptables
rules and ipsets. It runs inside the node's network namespace, so its rules and sets live and
die with that namespace and never touch the host's own tables. It reads the API as user
`system:ray-platform:kube-router`, bound to a ClusterRole that only reads what its informers
watch."""
from __future__ import annotations

import subprocess
import time

from cluster.local import processes
from cluster.local.kubectl import Kubectl
from cluster.node import netns, pki
from cluster.node.layout import NODE_NAME, SERVICE_CIDR, NodeLayout
from cluster.node.rbac import user_cluster_role
from harness.tools import TOOLS_BIN

COMPONENT = "kube-router"
USER = "system:ray-platform:kube-router"
# kube-router finds iptables, iptables-save, iptables-restore and ipset on PATH. This is the PATH
# kube-proxy gets, so both resolve Debian's alternatives to the same iptables flavour (nf_tables):
# two flavours in one namespace would each see only their own half of the rules.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The jump kube-router adds to the built-in FORWARD chain once its informers have synced: from
# then on every pod's traffic passes its policy chains.
ENFORCING = "-j KUBE-ROUTER-FORWARD"


def rbac() -> list[dict]:
    """Read-only access to what kube-router's informers list and watch (it starts the service
    and endpoint informers even with the proxy off), and its own Node object."""
    rules = [{"apiGroups": [""], "resources": ["pods", "namespaces", "services", "endpoints"],
              "verbs": ["list", "watch"]},
             {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
              "verbs": ["list", "watch"]}]
    return user_cluster_role("ray-platform:kube-router", USER, rules)


def arguments(kubeconfig: str, node_name: str = NODE_NAME) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        # The firewall only: no BGP routing, no IPVS service proxy, no CNI config of its own.
        "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
        "--enable-cni=false",
        # Its Node object (whose InternalIP, the node IP on the namespace's lo, it reads).
        f"--hostname-override={node_name}",
        # Traffic to Service IPs passes (kube-proxy then DNATs it to a pod the policies judge);
        # its default, 10.96.0.0/12, is not this cluster's range.
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # No listeners: nothing here probes or scrapes it (the health port defaults to 20244).
        "--health-port=0", "--metrics-port=0",
    ]


def rules(layout: NodeLayout) -> str:
    """The filter table of the node's namespace, as the iptables flavour kube-router uses."""
    return subprocess.run([*netns.enter(layout), "iptables-save", "-t", "filter"], text=True,
                          capture_output=True, env={"PATH": PATH}).stdout


def start(layout: NodeLayout, kubectl: Kubectl, timeout: float = 60) -> None:
    """Start it and wait until pod traffic passes its chains, so that a policy applied once the
    node is up is enforced from the first sync on."""
    if processes.running(layout.pid(COMPONENT)):
        return
    kubectl.apply(rbac())
    kubeconfig = pki.kubeconfig(layout, "kube-router", USER, "system:ray-platform")
    argv = [*netns.enter(layout), str(TOOLS_BIN / "kube-router"),
            *arguments(str(kubeconfig), layout.name)]
    processes.start(argv, layout.pid(COMPONENT), layout.log(COMPONENT), {"PATH": PATH})
    deadline = time.monotonic() + timeout
    while ENFORCING not in rules(layout):
        if not processes.running(layout.pid(COMPONENT)):
            raise RuntimeError(f"kube-router exited; see {layout.log(COMPONENT)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"kube-router added no FORWARD rule within {timeout:.0f} s; "
                               f"see {layout.log(COMPONENT)}")
        time.sleep(0.5)
