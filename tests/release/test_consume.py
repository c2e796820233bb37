"""What a user of the published chart does, with a Helm home of their own and each helm major:
log in to the registry, install from it with --verify, upgrade X -> X+1 from it, pull with
--verify from the classic repository, and check the cosign signature. And what the verification
refuses: the tampered chart and the chart signed by someone else, with the message shown."""
from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from harness.tools import VALUES_DIR
from harness.versions import HELM_MAJORS
from release.cosign import Cosign
from release.helm_home import FreshHelm

if TYPE_CHECKING:
    from conftest import ReleaseCluster, Site  # tests/release/conftest.py


pytestmark = [pytest.mark.cluster, pytest.mark.release]


@pytest.fixture(params=HELM_MAJORS, ids=lambda major: f"helm{major}")
def user(request: pytest.FixtureRequest, tmp_path: Path) -> FreshHelm:
    return FreshHelm(tmp_path / "helm-home", request.param)


def logged_in(user: FreshHelm, site: Site) -> FreshHelm:
    login = user.run("registry", "login", site.registry.host, "--username",
                     site.registry.username, "--password-stdin", "--ca-file", str(site.ca_file),
                     stdin=site.registry.password)
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded" in login.stdout + login.stderr
    return user


def with_repo(user: FreshHelm, site: Site, path: str) -> FreshHelm:
    added = user.run("repo", "add", path, site.repo_url(path), "--ca-file", str(site.ca_file))
    assert added.returncode == 0, added.stderr
    return user


def verify_args(site: Site) -> list[str]:
    """--verify with the publisher's public key, as a user has it after downloading it."""
    return ["--verify", "--keyring", str(site.keyring)]


def test_the_fresh_home_starts_without_credentials(user: FreshHelm, site: Site,
                                                   tmp_path: Path) -> None:
    """The registry refuses anonymous pulls, so the logins below are what lets the user in."""
    pulled = user.run("pull", site.oci("charts"), "--version", site.version, "--ca-file",
                      str(site.ca_file), "--destination", str(tmp_path))
    assert pulled.returncode != 0
    # helm 3 and 4 say it their way: no credentials to answer the registry's 401 with.
    assert re.search(r"basic credential not found|401|unauthorized", pulled.stderr, re.I), \
        pulled.stderr


def test_install_from_the_registry_with_verify_then_upgrade(
        user: FreshHelm, site: Site, release_cluster: ReleaseCluster) -> None:
    logged_in(user, site)
    namespace = release_cluster.namespace(f"from-oci-h{user.major}")
    common = ["--namespace", namespace, "--kubeconfig", str(release_cluster.kubeconfig),
              "--ca-file", str(site.ca_file), *verify_args(site),
              "-f", str(VALUES_DIR / "dev.yaml"), "--set", "kuberay-operator.enabled=false"]
    installed = user.run("install", "ray", site.oci("charts"), "--version", site.version, *common)
    assert installed.returncode == 0, installed.stderr
    upgraded = user.run("upgrade", "ray", site.oci("charts"), "--version", site.next_version,
                        *common)
    assert upgraded.returncode == 0, upgraded.stderr
    listed = user.run("list", "--namespace", namespace, "--kubeconfig",
                      str(release_cluster.kubeconfig), "-o", "yaml")
    (release,) = yaml.safe_load(listed.stdout)
    assert (release["chart"], release["revision"], release["status"]) == (
        f"ray-platform-{site.next_version}", "2", "deployed")
    # What Helm itself created (not the RayClusters the operator makes for the RayService, whose
    # old cluster keeps serving until its replacement is ready) carries the upgraded chart.
    chart = f"ray-platform-{site.next_version}"
    for kind in ("rayclusters", "rayservices"):
        items = release_cluster.kubectl.get(kind, "-n", namespace)["items"]
        helm_made = [item for item in items if not item["metadata"].get("ownerReferences")]
        assert helm_made and {item["metadata"]["labels"]["helm.sh/chart"]
                              for item in helm_made} == {chart}, kind


def test_pull_with_verify_from_the_registry(user: FreshHelm, site: Site, tmp_path: Path) -> None:
    pulled = logged_in(user, site).run(
        "pull", site.oci("charts"), "--version", site.version, "--ca-file", str(site.ca_file),
        *verify_args(site), "--destination", str(tmp_path))
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / f"ray-platform-{site.version}.tgz.prov").is_file()


def test_pull_with_verify_from_the_classic_repository(user: FreshHelm, site: Site,
                                                      tmp_path: Path) -> None:
    pulled = with_repo(user, site, "charts").run(
        "pull", "charts/ray-platform", "--version", site.version, *verify_args(site),
        "--destination", str(tmp_path))
    assert pulled.returncode == 0, pulled.stderr
    output = pulled.stdout + pulled.stderr
    assert site.key.fingerprint in output and "Chart Hash Verified" in output, output
    with tarfile.open(tmp_path / f"ray-platform-{site.version}.tgz") as archive:
        chart = yaml.safe_load(archive.extractfile("ray-platform/Chart.yaml"))
    # The packaged chart names the key that signed it (a throwaway key here).
    sign_key = yaml.safe_load(chart["annotations"]["artifacthub.io/signKey"])
    assert sign_key["fingerprint"] == site.key.fingerprint


