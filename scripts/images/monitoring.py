"""The local cluster's monitoring images, each one Go-built binary (.tools/bin, `make
tools-monitoring`) in a single layer, laid out like the upstream images the prometheus-operator
expects (it names the paths, not only the images):

    prometheus                  /bin/prometheus as ENTRYPOINT (the operator passes only args),
                                user nobody (65534), WORKDIR /prometheus (its TSDB volume)
    prometheus-operator         /bin/operator, user 65534
    prometheus-config-reloader  /bin/prometheus-config-reloader (the operator sets it as the
                                container's command), user 65534
    kube-state-metrics          /kube-state-metrics --port=8080 --telemetry-port=8081, user 65534

No shell, no libc: the binaries are static (CGO_ENABLED=0). Cached like the other images by a
hash of the binary (build.cached).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from images import archive, rootfs
from images.archive import ImageConfig

NOBODY = "65534:65534"
# Just enough for a uid lookup (Go's os/user falls back to it) to name the user.
PASSWD = b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
GROUP = b"root:x:0:\nnobody:x:65534:\n"


def make_binary_image(binary: Path, path_in_image: str, work: Path, workdir: str = "",
                      arguments: tuple[str, ...] = ()):
    """A make(archive_path, reference) for build.cached: the binary at path_in_image as the
    entrypoint, user nobody, an empty world-writable /tmp, and (if given) an empty workdir
    owned by nobody."""
    if not binary.is_file():
        raise rootfs.BuildError(f"{binary} is not built: run `make tools-monitoring`")

    def make(path: Path, reference: str) -> None:
        from images.build import single_file_layer

        files: dict[str, tuple[Path | bytes, int]] = {
            path_in_image: (binary, 0o755), "/etc/passwd": (PASSWD, 0o644),
            "/etc/group": (GROUP, 0o644)}
        layer_dir = work / "layer"
        single_file_layer(layer_dir, files)
        if workdir:
            # The operator mounts the TSDB volume here; an emptyDir takes the pod's fsGroup, but
            # the folder itself must exist for a run without a volume (a smoke test).
            folder = layer_dir / "root" / workdir.lstrip("/")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, 65534, 65534)
            archive.layer_from_tree(layer_dir / "root", layer_dir / "layer.tar")
        archive.write_archive(path, reference, [layer_dir / "layer.tar"], ImageConfig(
            user=NOBODY, entrypoint=(path_in_image, *arguments), workdir=workdir))
        shutil.rmtree(work)

    return make
