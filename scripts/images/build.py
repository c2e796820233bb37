"""Build the local node's images into archives that containerd imports (`python -m images.build`).

    pause         the pod sandbox: a static binary of our own pause.c, user 65535
    ray           Debian bookworm (Python 3.11) + ray[serve]==2.60.0 in /opt/ray, user `ray`
                  uid 1000 gid 100, HOME /home/ray: what the chart's securityContext expects of
                  rayproject/ray, and every program KubeRay's generated commands and probes call
                  (bash for `ulimit -n ...; ray start ...`, `ray health-check` for wait-gcs-ready,
                  the dashboard agent on 52365 for the httpGet probes)
    ray-serve     the ray image + the Serve app's pinned stack (requirements/serve.txt: torch,
                  diffusers, ...) + the tiny random-weight pipeline at /models/tiny-sd (no model
                  hub is reachable), as a second layer above the ray image's
    kuberay-operator  the Go-built operator (.tools/bin) as /manager, user 65532, like the
                  operator's own distroless image
    prometheus, prometheus-operator, prometheus-config-reloader, kube-state-metrics  the
                  monitoring stack's Go-built binaries, one each (images/monitoring.py)
    redis         Debian bookworm minbase + redis-server, user redis (images/redis.py): the
                  external store of GCS fault tolerance in the chaos scenarios

Each image is cached under ~/.cache/ray-platform/images (XDG_CACHE_HOME) by a hash of what goes
into it (RECIPE, the requirement files, the Debian packages, the binaries), so a second build, a
second cluster or a fresh clone on the same machine reuses it.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from images import archive, monitoring, redis, rootfs
from images.archive import ImageConfig

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
def cache_root() -> Path:
    """The machine's cache of this project's images and image stores, outside the checkout (like
    Go's build cache): a fresh clone on the same machine, as CI's, finds its images built."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ray-platform"


CACHE = cache_root() / "images"
BIN = REPO / ".tools" / "bin"
REGISTRY = "localhost/ray-platform"
RAY_VERSION = "2.60.0"
VENV = "/opt/ray"
TINY_MODEL_PATH = "/models/tiny-sd"
SERVE_REQUIREMENTS = REPO / "requirements" / "serve.txt"
RAY_REQUIREMENTS = HERE / "ray-image-requirements.txt"
RAY_USER = ("ray", 1000, 100, "/home/ray")
RAY_ENV = (f"PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME=/home/ray", "LANG=C.UTF-8", "VIRTUAL_ENV=" + VENV,
           # Nothing outside the cluster is reachable: Ray must not try to report usage.
           "RAY_USAGE_STATS_ENABLED=0")


@dataclass(frozen=True)
class Built:
    name: str
    reference: str
    archive: Path
    seconds: float
    cached: bool

    @property
    def size(self) -> int:
        return archive.archive_size(self.archive)


def digest(*parts: bytes | str | Path) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            part = part.read_bytes()
        hasher.update(part if isinstance(part, bytes) else part.encode())
        hasher.update(b"\0")
    return hasher.hexdigest()[:12]


# Bump when a change to this code changes what goes into the images (the inputs below are hashed
# already): a cached root filesystem or archive is reused only when its recipe is the same.
RECIPE = "1"
# The same for the ray-serve layer alone (the model folder's permissions, ...).
SERVE_RECIPE = "2"


def recipe(*parts: bytes | str | Path) -> str:
    """The cache key of an image or root filesystem: RECIPE, the image settings and its inputs."""
    return digest(RECIPE, repr((RAY_USER, RAY_ENV, VENV, TINY_MODEL_PATH)), *parts)


def say(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


def cached(name: str, tag: str, make: Callable[[Path, str], None]) -> Built:
    """The archive of name:tag, made by make(archive_path, reference) unless already there."""
    reference = f"{REGISTRY}/{name}:{tag}"
    path = CACHE / "archives" / f"{name}-{tag}"
    started = time.monotonic()
    if (path / "manifest.json").is_file():
        return Built(name, reference, path, time.monotonic() - started, cached=True)
    say(f"building {reference} ...")
    make(path, reference)
    seconds = time.monotonic() - started
    built = Built(name, reference, path, seconds, cached=False)
    say(f"built {reference} in {seconds:.0f} s ({built.size / 1e6:.0f} MB archive)")
    for stale in path.parent.glob(f"{name}-*"):
        if stale != path and not stale.name.endswith(".partial"):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return built


def single_file_layer(work: Path, files: dict[str, tuple[Path | bytes, int]]) -> Path:
    """A layer of a few files: {path in image: (source file or content, mode)}."""
    shutil.rmtree(work, ignore_errors=True)
    for target, (source, mode) in files.items():
        destination = work / "root" / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            shutil.copyfile(source, destination)
        else:
            destination.write_bytes(source)
        destination.chmod(mode)
    (work / "root" / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (work / "root" / "tmp").chmod(0o1777)
    layer = work / "layer.tar"
    archive.layer_from_tree(work / "root", layer)
    return layer


def pause() -> Built:
    def make(path: Path, reference: str) -> None:
        work = CACHE / "work" / "pause"
        work.mkdir(parents=True, exist_ok=True)
        binary = work / "pause"
        rootfs.run(["gcc", "-Os", "-static", "-o", str(binary), str(HERE / "pause.c")])
        layer = single_file_layer(work / "layer", {"/pause": (binary, 0o755)})
        archive.write_archive(path, reference, [layer], ImageConfig(
            user="65535:65535", env=(), entrypoint=("/pause",)))
        shutil.rmtree(work)

    return cached("pause", recipe(HERE / "pause.c"), make)


def operator() -> Built:
    binary = BIN / "kuberay-operator"
    if not binary.is_file():
        raise rootfs.BuildError(f"{binary} is not built: run `make tools`")

    def make(path: Path, reference: str) -> None:
        work = CACHE / "work" / "operator"
        # The operator's own image runs as distroless' nonroot (65532) with nothing but /manager.
        passwd = b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"
        group = b"root:x:0:\nnonroot:x:65532:\n"
        layer = single_file_layer(work, {"/manager": (binary, 0o755),
                                         "/etc/passwd": (passwd, 0o644),
                                         "/etc/group": (group, 0o644)})
        archive.write_archive(path, reference, [layer], ImageConfig(
            user="65532:65532", env=(), entrypoint=("/manager",)))
        shutil.rmtree(work)

    return cached("kuberay-operator", recipe(binary), make)


def base_rootfs() -> Path:
    """Debian bookworm minbase with Python 3.11, cached by its package list."""
    key = digest(rootfs.SUITE, *rootfs.BASE_PACKAGES)
    path = CACHE / "rootfs" / f"bookworm-{key}"
    if not path.is_dir():
        started = time.monotonic()
        say(f"debootstrap {rootfs.SUITE} (minbase + {', '.join(rootfs.BASE_PACKAGES)}) ...")
        rootfs.debootstrap(path)
        say(f"debootstrap done in {time.monotonic() - started:.0f} s")
    return path


def constraints_of(requirements: Path) -> Path:
    """requirements as a pip constraints file: the same pins without extras (pip refuses
    `ray[serve]==...` as a constraint), written beside the cache."""
    text = re.sub(r"^([A-Za-z0-9_.-]+)\[[^]]*\]", r"\1", requirements.read_text(), flags=re.M)
    path = CACHE / "constraints" / f"{requirements.stem}-{digest(text)}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def download_wheels(requirements: Path, constraints: Path, key: str) -> Path:
    """Wheels for the image's Python (3.11, manylinux x86_64, as this machine's), fetched once."""
    folder = CACHE / "wheels" / key
    if (folder / ".complete").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rootfs.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                "--dest", str(folder), "-r", str(requirements), "-c", str(constraints_of(constraints))])
    (folder / ".complete").touch()
    say(f"downloaded the wheels of {requirements.name} in {time.monotonic() - started:.0f} s")
    return folder


def pip_install(root: Path, wheels: Path, requirements: Path, constraints: Path) -> str:
    """Install into the image's venv from the wheel folder only (the chroot has no network)."""
    inside = root / "tmp" / "wheels"
    shutil.rmtree(inside, ignore_errors=True)
    rootfs.run(["cp", "-a", "--link", str(wheels), str(inside)])
    shutil.copyfile(requirements, inside / "requirements.txt")
    shutil.copyfile(constraints_of(constraints), inside / "constraints.txt")
    try:
        return rootfs.chroot(root, f"{VENV}/bin/pip", "install", "--no-index", "--no-cache-dir",
                             "--disable-pip-version-check", "--find-links", "/tmp/wheels",
                             "-r", "/tmp/wheels/requirements.txt",
                             "-c", "/tmp/wheels/constraints.txt")
    finally:
        shutil.rmtree(inside, ignore_errors=True)


def ray_rootfs_key() -> str:
    return recipe(RAY_REQUIREMENTS, SERVE_REQUIREMENTS, rootfs.SUITE, *rootfs.BASE_PACKAGES)


def ray_rootfs() -> tuple[Path, Path, str]:
    """The ray image's root filesystem and its layer (cached), and the cache key."""
    key = ray_rootfs_key()
    root = CACHE / "rootfs" / f"ray-{key}"
    layer = CACHE / "layers" / f"ray-{key}.tar"
    if root.is_dir() and layer.is_file():
        return root, layer, key
    wheels = download_wheels(RAY_REQUIREMENTS, SERVE_REQUIREMENTS, f"ray-{key}")
    partial = root.with_name(root.name + ".partial")
    rootfs.copy_tree(base_rootfs(), partial)
    name, uid, gid, home = RAY_USER
    rootfs.add_user(partial, name, uid, gid, home)
    rootfs.chroot(partial, "python3", "-m", "venv", VENV)
    pip_install(partial, wheels, RAY_REQUIREMENTS, SERVE_REQUIREMENTS)
    archive.layer_from_tree(partial, layer)
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root, layer, key


def ray() -> Built:
    def make(path: Path, reference: str) -> None:
        _, layer, _ = ray_rootfs()
        archive.write_archive(path, reference, [layer], ImageConfig(
            user="1000:100", env=RAY_ENV, workdir="/home/ray", cmd=("/bin/bash",)))

    return cached("ray", f"{RAY_VERSION}-{ray_rootfs_key()}", make)


def layer_paths(base: Path, upper: Path) -> list[str]:
    """The entries of the layer that turns base into upper (a hard-linked copy of base, then
    installed into): every path upper has that base lacks or has as another file, and for each
    path base has that upper lacks (pip replacing a package base already had), an OCI whiteout
    (`.wh.<name>`, an empty file written into upper beside it) that hides it when unpacked.
    Only the topmost removed path gets one: a whiteout hides everything below it."""
    entries: list[str] = []
    for folder, directories, names in os.walk(upper):
        relative = Path(folder).relative_to(upper)
        for entry in (*directories, *names):
            path = relative / entry
            try:
                theirs = os.lstat(base / path)
            except FileNotFoundError:
                entries.append(f"./{path}")
                continue
            if os.lstat(upper / path).st_ino != theirs.st_ino and not os.path.isdir(upper / path):
                entries.append(f"./{path}")
    for folder, directories, names in os.walk(base):
        relative = Path(folder).relative_to(base)
        gone = [entry for entry in (*directories, *names)
                if not os.path.lexists(upper / relative / entry)]
        for entry in gone:
            whiteout = upper / relative / f".wh.{entry}"
            whiteout.touch()
            entries.append(f"./{relative / whiteout.name}")
        directories[:] = [d for d in directories if d not in gone]
    return sorted(entries)


def ray_serve() -> Built:
    def make(path: Path, reference: str) -> None:
        base, ray_layer, ray_key = ray_rootfs()
        work = CACHE / "rootfs" / "ray-serve.partial"
        rootfs.copy_tree(base, work)
        wheels = download_wheels(SERVE_REQUIREMENTS, SERVE_REQUIREMENTS, f"serve-{ray_key}")
        pip_install(work, wheels, SERVE_REQUIREMENTS, SERVE_REQUIREMENTS)
        from serving.tiny_model import build_tiny_pipeline

        model = work / TINY_MODEL_PATH.lstrip("/")
        build_tiny_pipeline(model)
        # safetensors writes its files 0600: the image's user (uid 1000) must read them.
        rootfs.run(["chmod", "-R", "a+rX", str(model)])
        layer = CACHE / "layers" / "ray-serve.tar"
        archive.layer_from_tree(work, layer, only=layer_paths(base, work))
        archive.write_archive(path, reference, [ray_layer, layer], ImageConfig(
            user="1000:100", env=RAY_ENV, workdir="/home/ray", cmd=("/bin/bash",),
            labels={"ray-platform.io/tiny-model": TINY_MODEL_PATH}))
        layer.unlink()
        shutil.rmtree(work)

    tiny_model = REPO / "scripts" / "serving" / "tiny_model.py"
    key = recipe(SERVE_RECIPE, ray_rootfs_key(), tiny_model)
    return cached("ray-serve", f"{RAY_VERSION}-{key}", make)


def monitoring_image(name: str, binary_name: str, path_in_image: str, workdir: str = "",
                     arguments: tuple[str, ...] = ()) -> Callable[[], Built]:
    """prometheus, prometheus-operator, prometheus-config-reloader, kube-state-metrics
    (images/monitoring.py)."""
    def build_it() -> Built:
        binary = BIN / binary_name
        make = monitoring.make_binary_image(binary, path_in_image, CACHE / "work" / name, workdir,
                                            arguments)
        return cached(name, recipe(binary, HERE / "monitoring.py", repr(arguments)), make)

    return build_it


def redis_image() -> Built:
    """images/redis.py: keyed by its package list and the module (what it trims, its config)."""
    key = recipe(rootfs.SUITE, *redis.PACKAGES, Path(redis.__file__))
    return cached("redis", key, redis.make_image(CACHE / "work" / "redis"))


BUILDERS: dict[str, Callable[[], Built]] = {
    "pause": pause, "ray": ray, "ray-serve": ray_serve, "kuberay-operator": operator,
    # The monitoring stack (`make up MONITORING=1`, tests/node/test_monitoring_live.py): small,
    # so every local cluster imports them with the rest.
    "prometheus": monitoring_image("prometheus", "prometheus", "/bin/prometheus", "/prometheus"),
    "prometheus-operator": monitoring_image("prometheus-operator", "prometheus-operator",
                                            "/bin/operator"),
    "prometheus-config-reloader": monitoring_image(
        "prometheus-config-reloader", "prometheus-config-reloader",
        "/bin/prometheus-config-reloader"),
    "kube-state-metrics": monitoring_image("kube-state-metrics", "kube-state-metrics",
                                           "/kube-state-metrics", arguments=(
                                               "--port=8080", "--telemetry-port=8081")),
    # GCS fault tolerance's Redis (tests/node/test_chaos_serve.py): small, imported with the rest.
    "redis": redis_image,
}


def prune() -> list[Path]:
    """Remove the root filesystems, layers and wheels no current recipe names (each is hundreds
    of megabytes to gigabytes); the archives prune themselves when rebuilt (cached())."""
    key = ray_rootfs_key()
    base = f"bookworm-{digest(rootfs.SUITE, *rootfs.BASE_PACKAGES)}"
    keep = {CACHE / "rootfs" / base, CACHE / "rootfs" / f"ray-{key}",
            CACHE / "layers" / f"ray-{key}.tar",
            CACHE / "wheels" / f"ray-{key}", CACHE / "wheels" / f"serve-{key}"}
    removed = []
    for folder in ("rootfs", "layers", "wheels", "work"):
        for path in sorted((CACHE / folder).glob("*")) if (CACHE / folder).is_dir() else []:
            if path not in keep:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
    return removed


def build(names: list[str] | None = None) -> list[Built]:
    """The images, one build at a time on this machine: a second `make images` (a `make up`
    while `make test` runs) waits for the first and then finds its archives cached."""
    if os.geteuid() != 0:
        raise rootfs.BuildError("building the images needs root (debootstrap and chroot)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = [BUILDERS[name]() for name in (names or list(BUILDERS))]
        for path in prune():
            say(f"removed {path} (no current image uses it)")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(BUILDERS)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown image(s) {', '.join(unknown)}: the images are {', '.join(BUILDERS)}")
    try:
        for built in build(args.names or None):
            state = "cached" if built.cached else f"built in {built.seconds:.0f} s"
            print(f"{built.reference}\t{built.size / 1e6:.0f} MB\t{state}\t{built.archive}")
    except rootfs.BuildError as error:
        print(f"images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
