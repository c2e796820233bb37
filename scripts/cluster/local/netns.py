"""Named network namespaces with nothing but a loopback interface (iproute2's `ip netns`).

A process in one can listen on "every interface" and still be reachable only from inside, and
it cannot connect anywhere outside. Creating one needs root (CAP_SYS_ADMIN), as on the build
machines; the name is derived from the local cluster's state folder so that two clusters never
share one, and `make down` deletes it.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

PREFIX = "rp-"


class Unavailable(RuntimeError):
    """No network namespace can be made here; str() says why and what to do."""


def name_for(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
    return f"{PREFIX}{digest}"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("ip") or "/usr/sbin/ip"
    if not Path(binary).exists():
        raise Unavailable("iproute2's `ip` is not installed (Debian package iproute2)")
    return subprocess.run([binary, *args], text=True, capture_output=True)


def exists(name: str) -> bool:
    return (Path("/run/netns") / name).exists()


def create(name: str) -> None:
    """The namespace with its loopback up (idempotent)."""
    if not exists(name):
        result = _ip("netns", "add", name)
        if result.returncode != 0:
            raise Unavailable(
                f"`ip netns add {name}` failed ({result.stderr.strip()}): the real Ray head runs "
                "in a network namespace of its own, which needs root (CAP_SYS_ADMIN)")
    result = _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    if result.returncode != 0:
        raise Unavailable(f"cannot bring up loopback in {name}: {result.stderr.strip()}")


def exec_prefix(name: str) -> list[str]:
    """argv prefix that runs a command inside the namespace."""
    return [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", name]


def delete(name: str) -> bool:
    if not exists(name):
        return False
    _ip("netns", "delete", name)
    return True
