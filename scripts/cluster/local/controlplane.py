"""The control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kwok
controller, started and stopped by kwokctl's `binary` runtime from the binaries `make tools`
builds (.tools/bin). kwokctl writes the certificates, the kubeconfig and kwok's default stages
(which make scheduled pods Running/Ready); we only pick the binaries and keep every address on
loopback.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cluster.node.addresses import KUBERNETES_SERVICE_IP, NODE_IP as REAL_NODE_IP
from harness.tools import REPO, TOOLS_BIN, ToolMissing

DEFAULT_STATE_DIR = REPO / ".tools" / "local"
DEFAULT_NAME = "ray-platform"
# Default pod IPs for a node without spec.podCIDR; every simulated node gets its own range
# (fleet.py). Both inside 127.0.0.0/8: nothing ever sends traffic to a pod IP off loopback.
DEFAULT_POD_CIDR = "127.64.0.0/16"
NODE_IP = "127.0.0.1"

BINARIES = ("kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager",
            "kube-scheduler", "kubectl")


@dataclass(frozen=True)
class Layout:
    """Where one local cluster keeps its state. Everything lives under state_dir, so `down`
    removes it all; two clusters with different names and folders can run side by side."""

    state_dir: Path = DEFAULT_STATE_DIR
    name: str = DEFAULT_NAME
    bin_dir: Path = TOOLS_BIN

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def kwok_workdir(self) -> Path:
        return self.state_dir / "kwok"

    @property
    def kwokctl_config(self) -> Path:
        return self.state_dir / "kwokctl.yaml"

    @property
    def egress_config(self) -> Path:
        return self.state_dir / "egress-selector.yaml"

    @property
    def egress_socket(self) -> Path:
        """Where the API server dials into the cluster (egress selection `cluster`): the real
        node's CONNECT proxy (cluster/node/connect_proxy.py) listens there, in the node's folder
        (cluster/node/layout.py), so the node's cleanup finds the proxy by that folder."""
        return self.state_dir / "node" / "egress.sock"

    @property
    def pki(self) -> Path:
        """The certificates kwokctl generates when it creates the cluster."""
        return self.kwok_workdir / "clusters" / self.name / "pki"

    def binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not path.is_file():
            raise ToolMissing(f"{name} is not built at {path}: run `make tools` "
                              "(builds the pinned control plane from tools/go.mod)")
        return path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.kwok_workdir)
        env.pop("KUBECONFIG", None)
        return env


def egress_selector_configuration(layout: Layout) -> dict:
    """kube-apiserver's EgressSelectorConfiguration (k8s.io/apiserver pkg/apis/apiserver v1beta1):
    every connection it opens into the cluster (egress `cluster`: the kubelet for logs, exec,
    attach and port-forward; the pod and Service proxy; Service-backed webhooks and aggregated
    APIs) goes as `CONNECT host:port` over the real node's Unix socket. Etcd and the control
    plane's own connections (`etcd`, `controlplane`: not listed) stay direct. While nothing
    listens there (the node not started yet), only those into-the-cluster requests fail."""
    return {
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [{
            "name": "cluster",
            "connection": {"proxyProtocol": "HTTPConnect",
                           "transport": {"uds": {"udsName": str(layout.egress_socket)}}},
        }],
    }


def real_node_apiserver_args(layout: Layout) -> list[dict]:
    """What the API server needs to reach the real node's kubelet (its address exists only in
    the node's network namespace): the egress selector above; the kubelet's InternalIP before
    its hostname (which nothing resolves); and a client certificate the kubelet accepts (kwokctl's
    admin pair, signed by the CA the kubelet trusts, group system:masters for the kubelet's
    authorization webhook). Without one the kubelet answers 401."""
    return [
        {"key": "egress-selector-config-file", "value": str(layout.egress_config)},
        {"key": "kubelet-preferred-address-types", "value": "InternalIP,Hostname"},
        {"key": "kubelet-client-certificate", "value": str(layout.pki / "admin.crt")},
        {"key": "kubelet-client-key", "value": str(layout.pki / "admin.key")},
    ]


