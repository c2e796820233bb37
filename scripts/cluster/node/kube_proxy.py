"""kube-proxy of the real node (iptables mode, Debian's iptables), so that Service IPs (the head
Service the workers join through, the Serve Service) reach pods inside the node's namespace.
Authenticated as system:kube-proxy, which the API server's default `system:node-proxier`
binding serves."""
from __future__ import annotations

import time

import yaml

from cluster.local import processes
from cluster.node import netns, pki
from cluster.node.layout import CLUSTER_CIDR, NodeLayout
from harness.tools import TOOLS_BIN

COMPONENT = "kube-proxy"


def configuration(layout: NodeLayout, kubeconfig: str) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clusterCIDR": CLUSTER_CIDR,
        "hostnameOverride": layout.name,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "clientConnection": {"kubeconfig": kubeconfig},
        # Outside the initial namespace nf_conntrack_max is read-only: never try to raise it.
        "conntrack": {"maxPerCore": 0},
    }


def start(layout: NodeLayout) -> None:
    if processes.running(layout.pid(COMPONENT)):
        return
    kubeconfig = pki.kubeconfig(layout, "kube-proxy", "system:kube-proxy", "system:node-proxier")
    config = layout.file("kube-proxy.yaml")
    config.write_text(yaml.safe_dump(configuration(layout, str(kubeconfig))))
    argv = [*netns.enter(layout), str(TOOLS_BIN / "kube-proxy"), f"--config={config}", "--v=1"]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    processes.start(argv, layout.pid(COMPONENT), layout.log(COMPONENT), env)
    time.sleep(0.5)
    if not processes.running(layout.pid(COMPONENT)):
        raise RuntimeError(f"kube-proxy exited at once; see {layout.log(COMPONENT)}")
