"""`make release-local`: the whole publishing path on this machine, then consumed as a new user
would, and everything stopped again.

    python -m release.local_release [--serve] [--major 3|4 ...]

Starts the distribution registry (TLS from a CA made for the run, htpasswd auth, a free loopback
port), makes throwaway OpenPGP and cosign keys, publishes the chart with `make release`'s
publish() (without the kuberay-operator subchart where its archive cannot be fetched, and saying
so), serves the classic repository over HTTPS, then, for each helm major, with a fresh Helm home:
`helm registry login`, `helm pull --verify` from the registry and from the classic repository,
and `cosign verify`. With --serve it keeps the registry and repository up, printing the commands
to try, until Ctrl-C. Every process it started is stopped and its folder removed at the end.
"""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
import threading
from pathlib import Path

from harness.versions import HELM_MAJORS
from release import gpg
from release.cosign import Cosign
from release.helm_home import FreshHelm
from release.package_chart import Signing
from release.publish import OpenPgpKey, Published, Registry, publish
from release.registry import LocalRegistry
from release.repo_server import ChartRepoServer


def check(what: str, proc) -> None:  # proc: subprocess.CompletedProcess[str]
    if proc.returncode != 0:
        raise SystemExit(f"release-local: {what} FAILED:\n{proc.stderr.strip()}")
    print(f"release-local: {what}: ok")


def consume(workdir: Path, major: int, registry: LocalRegistry, repo_url: str,
            published: Published, keyring: Path, cosign_public: Path) -> None:
    user = FreshHelm(workdir / f"user-helm{major}", major)
    ca = str(registry.certificate.ca_file)
    check(f"helm {major}: registry login", user.run(
        "registry", "login", registry.host, "--username", registry.username, "--password-stdin",
        "--ca-file", ca, stdin=registry.password))
    chart = f"oci://{published.reference.split('@')[0]}"
    for source, args in (("registry", [chart, "--ca-file", ca]),
                         ("classic repository", ["ray-platform/ray-platform"])):
        if source == "classic repository":
            check(f"helm {major}: repo add", user.run("repo", "add", "ray-platform", repo_url,
                                                      "--ca-file", ca))
        destination = workdir / f"pulled-helm{major}-{source.replace(' ', '-')}"
        destination.mkdir()
        check(f"helm {major}: pull --verify from the {source}", user.run(
            "pull", *args, "--version", published.version, "--verify", "--keyring", str(keyring),
            "--destination", str(destination)))
    cosign = Cosign(workdir / f"user-docker{major}", registry.certificate.ca_file)
    cosign.login(registry.host, registry.username, registry.password)
    check(f"cosign verify ({chart.removeprefix('oci://')}:{published.version})",
          cosign.verify(f"{chart.removeprefix('oci://')}:{published.version}", cosign_public))


def serve_until_interrupted(registry: LocalRegistry, repo_url: str, published: Published,
                            keyring: Path, cosign_public: Path) -> None:
    ca = registry.certificate.ca_file
    chart = f"oci://{published.reference.split('@')[0]}"
    print(f"""
The registry and the chart repository stay up until Ctrl-C. Try, as a new user:

  export HELM_CONFIG_HOME=$(mktemp -d) HELM_CACHE_HOME=$(mktemp -d) HELM_DATA_HOME=$(mktemp -d)
  echo {shlex.quote(registry.password)} | .tools/bin/helm4 registry login {registry.host} \\
      --username {registry.username} --password-stdin --ca-file {ca}
  .tools/bin/helm4 pull {chart} --version {published.version} --verify --keyring {keyring} --ca-file {ca}
  .tools/bin/helm4 repo add ray-platform {repo_url} --ca-file {ca}
  .tools/bin/helm4 pull ray-platform/ray-platform --version {published.version} --verify --keyring {keyring}
  SSL_CERT_FILE={ca} .tools/bin/cosign verify --key {cosign_public} --insecure-ignore-tlog=true \\
      {chart.removeprefix('oci://')}:{published.version}
""", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true",
                        help="keep the registry and repository up until Ctrl-C")
    parser.add_argument("--major", type=int, action="append", choices=HELM_MAJORS,
                        help="helm major(s) to consume with (default: all)")
    args = parser.parse_args(argv)
    # Short path: gpg-agent's socket lives in the GnuPG home.
    with tempfile.TemporaryDirectory(prefix="rp-release-") as folder:
        workdir = Path(folder)
        home = workdir / "gnupg"
        key = gpg.throwaway_key(home, "ray-platform-local", workdir / "keys")
        try:
            with LocalRegistry.start(workdir / "registry") as registry:
                print(f"release-local: registry on https://{registry.host} (TLS from a CA made "
                      f"for this run, htpasswd user {registry.username})")
                publisher = Cosign(workdir / "publisher-docker", registry.certificate.ca_file)
                cosign_key = publisher.generate_key_pair(workdir / "cosign" / "cosign", "local-run")
                site = workdir / "site"
                site.mkdir()
                server = ChartRepoServer(site, registry.certificate)
                repo_url = f"{server.url}/charts"
                published = publish(
                    registry=Registry(f"oci://{registry.host}/charts", registry.certificate.ca_file,
                                      registry.username, registry.password),
                    repo_dir=site / "charts", repo_url=repo_url,
                    key=OpenPgpKey(Signing(key.uid, key.secring), key.fingerprint, key.public_asc),
                    cosign_key=cosign_key, cosign=publisher, offline=True,
                    dist=workdir / "dist", throwaway=True,
                    helm_env=FreshHelm(workdir / "publisher-helm", 4).env())
                with server:
                    print(f"release-local: classic repository on {repo_url}")
                    for major in args.major or HELM_MAJORS:
                        consume(workdir, major, registry, repo_url, published, key.pubring,
                                cosign_key.public)
                    if args.serve:
                        serve_until_interrupted(registry, repo_url, published, key.pubring,
                                                cosign_key.public)
        finally:
            gpg.stop_agent(home)
    print("release-local: registry and repository stopped, keys and storage removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
