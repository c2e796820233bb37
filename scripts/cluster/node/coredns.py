"""CoreDNS serving cluster.local for the node's pods, on the node IP (the kubelet's clusterDNS).
Names outside the cluster get a fast REFUSED (there is no upstream to forward to). Reads the API
as ServiceAccount-less user `system:ray-platform:coredns`, bound to a ClusterRole with only what
the kubernetes plugin watches."""
from __future__ import annotations

import time

from cluster.local import processes
from cluster.local.kubectl import Kubectl
from cluster.node import netns, pki
from cluster.node.layout import CLUSTER_DOMAIN, NODE_IP, NodeLayout
from cluster.node.rbac import user_cluster_role
from harness.tools import TOOLS_BIN

COMPONENT = "coredns"
USER = "system:ray-platform:coredns"


def rbac() -> list[dict]:
    return user_cluster_role("ray-platform:coredns", USER, [
        {"apiGroups": [""], "resources": ["services", "namespaces", "pods"],
         "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["list", "watch"]}])


def corefile(kubeconfig: str) -> str:
    zones = f"{CLUSTER_DOMAIN} in-addr.arpa ip6.arpa"
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes {zones} {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""


def start(layout: NodeLayout, kubectl: Kubectl) -> None:
    if processes.running(layout.pid(COMPONENT)):
        return
    kubectl.apply(rbac())
    kubeconfig = pki.kubeconfig(layout, "coredns", USER, "system:ray-platform")
    path = layout.file("Corefile")
    path.write_text(corefile(str(kubeconfig)))
    argv = [*netns.enter(layout), str(TOOLS_BIN / "coredns"), "-conf", str(path)]
    processes.start(argv, layout.pid(COMPONENT), layout.log(COMPONENT))
    time.sleep(0.5)
    if not processes.running(layout.pid(COMPONENT)):
        raise RuntimeError(f"CoreDNS exited at once; see {layout.log(COMPONENT)}")
