"""What the real node needs from this machine, checked before `make up` starts anything (standard
library only: it runs before the virtualenv exists). One sentence per missing thing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids")
# The images (Ray, and the Serve stack with torch) and containerd's copies of them.
FREE_BYTES = 30 * 1024**3


def problems(root: Path = Path("/"), euid: int | None = None,
             which=shutil.which, free_path: Path | None = None) -> list[str]:
    found: list[str] = []
    if (os.geteuid() if euid is None else euid) != 0:
        found.append("the local cluster's real node needs root (kubelet, containerd and runc "
                     "create namespaces, cgroups and mounts): run make up as root")
    if not (root / "dev" / "kmsg").exists():
        found.append("/dev/kmsg is missing: the kubelet's OOM watcher reads it")
    filesystems = (root / "proc" / "filesystems")
    if filesystems.is_file() and "overlay" not in filesystems.read_text():
        found.append("the kernel has no overlay filesystem: containerd's snapshotter needs it")
    cgroups = root / "sys" / "fs" / "cgroup"
    missing = [name for name in CONTROLLERS if not (cgroups / name / "cgroup.procs").is_file()
               and not (cgroups / "cgroup.controllers").is_file()]
    if missing:
        found.append(f"the cgroup controllers {', '.join(missing)} are not mounted under "
                     f"{cgroups}: the kubelet needs them")
    if not (root / "proc" / "sys" / "net" / "bridge").is_dir():
        found.append("the kernel's bridge netfilter (br_netfilter) is missing: Service traffic "
                     "between pods on the node's bridge would bypass kube-proxy's rules")
    for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux"), ("gcc", "gcc")):
        if which(tool) is None:
            found.append(f"`{tool}` is not installed (Debian package {package})")
    target = free_path or Path(__file__).resolve().parents[3]
    free = shutil.disk_usage(target).free
    if free < FREE_BYTES:
        found.append(f"{free / 1024**3:.0f} GiB free on {target}: the node's images and "
                     f"containerd's copies of them need about {FREE_BYTES // 1024**3} GiB")
    return found
