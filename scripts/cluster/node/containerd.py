"""containerd v2 with runc for the node's CRI, its images imported from the archives
scripts/images builds (no registry is reachable: nothing is ever pulled).

Config version 3. What this machine needs beyond the defaults:
- `restrict_oom_score_adj`: this sandbox lacks CAP_SYS_RESOURCE, so runc cannot lower a
  container's oom_score_adj below containerd's own; without it every sandbox fails.
- the sandbox (pause) image pinned to the locally built one, so it is never pulled;
- every path (root, state, sockets, CNI, the pods' network namespaces) in folders of this node
  (`netns_mounts_under_state_dir`), so two local clusters never share one; NRI off (its socket
  is machine-wide).
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from cluster.local import processes
from cluster.node import netns
from cluster.node.layout import NodeLayout
from harness.tools import TOOLS_BIN
from images import archive

COMPONENT = "containerd"
K8S_NAMESPACE = "k8s.io"


def state_dir(layout: NodeLayout) -> Path:
    return layout.dir / "containerd"


def config(layout: NodeLayout, sandbox_image: str) -> str:
    state = state_dir(layout)
    cri_runtime = "plugins.'io.containerd.cri.v1.runtime'"
    return f"""version = 3
root = "{layout.containerd_root}"
state = "{state / 'state'}"
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "{state / 'opt'}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{sandbox_image}"

[{cri_runtime}]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{cri_runtime}.containerd]
  default_runtime_name = "runc"

[{cri_runtime}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri_runtime}.containerd.runtimes.runc.options]
  BinaryName = "{TOOLS_BIN / 'runc'}"
  SystemdCgroup = false

[{cri_runtime}.cni]
  bin_dirs = ["{TOOLS_BIN}"]
  conf_dir = "{layout.dir / 'cni' / 'net.d'}"
  max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def ctr(layout: NodeLayout, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TOOLS_BIN / "ctr"), "--address", str(layout.containerd_socket),
                           "--namespace", K8S_NAMESPACE, *args],
                          text=True, capture_output=True, timeout=timeout)


def start(layout: NodeLayout, sandbox_image: str, timeout: float = 60) -> None:
    if processes.running(layout.pid(COMPONENT)):
        return
    path = layout.file("containerd.toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config(layout, sandbox_image))
    layout.containerd_root.mkdir(parents=True, exist_ok=True)
    layout.pid(COMPONENT).parent.mkdir(parents=True, exist_ok=True)
    env = {"PATH": f"{TOOLS_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    processes.start([*netns.enter(layout), str(TOOLS_BIN / "containerd"), "--config", str(path)],
                    layout.pid(COMPONENT), layout.log(COMPONENT), env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.running(layout.pid(COMPONENT)):
            raise RuntimeError(f"containerd exited:\n{processes_tail(layout)}")
        if layout.containerd_socket.exists() and ctr(layout, "version", timeout=10).returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"containerd did not answer within {timeout:.0f} s:\n{processes_tail(layout)}")


def processes_tail(layout: NodeLayout, lines: int = 30) -> str:
    try:
        return "\n".join(layout.log(COMPONENT).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def images(layout: NodeLayout) -> set[str]:
    result = ctr(layout, "images", "list", "--quiet")
    return set(result.stdout.split())


def import_image(layout: NodeLayout, reference: str, folder: Path) -> bool:
    """Import the image folder (streamed as a tar) unless containerd has the image already;
    True if it imported."""
    if reference in images(layout):
        return False
    stream = archive.stream_archive(folder)
    result = subprocess.run([str(TOOLS_BIN / "ctr"), "--address", str(layout.containerd_socket),
                             "--namespace", K8S_NAMESPACE, "images", "import", "-"],
                            stdin=stream.stdout, text=True, capture_output=True, timeout=1800)
    stream.stdout.close()
    if stream.wait() != 0 or result.returncode != 0:
        raise RuntimeError(f"ctr images import {folder.name}: {result.stderr.strip()}")
    if reference not in images(layout):
        raise RuntimeError(f"{archive} imported, but containerd has no image {reference}")
    # The kubelet's image garbage collector must never remove what cannot be pulled again.
    ctr(layout, "images", "label", reference, "io.cri-containerd.pinned=pinned")
    return True
