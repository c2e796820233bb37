"""The CNCF distribution registry (.tools/bin/registry, built from its Go module) on a free
loopback port, with TLS from the project's own CA and htpasswd (bcrypt) authentication: the OCI
registry the release tests and `make release-local` publish the chart to.

    with LocalRegistry.start(workdir) as registry:
        registry.host       # 127.0.0.1:<port>
        registry.username, registry.password, registry.certificate.ca_file

Stopped (and its storage deleted with workdir by the caller) when the block ends.
"""
from __future__ import annotations

import base64
import os
import secrets
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from release.cosign import release_tool
from release.tls import ServerCertificate, make_loopback_certificate

USERNAME = "ray-platform-publisher"
STARTUP_TIMEOUT = 30.0


def free_loopback_port() -> int:
    """A port nothing listens on right now (the kernel's choice), for a server to bind next."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def registry_binary() -> Path:
    return release_tool("registry", "the distribution registry")


def write_htpasswd(path: Path, username: str, password: str) -> None:
    """One htpasswd line; the registry accepts bcrypt entries only."""
    import bcrypt  # the venv's (requirements/test.txt); imported here so the module loads without it

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    path.write_text(f"{username}:{hashed}\n")
    path.chmod(0o600)


def registry_config(port: int, storage: Path, certificate: ServerCertificate,
                    htpasswd: Path) -> dict:
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        # delete: a test may replace what a tag points to, as a compromised registry would.
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16),
                 "tls": {"certificate": str(certificate.cert_file),
                         "key": str(certificate.key_file)}},
        "auth": {"htpasswd": {"realm": "ray-platform", "path": str(htpasswd)}},
    }


@dataclass
class LocalRegistry:
    host: str
    username: str
    password: str
    certificate: ServerCertificate
    process: subprocess.Popen[bytes]
    log_file: Path

    @classmethod
    def start(cls, workdir: Path) -> "LocalRegistry":
        workdir.mkdir(parents=True, exist_ok=True)
        certificate = make_loopback_certificate(workdir / "tls")
        password = secrets.token_urlsafe(24)
        htpasswd = workdir / "htpasswd"
        write_htpasswd(htpasswd, USERNAME, password)
        port = free_loopback_port()
        config = workdir / "config.yml"
        config.write_text(yaml.safe_dump(registry_config(port, workdir / "storage", certificate,
                                                         htpasswd)))
        log_file = workdir / "registry.log"
        # Tracing off: its default exporter would try an OTLP collector on localhost.
        env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_SDK_DISABLED": "true"}
        with log_file.open("wb") as log:
            process = subprocess.Popen([str(registry_binary()), "serve", str(config)],
                                       stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env)
        registry = cls(f"127.0.0.1:{port}", USERNAME, password, certificate, process, log_file)
        try:
            registry.wait_until_serving()
        except BaseException:
            registry.stop()
            raise
        return registry

    def __enter__(self) -> "LocalRegistry":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def url(self, path: str = "") -> str:
        return f"https://{self.host}/{path.lstrip('/')}"

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate.ca_file))

    def request(self, method: str, path: str, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One authenticated call of the registry's HTTP API (the OCI distribution spec)."""
        credentials = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(self.url(path), data=data, method=method,
                                         headers={"Authorization": f"Basic {credentials}",
                                                  **(headers or {})})
        try:
            with urllib.request.urlopen(request, context=self.tls_context(), timeout=30) as reply:
                return reply.status, dict(reply.headers), reply.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def wait_until_serving(self) -> None:
        """Until /v2/ answers over TLS (200 with credentials); the log when the process died."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the registry exited with {self.process.returncode}:\n"
                                   f"{self.log_file.read_text(errors='replace')[-2000:]}")
            try:
                if self.request("GET", "/v2/")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, ssl.SSLError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the registry did not answer on {self.host} within "
                                   f"{STARTUP_TIMEOUT:.0f} s:\n{self.log_file.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

