"""What a real node leaves on the machine, found and removed: its processes (every one whose
command line names the node's folders or its containerd socket, and every process in its
cgroups; kube-proxy, kube-router and CoreDNS name a file there on theirs), its mounts
(containers' root filesystems, volumes, the pods' network namespaces), its network namespace
(with every interface, iptables rule and ipset in it: kube-proxy's and kube-router's rules are
written there, never into the host's tables) and its cgroups.

`leftovers` lists them (the test that `make down` left nothing asserts it is empty); `sweep`
removes them, and runs before a node starts, so whatever a killed run left goes first."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster.node import netns
from cluster.node.layout import NodeLayout

CGROUP_V1 = Path("/sys/fs/cgroup")


@dataclass
class Leftovers:
    processes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.processes or self.mounts or self.namespaces or self.cgroups)

    def __str__(self) -> str:
        parts = [f"{name}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
                 for name, items in vars(self).items() if items]
        return "; ".join(parts) or "nothing"


def merged(*found: Leftovers) -> Leftovers:
    """Several nodes' leftovers as one."""
    total = Leftovers()
    for item in found:
        for name, entries in vars(item).items():
            getattr(total, name).extend(entries)
    return total


def markers(layout: NodeLayout) -> tuple[str, ...]:
    return (str(layout.dir), str(layout.containerd_root))


def cgroup_dirs(layout: NodeLayout) -> list[Path]:
    """This node's cgroup root under every mounted v1 hierarchy."""
    if not CGROUP_V1.is_dir():
        return []
    return [hierarchy / layout.cgroup_root.lstrip("/") for hierarchy in sorted(CGROUP_V1.iterdir())
            if (hierarchy / layout.cgroup_root.lstrip("/")).is_dir()]


def cgroup_pids(layout: NodeLayout) -> set[int]:
    pids: set[int] = set()
    for root in cgroup_dirs(layout):
        for procs in root.rglob("cgroup.procs"):
            try:
                pids.update(int(line) for line in procs.read_text().split())
            except OSError:
                pass
    return pids


def node_pids(layout: NodeLayout) -> dict[int, str]:
    """pid -> command line of every process of this node."""
    found: dict[int, str] = {}
    wanted = markers(layout)
    in_cgroups = cgroup_pids(layout)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(entry.name) in in_cgroups or any(marker in command for marker in wanted):
            found[int(entry.name)] = command.strip()
    return found


def node_mounts(layout: NodeLayout) -> list[str]:
    wanted = markers(layout)
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == marker or point.startswith(marker + "/") for marker in wanted):
            mounts.append(point)
    return mounts


def leftovers(layout: NodeLayout) -> Leftovers:
    return Leftovers(
        processes=[f"{pid} {command[:80]}" for pid, command in sorted(node_pids(layout).items())],
        mounts=node_mounts(layout),
        namespaces=[layout.netns] if netns.exists(layout) else [],
        cgroups=[str(path) for path in cgroup_dirs(layout)],
    )


def kill_all(layout: NodeLayout, grace: float = 10) -> None:
    pids = set(node_pids(layout))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (pids := set(node_pids(layout))):
            time.sleep(0.2)
        if not pids:
            return


def unmount_all(layout: NodeLayout) -> None:
    # Deepest first; lazily, so a mount still busy for a moment goes when released.
    for point in sorted(node_mounts(layout), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True)


def remove_cgroups(layout: NodeLayout) -> None:
    for root in cgroup_dirs(layout):
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()),
                             key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
        try:
            root.rmdir()
        except OSError:
            pass


def sweep(layout: NodeLayout) -> Leftovers:
    """Remove everything of this node; returns what could not be removed."""
    kill_all(layout)
    unmount_all(layout)
    netns.delete(layout)
    remove_cgroups(layout)
    return leftovers(layout)