def kwokctl_configuration(layout: Layout, real_node: bool = False) -> list[dict]:
    """kwokctl's configuration: binary runtime, our binaries, loopback, authorization and the
    default admission plugins on (Pod Security among them). With real_node, the API server
    reaches into the cluster through the real node's CONNECT proxy (real_node_apiserver_args);
    a cluster of simulated nodes only keeps direct connections (its kubelets are kwok's, on
    the host's loopback, where that proxy never dials)."""
    options = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "securePort": True,
        "kubeAuthorization": True,
        "kubeAdmission": True,
        "etcdBinary": str(layout.binary("etcd")),
        "kubeApiserverBinary": str(layout.binary("kube-apiserver")),
        "kubeControllerManagerBinary": str(layout.binary("kube-controller-manager")),
        "kubeSchedulerBinary": str(layout.binary("kube-scheduler")),
        "kwokControllerBinary": str(layout.binary("kwok")),
        "kubectlBinary": str(layout.binary("kubectl")),
        "cacheDir": str(layout.kwok_workdir / "cache"),
        # Pods on the real node reach the API server as `kubernetes` (10.0.0.1) or through the
        # node IP the API server advertises: its certificate must hold both.
        "kubeApiserverCertSANs": [KUBERNETES_SERVICE_IP, REAL_NODE_IP],
    }
    patches = [
        # kwokctl leaves the simulated nodes' IP empty; a loopback address keeps node IPs (and
        # hostNetwork pod IPs) on 127.0.0.0/8.
        {"name": "kwok-controller", "extraArgs": [
            {"key": "node-ip", "value": NODE_IP, "override": True},
            {"key": "cidr", "value": DEFAULT_POD_CIDR},
            # Only the simulated nodes (fleet.py annotates them) are kwok's: the real node is
            # its kubelet's, and kwok's default (manage every node) would take it over.
            {"key": "manage-all-nodes", "value": "false", "override": True},
            {"key": "manage-nodes-with-annotation-selector",
             "value": "kwok.x-k8s.io/node=fake"},
        ]},
        # The `kubernetes` Service's endpoint: the node IP, where an in-namespace forward of the
        # real node reaches this API server (its own bind address is 127.0.0.1 on the host).
        {"name": "kube-apiserver", "extraArgs": [
            {"key": "advertise-address", "value": REAL_NODE_IP},
            *(real_node_apiserver_args(layout) if real_node else []),
        ]},
    ]
    return [
        {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokctlConfiguration",
         "options": options, "componentsPatches": patches},
    ]


def kwokctl(layout: Layout, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(layout.binary("kwokctl")), *args, "--name", layout.name],
                            env=layout.env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    if check and result.returncode != 0:
        raise RuntimeError(f"kwokctl {' '.join(args)} failed:\n{result.stdout}")
    return result


def exists(layout: Layout) -> bool:
    return (layout.kwok_workdir / "clusters" / layout.name).is_dir()


def create(layout: Layout, timeout: str = "180s", real_node: bool = False) -> None:
    """Start the control plane and write layout.kubeconfig; waits until the API answers. With
    real_node, for a cluster a real node will join (kwokctl_configuration)."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    # YAML is a superset of JSON: kwokctl and the API server read JSON documents as YAML.
    if real_node:  # read once, when the API server starts: it must exist before
        layout.egress_config.write_text(
            json.dumps(egress_selector_configuration(layout), indent=2) + "\n")
    layout.kwokctl_config.write_text("\n---\n".join(
        json.dumps(doc, indent=2) for doc in kwokctl_configuration(layout, real_node)))
    kwokctl(layout, "create", "cluster", "--config", str(layout.kwokctl_config),
            "--kubeconfig", str(layout.kubeconfig), "--timeout", timeout, "--wait", timeout)


def delete(layout: Layout) -> None:
    """Stop every control-plane process kwokctl started and remove the cluster's state."""
    if exists(layout):
        kwokctl(layout, "delete", "cluster", "--kubeconfig", str(layout.kubeconfig), check=False)
    shutil.rmtree(layout.kwok_workdir, ignore_errors=True)
