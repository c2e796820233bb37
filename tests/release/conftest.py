"""The chart published the way its users get it, once per test session: a distribution registry
with TLS (a CA made for the session) and htpasswd auth on a loopback port, a classic chart
repository over HTTPS, throwaway OpenPGP and cosign keys, and `make release`'s publish() of
version X (Chart.yaml's) and X+1 (the same chart, patch version bumped).

Beside them, what the verification must refuse:
- `tampered`: version X with one byte of values.yaml changed (the Ray image `rayproject/ray`
  becomes `rayproject/raz`) and X's own provenance file, as a registry or web server an attacker
  controls would serve it;
- `foreign`: the chart signed by another OpenPGP key and another cosign key.

The chart is published without the kuberay-operator subchart (its archive cannot be fetched on
these machines: `make package OFFLINE=1`'s path), which is also what the local cluster wants (its
operator runs on the host).

Installs go into a local cluster of this suite's own (real API server and KubeRay operator,
simulated nodes): tests/cluster's session cluster lives in another pytest-xdist worker.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cluster.local import fleet, lifecycle
from cluster.local.controlplane import Layout
from cluster.local.kubectl import Kubectl
from cluster.local.release import restricted_namespace
from harness.tools import CHART_DIR, ToolMissing
from release import gpg
from release.cosign import Cosign, KeyPair
from release.helm_home import FreshHelm
from release.package_chart import Signing
from release.publish import OpenPgpKey, Published, Registry, publish
from release.registry import LocalRegistry
from release.repo_server import ChartRepoServer

VERSION = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"]
major, minor, patch = VERSION.split("-")[0].split(".")
NEXT_VERSION = f"{major}.{minor}.{int(patch) + 1}"
# One byte of the chart that matters: where its pods' image comes from.
TAMPER_FILE, TAMPER_FROM, TAMPER_TO = "ray-platform/values.yaml", b"rayproject/ray", b"rayproject/raz"
RELEASE_FLEET = fleet.Fleet(pools=(fleet.Pool("cpu", 4, "64", "256Gi"),), volumes=4)


@dataclass(frozen=True)
class Site:
    """Everything published for the session."""
    registry: LocalRegistry
    server: ChartRepoServer
    key: OpenPgpKey
    keyring: Path                    # the publisher's public key as Helm reads it (pubring.gpg)
    cosign_key: KeyPair
    foreign_key: OpenPgpKey
    foreign_cosign_key: KeyPair
    releases: dict[str, Published]   # "X", "X+1", "foreign"

    @property
    def ca_file(self) -> Path:
        return self.registry.certificate.ca_file

    @property
    def version(self) -> str:
        return self.releases["X"].version

    @property
    def next_version(self) -> str:
        return self.releases["X+1"].version

    def oci(self, path: str) -> str:
        return f"oci://{self.registry.host}/{path}/ray-platform"

    def artifact(self, path: str, version: str) -> str:
        """The reference cosign takes: host/path/ray-platform:version."""
        return f"{self.registry.host}/{path}/ray-platform:{version}"

    def repo_url(self, path: str) -> str:
        return f"{self.server.url}/{path}"


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    # Short and outside pytest's tree: gpg-agent's socket path must stay under 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="rp-release-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _openpgp_key(workdir: Path, name: str) -> Iterator[OpenPgpKey]:
    home = workdir / f"gnupg-{name}"
    key = gpg.throwaway_key(home, name, workdir / f"keys-{name}")
    try:
        yield OpenPgpKey(Signing(key.uid, key.secring), key.fingerprint, key.public_asc)
    finally:
        gpg.stop_agent(home)


@pytest.fixture(scope="session")
def openpgp_key(workdir: Path) -> Iterator[OpenPgpKey]:
    yield from _openpgp_key(workdir, "publisher")


@pytest.fixture(scope="session")
def foreign_openpgp_key(workdir: Path) -> Iterator[OpenPgpKey]:
    yield from _openpgp_key(workdir, "stranger")


@pytest.fixture(scope="session")
def registry(workdir: Path) -> Iterator[LocalRegistry]:
    try:
        with LocalRegistry.start(workdir / "registry") as running:
            yield running
    except ToolMissing as missing:
        pytest.fail(f"the release tests need the release tools: {missing}", pytrace=False)


def tampered_archive(archive: Path) -> bytes:
    """The archive with one byte of one file changed, repacked (same members, same order)."""
    out = io.BytesIO()
    with tarfile.open(archive) as source, gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if member.name == TAMPER_FILE:
                assert data.count(TAMPER_FROM) >= 1, f"{TAMPER_FROM!r} not in {TAMPER_FILE}"
                index = data.index(TAMPER_FROM) + len(TAMPER_FROM) - 1
                data = data[:index] + TAMPER_TO[-1:] + data[index + 1:]
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def upload_blob(registry: LocalRegistry, repository: str, data: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    status, headers, body = registry.request("POST", f"/v2/{repository}/blobs/uploads/")
    assert status == 202, body
    location = headers["Location"]
    separator = "&" if "?" in location else "?"
    path = location.split(registry.host, 1)[-1]
    status, _, body = registry.request("PUT", f"{path}{separator}digest={digest}", data=data,
                                       headers={"Content-Type": "application/octet-stream"})
    assert status == 201, body
    return digest


def publish_tampered(registry: LocalRegistry, original: Published, repository: str) -> None:
    """Version X under `repository` with the tampered chart layer and X's own config and
    provenance layers: what a compromised registry would serve."""
    manifest_path = f"/v2/{original.reference.split('/', 1)[1].replace('@', '/manifests/')}"
    status, _, body = registry.request("GET", manifest_path, headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 200, body
    manifest = json.loads(body)
    source_repo = original.reference.split("/", 1)[1].split("@")[0]
    for descriptor in [manifest["config"], *manifest["layers"]]:
        if descriptor["mediaType"].endswith("chart.content.v1.tar+gzip"):
            data = tampered_archive(original.archive)
            descriptor["digest"] = upload_blob(registry, repository, data)
            descriptor["size"] = len(data)
        else:
            _, _, blob = registry.request("GET", f"/v2/{source_repo}/blobs/{descriptor['digest']}")
            upload_blob(registry, repository, blob)
    status, _, body = registry.request(
        "PUT", f"/v2/{repository}/manifests/{original.version}", data=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 201, body


def write_tampered_repo(folder: Path, original: Published, url: str) -> None:
    """A classic repository serving the tampered archive with X's .prov and index entry."""
    folder.mkdir(parents=True)
    (folder / original.archive.name).write_bytes(tampered_archive(original.archive))
    shutil.copy2(original.provenance, folder / original.provenance.name)
    index = yaml.safe_load((original.repo_dir / "index.yaml").read_text())
    entries = [entry for entry in index["entries"]["ray-platform"] if entry["version"] == original.version]
    for entry in entries:
        entry["urls"] = [f"{url}/{original.archive.name}"]
    index["entries"]["ray-platform"] = entries
    (folder / "index.yaml").write_text(yaml.safe_dump(index))


