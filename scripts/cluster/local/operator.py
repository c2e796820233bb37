"""The KubeRay operator as a host process, with the CRDs and the RBAC of its own module.

The operator authenticates as ServiceAccount kuberay-system/kuberay-operator, bound to the
ClusterRole the operator ships (config/rbac/role.yaml of the pinned module), not as an admin.
On the simulated-node cluster no Ray runs behind a pod, so its HTTP calls to Ray (dashboard,
Serve proxy probes) fail, and RayServices stay un-Ready there; tests/cluster checks only what
the API server and the operator do with the chart's objects. Where Ray must really run, the
operator runs as a pod beside it on the real node (cluster/node/operator_pod.py).
"""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bootstrap import go_tools
from cluster.local import processes
from cluster.local.controlplane import Layout
from cluster.local.kubectl import Kubectl
from harness.tools import REPO

OPERATOR_MODULE = "github.com/ray-project/kuberay/ray-operator"
OPERATOR_TOOLS_DIR = REPO / "tools" / "kuberay-operator"
NAMESPACE = "kuberay-system"
SERVICE_ACCOUNT = "kuberay-operator"
TOKEN_SECRET = "kuberay-operator-token"
FEATURE_GATES = "RayCronJob=true"


def module_dir() -> Path:
    """The operator module's source folder in Go's module cache (where `make tools` built it)."""
    return go_tools.module_source(OPERATOR_MODULE, OPERATOR_TOOLS_DIR, "make tools")


def module_version() -> str:
    for line in (OPERATOR_TOOLS_DIR / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == OPERATOR_MODULE:
            return parts[1]
    raise RuntimeError(f"{OPERATOR_MODULE} is not required in {OPERATOR_TOOLS_DIR / 'go.mod'}")


CRDS_TOOLS_DIR = REPO / "tools" / "crds"
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"


def gateway_api_crd_files() -> list[Path]:
    """The Gateway API's standard CRDs from the module pinned in tools/crds/go.mod."""
    result = subprocess.run(["go", "mod", "download", "-json", GATEWAY_API_MODULE],
                            cwd=CRDS_TOOLS_DIR, text=True, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"cannot fetch {GATEWAY_API_MODULE} (tools/crds/go.mod): "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    source = Path(json.loads(result.stdout)["Dir"])
    return sorted((source / "config" / "crd" / "standard").glob("*.yaml"))


def crd_files(source: Path | None = None) -> list[Path]:
    return sorted(((source or module_dir()) / "config" / "crd" / "bases").glob("*.yaml"))


def cluster_role(source: Path | None = None) -> dict[str, Any]:
    documents = yaml.safe_load_all(((source or module_dir()) / "config" / "rbac" / "role.yaml")
                                   .read_text())
    roles = [doc for doc in documents if doc and doc.get("kind") == "ClusterRole"]
    if len(roles) != 1:
        raise RuntimeError("expected one ClusterRole in the operator's config/rbac/role.yaml")
    return roles[0]


def identity_objects(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount with a token Secret, and the binding to the shipped role."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
         "metadata": {"name": TOKEN_SECRET, "namespace": NAMESPACE,
                      "annotations": {"kubernetes.io/service-account.name": SERVICE_ACCOUNT}}},
        role,
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": SERVICE_ACCOUNT},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": role["metadata"]["name"]},
         "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                       "namespace": NAMESPACE}]},
    ]


