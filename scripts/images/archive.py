"""Images in the `docker save` layout (manifest.json, a config blob, uncompressed layer
tarballs), which containerd's own `ctr images import` takes and unpacks.

Written here rather than with crane: crane gzips every layer it appends (minutes for the
multi-gigabyte Serve layer on two cores, only to be unpacked again at import) and its `mutate`
reads images from a registry only. The format is three small JSON documents around tarballs
that GNU tar writes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config the kubelet and runc read."""

    user: str = ""
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def layer_from_tree(root: Path, output: Path, only: list[str] | None = None) -> str:
    """An uncompressed layer tarball of root (or of the paths `only` lists, relative to root),
    with numeric owners and a fixed order; returns its sha256 (the layer's diff ID)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    # Modification times stay: Python checks its cached bytecode against its sources' mtimes.
    argv = ["tar", "--create", "--file", str(output), "--directory", str(root),
            "--numeric-owner", "--sort=name", "--xattrs"]
    if only is not None:
        argv.append("--no-recursion")
        with tempfile.NamedTemporaryFile("w", delete=False, suffix=".list") as listing:
            listing.write("\n".join(only) + "\n")
        argv += ["--files-from", listing.name]
    else:
        argv.append(".")
    result = subprocess.run(argv, text=True, capture_output=True)
    if only is not None:
        Path(listing.name).unlink(missing_ok=True)
    if result.returncode != 0:
        raise RuntimeError(f"tar of {root} failed: {result.stderr.strip()}")
    return sha256_of(output)


def config_document(config: ImageConfig, diff_ids: list[str]) -> dict:
    container = {"Env": list(config.env)}
    if config.user:
        container["User"] = config.user
    if config.entrypoint:
        container["Entrypoint"] = list(config.entrypoint)
    if config.cmd:
        container["Cmd"] = list(config.cmd)
    if config.workdir:
        container["WorkingDir"] = config.workdir
    if config.labels:
        container["Labels"] = dict(config.labels)
    return {"architecture": "amd64", "os": "linux", "config": container,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
            "history": [{"created_by": "ray-platform scripts/images"} for _ in diff_ids]}


def write_archive(output: Path, reference: str, layers: list[Path], config: ImageConfig) -> None:
    """The image as a folder in the `docker save` layout, tagged `reference`: manifest.json, the
    config, and the layers (tarballs, bottom first, uncompressed) hard-linked in, so that a
    layer two images share is stored once. `ctr images import` reads it as a tar stream
    (stream_archive): a multi-gigabyte layer is never copied into a second file. Written under a
    temporary name and renamed, so a cached folder is whole."""
    diff_ids = [sha256_of(layer) for layer in layers]
    document = json.dumps(config_document(config, diff_ids), sort_keys=True).encode()
    config_name = f"{hashlib.sha256(document).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [reference],
                 "Layers": [f"{diff_id}/layer.tar" for diff_id in diff_ids]}]
    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for diff_id, layer in zip(diff_ids, layers):
        (partial / diff_id).mkdir(exist_ok=True)
        target = partial / diff_id / "layer.tar"
        if not target.exists():
            os.link(layer, target)
    (partial / config_name).write_bytes(document)
    (partial / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(output, ignore_errors=True)
    partial.rename(output)


def archive_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def stream_archive(folder: Path) -> subprocess.Popen:
    """A tar stream of the image folder on the process's stdout (for `ctr images import -`)."""
    return subprocess.Popen(["tar", "--create", "--directory", str(folder), "--file", "-", "."],
                            stdout=subprocess.PIPE)
