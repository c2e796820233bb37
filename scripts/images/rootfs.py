"""Root filesystems for the images: Debian bookworm by debootstrap, from the Debian mirror this
machine's apt already uses (no other network is reachable), cached by what goes into them."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

SUITE = "bookworm"
# What every Ray container runs: KubeRay's generated command is `/bin/bash -c -- "ulimit ...;
# ray start ..."` (bash is in minbase), Ray and its venv need python3 and python3-venv, and the
# readiness probe KubeRay v1.6.2 gives RayService workers is `bash -c "wget ... :52365/api/
# local_raylet_healthz | grep success && wget ... :8000/-/healthz | grep success"` (wget is in the
# rayproject images too); procps gives `ps` to whoever debugs a container.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "procps", "wget")
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


class BuildError(RuntimeError):
    """An image cannot be built here; str() says what is missing."""


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (deb822 `URIs:` or a one-line `deb` entry)."""
    files: list[Path] = []
    for source in APT_SOURCES:
        if source.is_dir():
            files += sorted(source.glob("*.sources")) + sorted(source.glob("*.list"))
        elif source.is_file():
            files.append(source)
    for path in files:
        text = path.read_text(errors="replace")
        for match in re.finditer(r"^(?:URIs:\s*(\S+)|deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+))", text, re.M):
            uri = match.group(1) or match.group(2)
            suite = match.group(3)
            if "security" not in uri and (suite is None or suite == SUITE):
                return uri
    raise BuildError("no Debian archive found in /etc/apt/sources.list(.d): debootstrap needs "
                     "the mirror this machine installs Debian packages from")


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            **kwargs)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(argv[:4])} ... failed ({result.returncode}):\n"
                         f"{result.stdout[-4000:]}")
    return result


def debootstrap(target: Path, packages: tuple[str, ...] = BASE_PACKAGES) -> None:
    """A minbase bookworm with packages, into target (replaced if present)."""
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed (Debian package debootstrap; "
                         "`make setup` installs it)")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE,
         str(partial), debian_mirror()])
    # apt's package lists and downloaded .debs are of no use inside an image.
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for child in (partial / leftover).glob("*"):
            if child.is_file():
                child.unlink()
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def chroot(root: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    """Run a command inside root (no network needed: every input is copied in first)."""
    environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
    return run(["chroot", str(root), *argv], env=environment).stdout


def add_user(root: Path, name: str, uid: int, gid: int, home: str) -> None:
    """The image's user, as the rayproject images have it (gid 100 is Debian's `users`)."""
    chroot(root, "useradd", "--uid", str(uid), "--gid", str(gid), "--create-home",
           "--home-dir", home, "--shell", "/bin/bash", name)


def copy_tree(source: Path, target: Path) -> None:
    """A copy of a root filesystem that shares file data with the source (hard links): the
    layers above only add files, so nothing the source holds is ever modified through it."""
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    run(["cp", "-a", "--link", str(source), str(target)])


def size_of(path: Path) -> int:
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total