def service_account_token(kubectl: Kubectl, timeout: float = 60) -> str:
    """The token the controller-manager writes into the ServiceAccount's token Secret."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        secret = kubectl.get("secret", TOKEN_SECRET, "-n", NAMESPACE)
        token = (secret.get("data") or {}).get("token")
        if token:
            return base64.b64decode(token).decode()
        time.sleep(0.5)
    raise RuntimeError(f"no token in Secret {NAMESPACE}/{TOKEN_SECRET} after {timeout:.0f} s: "
                       "is kube-controller-manager running?")


def operator_kubeconfig(admin_kubeconfig: Path, token: str) -> dict[str, Any]:
    """The admin kubeconfig's server and CA, with the operator's ServiceAccount token."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "kuberay-operator",
        "clusters": [{"name": "local", "cluster": cluster["cluster"]}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "kuberay-operator",
                      "context": {"cluster": "local", "user": SERVICE_ACCOUNT}}],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class OperatorFiles:
    layout: Layout

    @property
    def kubeconfig(self) -> Path:
        return self.layout.state_dir / "operator" / "kubeconfig"

    @property
    def pid(self) -> Path:
        return self.layout.state_dir / "operator" / "pid"

    @property
    def log(self) -> Path:
        return self.layout.state_dir / "operator" / "operator.log"

    @property
    def ports(self) -> Path:
        return self.layout.state_dir / "operator" / "ports.json"

    @property
    def resolv_conf(self) -> Path:
        return self.layout.state_dir / "operator" / "resolv.conf"


# The operator calls each Ray head at <cluster>-head-svc.<ns>.svc.cluster.local, a name only the
# real node's cluster DNS knows; on the host such a lookup would go to the machine's resolver, an
# address outside the project's namespaces. The operator gets a resolver on loopback where
# nothing listens, so the lookup fails at once and no query leaves the machine's loopback.
LOOPBACK_RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


def with_loopback_resolver(argv: list[str], resolv_conf: Path) -> list[str]:
    """argv in a mount namespace of its own whose /etc/resolv.conf is `resolv_conf` (unshare
    execs, so the pid stays the program's and stopping its process group still works)."""
    resolv_conf.write_text(LOOPBACK_RESOLV_CONF)
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv_conf), *argv]


def install(layout: Layout, kubectl: Kubectl) -> None:
    """CRDs and RBAC of the pinned operator module."""
    source = module_dir()
    kubectl.apply_files(crd_files(source))
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in crd_files(source)]
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s",
                *[f"crd/{name}" for name in names])
    kubectl.apply(identity_objects(cluster_role(source)))


def start(layout: Layout, kubectl: Kubectl, reconcile_concurrency: int = 4,
          timeout: float = 60) -> None:
    files = OperatorFiles(layout)
    if processes.running(files.pid):
        return
    files.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    files.kubeconfig.write_text(json.dumps(
        operator_kubeconfig(layout.kubeconfig, service_account_token(kubectl)), indent=2))
    files.kubeconfig.chmod(0o600)
    metrics, health = free_port(), free_port()
    files.ports.write_text(json.dumps({"metrics": metrics, "health": health}))
    argv = [
        str(layout.binary("kuberay-operator")),
        f"--kubeconfig={files.kubeconfig}",
        "--enable-leader-election=false",
        f"--metrics-addr=127.0.0.1:{metrics}",
        f"--health-probe-bind-address=127.0.0.1:{health}",
        f"--reconcile-concurrency={reconcile_concurrency}",
        "--log-stdout-encoder=console",
        # RayCronJob's controller is alpha and off by default (ray-operator v1.6.2,
        # pkg/features); the chart renders RayCronJobs for scheduled rayJobs.
        f"--feature-gates={FEATURE_GATES}",
    ]
    env = layout.env()
    # A proxy of the caller's shell must not get the operator's calls to Ray pods.
    for key in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
                "ALL_PROXY", "all_proxy"):
        env.pop(key, None)
    processes.start(with_loopback_resolver(argv, files.resolv_conf), files.pid, files.log, env)
    wait_healthy(files, health, timeout)


def wait_healthy(files: OperatorFiles, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.running(files.pid):
            raise RuntimeError(f"the KubeRay operator exited; its log:\n{tail(files.log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the KubeRay operator was not ready after {timeout:.0f} s; its log:\n"
                       f"{tail(files.log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(layout: Layout) -> bool:
    return processes.stop(OperatorFiles(layout).pid)
