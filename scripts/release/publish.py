"""`make release`: package the chart, sign it (Helm provenance), push it with its provenance to
an OCI registry, sign the pushed artifact with cosign, and write a classic chart repository.

    make release REGISTRY=oci://registry.example.com/charts URL=https://charts.example.com [OFFLINE=1]

Keys and credentials come from the environment, never from the command line:
  RAY_PLATFORM_GPG_KEY              user id (or fingerprint) of the OpenPGP signing key
                                    (default: "ray-platform release signing")
  RAY_PLATFORM_GPG_KEYRING          its secret keyring in the legacy format Helm reads
                                    (`gpg --export-secret-keys KEY > secring.gpg`; default
                                    ~/.gnupg/secring.gpg)
  RAY_PLATFORM_GPG_PASSPHRASE_FILE  a file holding the key's passphrase, if it has one
  COSIGN_KEY, COSIGN_PASSWORD       cosign's private key file and its password
  REGISTRY_USERNAME, REGISTRY_PASSWORD   log in first (otherwise existing logins are used)
  REGISTRY_CA_FILE                  the registry's CA, when it is not publicly trusted

The OpenPGP key must be the one Chart.yaml's `artifacthub.io/signKey` names
(keys/ray-platform-release.asc) and the cosign key the one keys/cosign.pub holds, or users'
verification and Artifact Hub disagree with the signatures; `--throwaway-key` (tests, `make
release-local`) signs with other keys and writes the OpenPGP key's fingerprint into the packaged
Chart.yaml instead.

The classic repository (default dist/repo/) gets the archive and its .prov, index.yaml (merged
with an existing one), artifacthub-repo.yml and the public key; serve that folder at URL.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import helm
from harness.tools import CHART_DIR, REPO
from release import gpg
from release.cosign import Cosign, KeyPair
from release.package_chart import DIST, Signing, package

ARTIFACTHUB_REPO = REPO / "artifacthub-repo.yml"
RELEASE_KEY = REPO / "keys" / "ray-platform-release.asc"
RELEASE_COSIGN_KEY = REPO / "keys" / "cosign.pub"
SIGN_KEY_ANNOTATION = "artifacthub.io/signKey"


@dataclass(frozen=True)
class Registry:
    """Where the chart goes: `oci://host[:port]/path`, and how to reach it."""
    url: str
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"oci://[^/\s]+(/[a-z0-9._/-]+)?", self.url):
            raise SystemExit(f"REGISTRY must look like oci://host[:port]/path, not {self.url!r}")

    @property
    def host(self) -> str:
        return self.url.removeprefix("oci://").split("/", 1)[0]

    def tls_args(self) -> list[str]:
        return ["--ca-file", str(self.ca_file)] if self.ca_file else []


@dataclass(frozen=True)
class OpenPgpKey:
    signing: Signing
    fingerprint: str
    public_asc: Path


@dataclass(frozen=True)
class Published:
    archive: Path
    provenance: Path
    version: str
    reference: str      # host/path/ray-platform@sha256:... (what cosign signed)
    repo_dir: Path


def chart_sign_key() -> dict[str, str]:
    annotations = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text()).get("annotations") or {}
    return yaml.safe_load(annotations.get(SIGN_KEY_ANNOTATION, "")) or {}


def sign_key_annotations(key: OpenPgpKey, throwaway: bool, repo_url: str) -> dict[str, str]:
    """Nothing when the key is the one Chart.yaml names; with throwaway, an annotation naming
    the throwaway key (served beside index.yaml); otherwise a refusal."""
    advertised = chart_sign_key().get("fingerprint")
    if key.fingerprint == advertised:
        return {}
    if not throwaway:
        raise SystemExit(f"release: the signing key {key.fingerprint} is not the one Chart.yaml's "
                         f"{SIGN_KEY_ANNOTATION} names ({advertised}); sign with that key "
                         f"(keys/{RELEASE_KEY.name}), or pass --throwaway-key for a trial run")
    url = f"{repo_url.rstrip('/')}/{key.public_asc.name}"
    return {SIGN_KEY_ANNOTATION: yaml.safe_dump({"fingerprint": key.fingerprint, "url": url},
                                                sort_keys=False)}


def helm_ok(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    proc = helm.run(*args, env=env, input=stdin)
    if proc.returncode != 0:
        raise SystemExit(f"release: helm {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout + proc.stderr


def push(archive: Path, registry: Registry, env: dict[str, str]) -> str:
    """`helm push` (the .prov beside the archive goes with it); the pushed digest reference."""
    if registry.username:
        helm_ok("registry", "login", registry.host, "--username", registry.username,
                "--password-stdin", *registry.tls_args(), env=env, stdin=registry.password or "")
    output = helm_ok("push", str(archive), registry.url, *registry.tls_args(), env=env)
    pushed = re.search(r"Pushed: (\S+):\S+", output)
    digest = re.search(r"Digest: (sha256:[0-9a-f]{64})", output)
    if not (pushed and digest):
        raise SystemExit(f"release: cannot read the pushed reference from helm push:\n{output}")
    return f"{pushed.group(1)}@{digest.group(1)}"


def write_classic_repo(repo_dir: Path, archive: Path, repo_url: str, public_keys: list[Path],
                       env: dict[str, str]) -> None:
    repo_dir.mkdir(parents=True, exist_ok=True)
    for source in (archive, archive.with_name(archive.name + ".prov"), ARTIFACTHUB_REPO,
                   *public_keys):
        shutil.copy2(source, repo_dir / source.name)
    args = ["repo", "index", str(repo_dir), "--url", repo_url]
    index = repo_dir / "index.yaml"
    if index.exists():
        args += ["--merge", str(index)]
    helm_ok(*args, env=env)


def publish(*, registry: Registry, repo_dir: Path, repo_url: str, key: OpenPgpKey,
            cosign_key: KeyPair, cosign: Cosign, offline: bool, dist: Path = DIST,
            version: str | None = None, throwaway: bool = False,
            helm_env: dict[str, str] | None = None) -> Published:
    env = helm_env or dict(os.environ)
    annotations = sign_key_annotations(key, throwaway, repo_url)
    advertised_cosign = RELEASE_COSIGN_KEY.read_text().strip()
    if not throwaway and cosign.public_key_of(cosign_key).strip() != advertised_cosign:
        raise SystemExit(f"release: COSIGN_KEY is not the key keys/{RELEASE_COSIGN_KEY.name} holds; "
                         "sign with that key, or pass --throwaway-key for a trial run")
    archive = package(dist, offline, version=version, signing=key.signing,
                      annotations=annotations or None)
    provenance = archive.with_name(archive.name + ".prov")
    reference = push(archive, registry, env)
    print(f"release: pushed {reference} (with {provenance.name})")
    if registry.username:
        cosign.login(registry.host, registry.username, registry.password or "")
    signed = cosign.sign(reference, cosign_key)
    if signed.returncode != 0:
        raise SystemExit(f"release: cosign sign failed: {signed.stderr.strip()}")
    verified = cosign.verify(reference, cosign_key.public)
    if verified.returncode != 0:
        raise SystemExit(f"release: cosign verify of what was just signed failed: "
                         f"{verified.stderr.strip()}")
    print(f"release: cosign signed and verified {reference}")
    write_classic_repo(repo_dir, archive, repo_url, [key.public_asc, cosign_key.public], env)
    print(f"release: classic repository in {repo_dir} (index.yaml for {repo_url})")
    shown_version = version or yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"]
    return Published(archive, provenance, shown_version, reference, repo_dir)


def key_from_environment() -> OpenPgpKey:
    name = os.environ.get("RAY_PLATFORM_GPG_KEY", "ray-platform release signing")
    keyring = Path(os.environ.get("RAY_PLATFORM_GPG_KEYRING",
                                  Path.home() / ".gnupg" / "secring.gpg"))
    passphrase = os.environ.get("RAY_PLATFORM_GPG_PASSPHRASE_FILE")
    return OpenPgpKey(Signing(name, keyring, Path(passphrase) if passphrase else None),
                      gpg.signing_fingerprint(keyring, name), RELEASE_KEY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="oci://host[:port]/path")
    parser.add_argument("--url", required=True, help="base URL the classic repository is served at")
    parser.add_argument("--repo-dir", type=Path, default=DIST / "repo")
    parser.add_argument("--offline", action="store_true",
                        help="package without the kuberay-operator subchart if it cannot be fetched")
    parser.add_argument("--throwaway-key", action="store_true",
                        help="a trial run: sign with a key other than Chart.yaml's signKey and "
                             "name that key in the packaged Chart.yaml")
    args = parser.parse_args(argv)
    if not args.url.startswith("https://"):
        raise SystemExit(f"release: URL must be the https:// base URL the classic repository is "
                         f"served at, not {args.url!r}")
    cosign_key = os.environ.get("COSIGN_KEY")
    if not cosign_key:
        raise SystemExit("release: set COSIGN_KEY (cosign's private key file) and COSIGN_PASSWORD")
    ca_file = os.environ.get("REGISTRY_CA_FILE")
    registry = Registry(args.registry, Path(ca_file) if ca_file else None,
                        os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD"))
    docker_config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    private = Path(cosign_key)
    publish(registry=registry, repo_dir=args.repo_dir, repo_url=args.url,
            key=key_from_environment(),
            cosign_key=KeyPair(private, RELEASE_COSIGN_KEY, os.environ.get("COSIGN_PASSWORD", "")),
            cosign=Cosign(docker_config, registry.ca_file), offline=args.offline,
            throwaway=args.throwaway_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
