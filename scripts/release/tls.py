"""A certificate authority of the project's own and a server certificate for loopback, made with
the openssl command (Debian's openssl), for the local registry and chart repository.

Clients trust the CA file explicitly (`helm --ca-file`, `SSL_CERT_FILE` for cosign), exactly as a
user of a registry with a private CA does; nothing is added to the machine's trust store.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# What the servers listen on and what the certificate must name: Go's TLS checks the
# subjectAltName, never the common name.
LOOPBACK_NAMES = ("IP:127.0.0.1", "DNS:localhost")
DAYS = 2


@dataclass(frozen=True)
class ServerCertificate:
    ca_file: Path     # what clients trust
    cert_file: Path   # the server's certificate
    key_file: Path    # the server's private key


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise SystemExit("the local registry needs the openssl command: apt-get install openssl")
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_loopback_certificate(directory: Path) -> ServerCertificate:
    """A fresh CA (ECDSA P-256, valid DAYS days) and a server certificate it signs for
    127.0.0.1 and localhost. The CA's key is deleted once it has signed: nothing else may be
    issued by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *curve, "-keyout", str(ca_key), "-out", str(ca_cert),
             "-days", str(DAYS), "-subj", "/CN=ray-platform local release CA",
             "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-new", *curve, "-keyout", str(key), "-out", str(csr),
             "-subj", "/CN=localhost")
    extensions = directory / "server.ext"
    extensions.write_text(f"subjectAltName={','.join(LOOPBACK_NAMES)}\n"
                          "basicConstraints=critical,CA:FALSE\n"
                          "keyUsage=critical,digitalSignature\n"
                          "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", str(DAYS), "-sha256",
             "-extfile", str(extensions))
    for leftover in (ca_key, csr, extensions, directory / "ca.srl"):
        leftover.unlink(missing_ok=True)
    return ServerCertificate(ca_cert, cert, key)