@pytest.fixture(scope="session")
def site(workdir: Path, registry: LocalRegistry, openpgp_key: OpenPgpKey,
         foreign_openpgp_key: OpenPgpKey) -> Iterator[Site]:
    publisher = Cosign(workdir / "publisher-docker", registry.certificate.ca_file)
    cosign_key = publisher.generate_key_pair(workdir / "cosign" / "publisher", "publisher-pass")
    foreign_cosign_key = publisher.generate_key_pair(workdir / "cosign" / "stranger", "stranger-pass")
    web = workdir / "site"
    web.mkdir()
    server = ChartRepoServer(web, registry.certificate)
    helm_env = FreshHelm(workdir / "publisher-helm", major=4).env()

    def release(path: str, key: OpenPgpKey, cosign_pair: KeyPair, version: str | None) -> Published:
        return publish(registry=Registry(f"oci://{registry.host}/{path}", registry.certificate.ca_file,
                                         registry.username, registry.password),
                       repo_dir=web / path, repo_url=f"{server.url}/{path}", key=key,
                       cosign_key=cosign_pair, cosign=publisher, offline=True,
                       dist=workdir / "dist" / path / (version or VERSION), version=version,
                       throwaway=True, helm_env=helm_env)

    releases = {"X": release("charts", openpgp_key, cosign_key, None),
                "X+1": release("charts", openpgp_key, cosign_key, NEXT_VERSION),
                "foreign": release("foreign", foreign_openpgp_key, foreign_cosign_key, None)}
    publish_tampered(registry, releases["X"], "tampered/ray-platform")
    write_tampered_repo(web / "tampered", releases["X"], f"{server.url}/tampered")
    with server:
        yield Site(registry, server, openpgp_key, openpgp_key.public_asc.with_name("pubring.gpg"),
                   cosign_key, foreign_openpgp_key, foreign_cosign_key, releases)


@dataclass(frozen=True)
class ReleaseCluster:
    kubeconfig: Path
    kubectl: Kubectl

    def namespace(self, name: str) -> str:
        self.kubectl.apply([restricted_namespace(name, {"ray-platform.io/test": "release"})])
        return name


@pytest.fixture(scope="session")
def release_cluster(workdir: Path) -> Iterator[ReleaseCluster]:
    layout = Layout(state_dir=workdir / "cluster", name="ray-platform-release-test")
    try:
        kubectl = lifecycle.up(layout, RELEASE_FLEET, say=lambda _line: None)
    except ToolMissing as missing:
        pytest.fail(f"the local cluster needs the Go-built tools: {missing}", pytrace=False)
    try:
        yield ReleaseCluster(layout.kubeconfig, kubectl)
    finally:
        lifecycle.down(layout, say=lambda _line: None)
