"""The pinned kind, and the node image it starts: what `make up` and the e2e suite create clusters with.

    python3 -m bootstrap.install_kind [--bin-dir DIR]   # says which kind and node image, or what is missing

kind is built from its Go module (sigs.k8s.io/kind, pinned by tools/go.mod and tools/go.sum) into
.tools/bin/kind by `make tools` (bootstrap/go_tools.py); nothing is downloaded here. install()
returns that binary once `kind version` confirms the pinned release, or, where .tools/bin has no
kind, a kind on PATH that reports the same release (a developer's own install). Otherwise it
raises KindUnavailable with one sentence that says to run `make tools`.

KIND_NODE_IMAGE is the default node image compiled into kind v0.33.0 (the module's
pkg/apis/config/defaults/image.go): Kubernetes 1.37.0, pinned by digest, so every developer gets
the same Kubernetes, the newest minor the chart is validated against (harness/versions.py).
Docker verifies the digest when it pulls the image.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from harness.tools import TOOLS_BIN

KIND_VERSION = "v0.33.0"
KIND_NODE_IMAGE = ("kindest/node:v1.37.0"
                   "@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5")


class KindUnavailable(Exception):
    """No kind of the pinned release; the message is one sentence for the user."""


def kind_version(binary: Path) -> str | None:
    """`kind version` prints e.g. "kind v0.33.0 go1.26.8 linux/amd64"."""
    try:
        proc = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = proc.stdout.split()
    return words[1] if proc.returncode == 0 and len(words) > 1 and words[0] == "kind" else None


def install(bin_dir: Path = TOOLS_BIN, search_path: str | None = None) -> Path:
    """The path of a kind that reports KIND_VERSION: bin_dir's (built by `make tools`), else PATH's
    (search_path overrides $PATH for tests)."""
    built = bin_dir / "kind"
    if built.is_file():
        version = kind_version(built)
        if version == KIND_VERSION:
            return built
        raise KindUnavailable(f"{built} reports {version or 'no version'} instead of kind {KIND_VERSION}: "
                              "run `make tools` to rebuild it from tools/go.mod")
    found = shutil.which("kind", path=search_path)
    if found is not None and kind_version(Path(found)) == KIND_VERSION:
        return Path(found)
    raise KindUnavailable(f"kind {KIND_VERSION} is not built yet ({built} is missing): run `make tools` "
                          "to build it from tools/go.mod")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Which kind and node image `make up` uses.")
    parser.add_argument("--bin-dir", type=Path, default=TOOLS_BIN)
    args = parser.parse_args(argv)
    try:
        path = install(args.bin_dir.resolve())
    except KindUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    print(f"kind {KIND_VERSION} ok ({path}); node image {KIND_NODE_IMAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
