"""What the real node needs from this machine, checked before `make up` starts anything (standard
library only: it runs before the virtualenv exists). One sentence per missing thing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids")
GIB = 1024**3
# What a first `make up` writes (measured 2026-12-06): the images with the wheels and root
# filesystems they are built from (9 GiB), a cluster's containerd store of them (13 GiB: the
# layers and their unpacked snapshots), and room for logs and Ray's object spilling.
IMAGES_BYTES = 10 * GIB
STORE_BYTES = 14 * GIB
SPARE_BYTES = 2 * GIB


def needed_bytes(cluster_name: str = "ray-platform") -> int:
    """Free disk the node still needs: less what the cache already holds from an earlier run."""
    from images.build import CACHE, cache_root  # standard library only, like this module

    needed = SPARE_BYTES
    if not any((CACHE / "archives").glob("ray-serve-*")):
        needed += IMAGES_BYTES
    if not (cache_root() / "containerd" / cluster_name).is_dir():
        needed += STORE_BYTES
    return needed


def problems(root: Path = Path("/"), euid: int | None = None,
             which=shutil.which, free_path: Path | None = None,
             needed: int | None = None) -> list[str]:
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
    target = free_path or Path.home()
    free = shutil.disk_usage(target).free
    needed = needed_bytes() if needed is None else needed
    if free < needed:
        found.append(f"{free / GIB:.0f} GiB free on {target}: the node's images and containerd's "
                     f"copies of them need about {needed / GIB:.0f} GiB more")
    return found
