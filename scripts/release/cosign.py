"""cosign (.tools/bin/cosign, built from its Go module): a key pair, and signing and verifying
the chart's OCI artifact in the registry.

No keyless signing and no transparency log: neither Fulcio nor Rekor is reachable from here, so
signatures are made with a key pair and uploaded to the registry only, and verified with the
public key, the transparency log check skipped (`--insecure-ignore-tlog=true`). That is what a
private-infrastructure user of cosign runs. Signing uses `--tlog-upload=false
--use-signing-config=false`: cosign 3 calls --tlog-upload deprecated in favour of a signing-config
file without log services, but that path first fetches Sigstore's trust root over the network
(TUF), which must not happen here; the deprecated flags sign without any network call.

Registry credentials come from a Docker-style config folder (`DOCKER_CONFIG`, written by
`cosign login`); the registry's CA from `SSL_CERT_FILE`.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.tools import TOOLS_BIN, ToolMissing


def release_tool(name: str, what: str) -> Path:
    """A binary of the Go tools' release group (tools/release/go.mod), or ToolMissing saying how
    to build it."""
    path = TOOLS_BIN / name
    if not path.is_file():
        raise ToolMissing(f"{what} is not installed at {path}: run `make tools-release` "
                          "(python3 -m bootstrap.go_tools --group release)")
    return path


def binary() -> Path:
    return release_tool("cosign", "cosign")


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    password: str   # what encrypts the private key (COSIGN_PASSWORD)


@dataclass(frozen=True)
class Cosign:
    """cosign with its own Docker config folder and, where the registry has a private CA, that
    CA as the only trusted root."""
    docker_config: Path
    ca_file: Path | None = None

    def env(self, password: str | None = None) -> dict[str, str]:
        env = {**os.environ, "DOCKER_CONFIG": str(self.docker_config)}
        if self.ca_file is not None:
            env["SSL_CERT_FILE"] = str(self.ca_file)
        if password is not None:
            env["COSIGN_PASSWORD"] = password
        return env

    def run(self, *args: str, password: str | None = None, stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary()), *args], input=stdin, capture_output=True, text=True,
                              env=self.env(password), timeout=timeout, check=False)

    def login(self, host: str, username: str, password: str) -> None:
        self.docker_config.mkdir(parents=True, exist_ok=True)
        result = self.run("login", host, "--username", username, "--password-stdin",
                          stdin=password)
        if result.returncode != 0:
            raise SystemExit(f"cosign login {host} failed: {result.stderr.strip()}")

    def generate_key_pair(self, prefix: Path, password: str) -> KeyPair:
        """prefix.key (encrypted with password) and prefix.pub."""
        prefix.parent.mkdir(parents=True, exist_ok=True)
        result = self.run("generate-key-pair", "--output-key-prefix", str(prefix),
                          password=password)
        if result.returncode != 0:
            raise SystemExit(f"cosign generate-key-pair failed: {result.stderr.strip()}")
        return KeyPair(prefix.with_suffix(".key"), prefix.with_suffix(".pub"), password)

    def public_key_of(self, key: KeyPair) -> str:
        """The PEM public key of a private key file (`cosign public-key`)."""
        result = self.run("public-key", "--key", str(key.private), password=key.password)
        if result.returncode != 0:
            raise SystemExit(f"cosign public-key failed: {result.stderr.strip()}")
        return result.stdout

    def sign(self, reference: str, key: KeyPair) -> subprocess.CompletedProcess[str]:
        """Sign an artifact by digest (`host/repo@sha256:...`); the signature goes to the
        registry beside it."""
        return self.run("sign", "--key", str(key.private), "--tlog-upload=false",
                        "--use-signing-config=false", "--yes", reference, password=key.password)

    def verify(self, reference: str, public_key: Path) -> subprocess.CompletedProcess[str]:
        return self.run("verify", "--key", str(public_key), "--insecure-ignore-tlog=true",
                        reference)
