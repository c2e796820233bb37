"""Install the pinned kind binary into the project-local tools folder.

    python3 -m bootstrap.install_kind [--tools-dir DIR]

Result: <tools-dir>/bin/kind (v0.31.0). `make up` runs it before creating a cluster; the node
image kind starts is pinned here too (KIND_NODE_IMAGE, by digest), so every developer gets the
same Kubernetes.

Sources, in order; whatever is installed is sha256-verified first:
  1. a `kind` on PATH with the pinned version and, where a binary pin exists, the pinned sha256;
  2. the release binary from kind's GitHub releases, checked against the `.sha256sum` file
     published next to it and, where a binary pin exists, against the pin.
No package registry ships kind, so on a machine without access to GitHub (the build machines)
there is no source: the error says so in one line. Helpers shared with bootstrap/install_helm.py.

Pins, and where they come from:
- kind v0.31.0 linux-amd64 sha256 eb244cbafcc157dff60cf68693c14c9a75c4e6e6fedaf9cd71c58117cb93e3fa:
  the value several independent public projects pin and check for this release asset (the
  release's own .sha256sum could not be fetched from the build machines). Other platforms have no
  pin: the published .sha256sum is their only check.
- kindest/node:v1.35.0@sha256:452d707d...: the Kubernetes 1.35 node image of kind v0.31.0, by the
  digest public projects pin next to that kind release (1.35 is the newest minor the chart is
  validated against, harness/versions.py). Neither pin could be checked against kind's own
  release page from the build machines: the first `make up` with network access does
  (the published .sha256sum, and Docker verifies the image digest when it pulls).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from bootstrap.install_helm import DEFAULT_TOOLS_DIR, download, host_platform, sha256_of

KIND_VERSION = "v0.31.0"
KIND_NODE_IMAGE = ("kindest/node:v1.35.0"
                   "@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f")
RELEASE_URL = "https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-{platform}"
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class KindPin:
    version: str = KIND_VERSION
    binary_sha256: dict[str, str] = field(default_factory=lambda: {
        "linux-amd64": "eb244cbafcc157dff60cf68693c14c9a75c4e6e6fedaf9cd71c58117cb93e3fa",
    })


PIN = KindPin()


class KindUnavailable(Exception):
    """No source could supply a verified kind; the message is one line for the user."""


def kind_version(binary: Path) -> str | None:
    """`kind version` prints e.g. "kind v0.31.0 go1.25.5 linux/amd64"."""
    try:
        proc = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = proc.stdout.split()
    return words[1] if proc.returncode == 0 and len(words) > 1 and words[0] == "kind" else None


def verified(path: Path, pin: KindPin, plat: str) -> bool:
    expected = pin.binary_sha256.get(plat)
    return expected is not None and sha256_of(path) == expected


def from_path(pin: KindPin, plat: str, scratch: Path, search_path: str | None = None) -> Path:
    found = shutil.which("kind", path=search_path)
    if found is None:
        raise KindUnavailable("no kind on PATH")
    version = kind_version(Path(found))
    if version != pin.version:
        raise KindUnavailable(f"kind on PATH is {version or 'unusable'}, not {pin.version}")
    if plat in pin.binary_sha256 and not verified(Path(found), pin, plat):
        raise KindUnavailable(f"kind on PATH ({found}) does not match the pinned sha256")
    if plat not in pin.binary_sha256:
        raise KindUnavailable(f"kind on PATH cannot be verified: no sha256 pin for {plat}")
    return Path(found)


def from_release(pin: KindPin, plat: str, scratch: Path, fetch: Callable[[str, Path, float], None] = download) -> Path:
    url = RELEASE_URL.format(version=pin.version, platform=plat)
    binary, sumfile = scratch / "kind", scratch / "kind.sha256sum"
    try:
        fetch(url + ".sha256sum", sumfile, DOWNLOAD_TIMEOUT_S)  # small first: fail fast offline
        fetch(url, binary, DOWNLOAD_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise KindUnavailable(f"{url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise KindUnavailable(f"kind's GitHub release is unreachable ({url})") from error
    published = (sumfile.read_text().split() or [""])[0]
    actual = sha256_of(binary)
    if actual != published:
        raise KindUnavailable(f"{url} does not match its published .sha256sum")
    if plat in pin.binary_sha256 and actual != pin.binary_sha256[plat]:
        raise KindUnavailable(f"{url} has sha256 {actual[:12]}…, the pin is {pin.binary_sha256[plat][:12]}…")
    return binary


Source = Callable[[KindPin, str, Path], Path]
DEFAULT_SOURCES: tuple[Source, ...] = (from_path, from_release)


def install(bin_dir: Path, pin: KindPin = PIN, plat: str | None = None,
            sources: Sequence[Source] = DEFAULT_SOURCES) -> Path:
    """The path of a verified kind of the pinned version, installed into bin_dir if needed."""
    plat = plat or host_platform()
    target = bin_dir / "kind"
    if target.is_file() and (verified(target, pin, plat) if plat in pin.binary_sha256
                             else kind_version(target) == pin.version):
        return target
    reasons = []
    for source in sources:
        with tempfile.TemporaryDirectory(prefix="install_kind.") as scratch:
            try:
                found = source(pin, plat, Path(scratch))
            except KindUnavailable as unavailable:
                reasons.append(str(unavailable))
                continue
            bin_dir.mkdir(parents=True, exist_ok=True)
            staged = bin_dir / ".kind.staged"
            shutil.copyfile(found, staged)
            staged.chmod(0o755)
            staged.replace(target)
            return target
    raise KindUnavailable(f"cannot install kind {pin.version} for {plat}: {'; '.join(reasons)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the pinned kind into <tools-dir>/bin.")
    parser.add_argument("--tools-dir", type=Path, default=DEFAULT_TOOLS_DIR)
    args = parser.parse_args(argv)
    try:
        path = install(args.tools_dir.resolve() / "bin")
    except KindUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    print(f"kind {PIN.version} ok ({path}); node image {KIND_NODE_IMAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
