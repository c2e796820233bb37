"""The kubelet of the real node (k8s.io/kubernetes at the control plane's version), registered
as NODE_NAME with a client certificate the Node authorizer accepts (O=system:nodes,
CN=system:node:<name>), talking to containerd over its socket.

What this machine needs beyond the defaults (shared/reference/real-node-facts.md):
`failCgroupV1: false` (the controllers are on the v1 hierarchy), cgroupfs driver, a cgroup root
of this node's own, no swap check, eviction and image GC that never act on a shared build disk
(the images cannot be pulled again), the cluster DNS on the node IP (CoreDNS runs there)."""
from __future__ import annotations

import time
from pathlib import Path

import yaml

from cluster.local import processes
from cluster.node import netns, pki
from cluster.node.layout import CLUSTER_DOMAIN, NODE_IP, NODE_LABELS, NodeLayout
from harness.tools import TOOLS_BIN

COMPONENT = "kubelet"
CGROUP_V1 = Path("/sys/fs/cgroup")


def configuration(layout: NodeLayout) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "address": layout.ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(layout.pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        # CoreDNS runs on node 1 only: a second node's pods reach it over the link between
        # the namespaces (netns.link).
        "clusterDNS": [NODE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        # Pods get only the cluster's DNS; the host's resolver is outside the namespace.
        "resolvConf": "",
        "failSwapOn": False,
        # Every signal listed, or the unlisted ones become 0 (mergeDefaultEvictionSettings is off).
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "0%",
                         "nodefs.inodesFree": "0%", "imagefs.available": "0%",
                         "imagefs.inodesFree": "0%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "enforceNodeAllocatable": [],
        "localStorageCapacityIsolation": False,
        "serializeImagePulls": False,
        "maxPods": 60,
        # Containers' logs in the node's folder, not the machine-wide /var/log/pods.
        "podLogsDir": str(layout.dir / "pod-logs"),
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        # The kubelet would otherwise also set machine-wide kernel defaults it expects.
        "protectKernelDefaults": False,
    }


def create_cgroup_root(layout: NodeLayout) -> None:
    """The kubelet refuses a cgroupRoot that does not exist in every v1 hierarchy. A new cpuset
    cgroup starts with no CPUs and no memory nodes: it gets its parent's."""
    for hierarchy in sorted(CGROUP_V1.iterdir()):
        if hierarchy.name == "unified" or not hierarchy.is_dir():
            continue
        folder = hierarchy / layout.cgroup_root.lstrip("/")
        folder.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (folder / name).read_text().strip():
                    (folder / name).write_text((hierarchy / name).read_text())


def start(layout: NodeLayout) -> None:
    if processes.running(layout.pid(COMPONENT)):
        return
    create_cgroup_root(layout)
    kubeconfig = pki.kubeconfig(layout, "kubelet", f"system:node:{layout.name}", "system:nodes")
    config = layout.file("kubelet.yaml")
    config.write_text(yaml.safe_dump(configuration(layout)))
    layout.kubelet_dir.mkdir(parents=True, exist_ok=True)
    labels = ",".join(f"{key}={value}" for key, value in NODE_LABELS.items())
    argv = [*netns.enter(layout), str(TOOLS_BIN / "kubelet"), f"--config={config}",
            f"--kubeconfig={kubeconfig}", f"--hostname-override={layout.name}",
            f"--node-ip={layout.ip}", f"--root-dir={layout.kubelet_dir}",
            f"--cert-dir={layout.kubelet_dir / 'pki'}", f"--node-labels={labels}", "--v=1"]
    env = {"PATH": f"{TOOLS_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    processes.start(argv, layout.pid(COMPONENT), layout.log(COMPONENT), env)
    time.sleep(0.5)
    if not processes.running(layout.pid(COMPONENT)):
        raise RuntimeError(f"the kubelet exited at once; see {layout.log(COMPONENT)}")
