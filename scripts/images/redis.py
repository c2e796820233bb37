"""The redis image: Debian bookworm minbase + Debian's `redis-server` (Redis 7.0), the external
store of the chaos scenarios' GCS fault tolerance (tests/node/test_chaos_serve.py). No image can
be pulled here, and Debian's package is the Redis a Debian machine runs.

    /usr/bin/redis-server as ENTRYPOINT (the pod passes the settings as arguments), user redis
    (the uid:gid the package's postinst gave it, numeric so the kubelet can check runAsNonRoot),
    WORKDIR /data owned by redis (an emptyDir mounted there in the pod: the root filesystem can
    be read-only)

Docs and man pages are left out; the root filesystem is built, archived and removed (only the
archive is cached, by build.cached, keyed by the package list and this file).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from images import archive, rootfs
from images.archive import ImageConfig

PACKAGES = ("redis-server",)
ENTRYPOINT = "/usr/bin/redis-server"
DATA = "/data"
USER = "redis"
# Nothing in them is read at run time; together a few MB of a small image.
TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/info", "var/cache/debconf/templates.dat-old",
           "var/log/apt", "var/log/dpkg.log")


def ids_of(root: Path, user: str) -> tuple[int, int]:
    """(uid, gid) of `user` in root's /etc/passwd."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise rootfs.BuildError(f"no user {user} in {root}/etc/passwd (did redis-server's postinst run?)")


def config(uid: int, gid: int) -> ImageConfig:
    if uid == 0:
        raise rootfs.BuildError(f"user {USER} is root in the image: it must run as non-root")
    return ImageConfig(user=f"{uid}:{gid}", entrypoint=(ENTRYPOINT,), workdir=DATA)


def make_image(work: Path):
    """A make(archive_path, reference) for build.cached."""

    def make(path: Path, reference: str) -> None:
        root = work / "root"
        rootfs.debootstrap(root, PACKAGES)
        for trimmed in TRIMMED:
            target = root / trimmed
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        uid, gid = ids_of(root, USER)
        data = root / DATA.lstrip("/")
        data.mkdir(exist_ok=True)
        os.chown(data, uid, gid)
        layer = work / "layer.tar"
        archive.layer_from_tree(root, layer)
        archive.write_archive(path, reference, [layer], config(uid, gid))
        shutil.rmtree(work)

    return make