def test_the_classic_repository_serves_the_public_key_and_artifacthub_metadata(site: Site) -> None:
    repo = site.releases["X"].repo_dir
    index = yaml.safe_load((repo / "index.yaml").read_text())
    versions = {entry["version"]: entry for entry in index["entries"]["ray-platform"]}
    assert set(versions) == {site.version, site.next_version}
    archive_url = f"{site.repo_url('charts')}/ray-platform-{site.version}.tgz"
    assert versions[site.version]["urls"] == [archive_url]
    for name in (f"ray-platform-{site.version}.tgz.prov", "artifacthub-repo.yml",
                 site.key.public_asc.name, site.cosign_key.public.name):
        assert (repo / name).is_file(), name


@pytest.mark.parametrize("source", ["registry", "classic"])
@pytest.mark.parametrize("variant, refusal", [
    ("tampered", "sha256 sum does not match"),  # one byte of values.yaml changed
    ("foreign", "signature made by unknown entity"),  # signed by another OpenPGP key
])
def test_a_tampered_or_foreign_signed_chart_is_refused_by_verify(
        user: FreshHelm, site: Site, source: str, variant: str, refusal: str,
        tmp_path: Path) -> None:
    if source == "registry":
        chart = [site.oci(variant), "--ca-file", str(site.ca_file)]
        logged_in(user, site)
    else:
        chart = [f"{variant}/ray-platform"]
        with_repo(user, site, variant)
    pulled = user.run("pull", *chart, "--version", site.version, *verify_args(site),
                      "--destination", str(tmp_path))
    assert pulled.returncode != 0
    assert refusal in pulled.stderr, pulled.stderr


def test_install_of_a_tampered_chart_is_refused(user: FreshHelm, site: Site,
                                                release_cluster: ReleaseCluster) -> None:
    namespace = release_cluster.namespace(f"tampered-h{user.major}")
    installed = logged_in(user, site).run(
        "install", "ray", site.oci("tampered"), "--version", site.version, "--namespace", namespace,
        "--kubeconfig", str(release_cluster.kubeconfig), "--ca-file", str(site.ca_file),
        *verify_args(site))
    assert installed.returncode != 0
    assert "sha256 sum does not match" in installed.stderr, installed.stderr
    assert release_cluster.kubectl.get("rayclusters", "-n", namespace)["items"] == []


@pytest.fixture
def cosign_user(site: Site, tmp_path: Path) -> Cosign:
    """cosign with an empty Docker config of its own, logged in like a user would."""
    cosign = Cosign(tmp_path / "docker", site.ca_file)
    cosign.login(site.registry.host, site.registry.username, site.registry.password)
    return cosign


def test_cosign_verifies_the_published_chart(cosign_user: Cosign, site: Site) -> None:
    for name in ("X", "X+1"):
        published = site.releases[name]
        tag = site.artifact("charts", published.version)
        verified = cosign_user.verify(tag, site.cosign_key.public)
        assert verified.returncode == 0, verified.stderr
        assert published.reference.split("@")[1] in verified.stdout


def test_cosign_refuses_the_tampered_chart(cosign_user: Cosign, site: Site) -> None:
    verified = cosign_user.verify(site.artifact("tampered", site.version),
                                  site.cosign_key.public)
    assert verified.returncode != 0
    assert "no signatures found" in verified.stderr, verified.stderr


def test_cosign_refuses_a_chart_signed_by_another_key(cosign_user: Cosign, site: Site) -> None:
    verified = cosign_user.verify(site.artifact("foreign", site.version),
                                  site.cosign_key.public)
    assert verified.returncode != 0
    assert re.search("no matching (signatures|attestations)", verified.stderr), verified.stderr
    # ... while its own key verifies it: the refusal is about the key, not a broken signature.
    assert cosign_user.verify(site.artifact("foreign", site.version),
                              site.foreign_cosign_key.public).returncode == 0



def test_the_tampered_chart_differs_from_the_signed_one_by_one_byte(site: Site) -> None:
    """What the refusals above are about: one byte of values.yaml, nothing else."""
    original = site.releases["X"].archive
    tampered = site.server.folder / "tampered" / original.name

    def contents(path: Path) -> dict[str, bytes]:
        with tarfile.open(path) as archive:
            return {member.name: archive.extractfile(member).read()
                    for member in archive.getmembers() if member.isfile()}

    before, after = contents(original), contents(tampered)
    assert before.keys() == after.keys()
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"ray-platform/values.yaml"}
    old, new = before["ray-platform/values.yaml"], after["ray-platform/values.yaml"]
    assert len(old) == len(new) and sum(a != b for a, b in zip(old, new)) == 1
