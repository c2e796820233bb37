"""Client certificates for the node's components, signed by the local cluster's CA (the one
kwokctl generated), and kubeconfigs that reach the API server through the in-namespace forward
at 127.0.0.1 (a name the API server's certificate holds)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from cluster.node.layout import NodeLayout


def client_certificate(layout: NodeLayout, name: str, user: str, group: str) -> tuple[Path, Path]:
    """A key and a clientAuth certificate for user (CN) in group (O), made once."""
    folder = layout.dir / "pki"
    folder.mkdir(parents=True, exist_ok=True)
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    if cert.is_file() and key.is_file():
        return cert, key
    extensions = folder / f"{name}.ext"
    extensions.write_text("extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    for argv in (
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(csr), "-subj", f"/O={group}/CN={user}"],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(layout.pki / "ca.crt"),
         "-CAkey", str(layout.pki / "ca.key"), "-CAcreateserial", "-days", "365",
         "-extfile", str(extensions), "-out", str(cert)],
    ):
        result = subprocess.run(argv, text=True, capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"openssl for {name}: {result.stderr.strip()}")
    key.chmod(0o600)
    return cert, key


def api_port(layout: NodeLayout) -> int:
    """The API server's port on the host, read from the admin kubeconfig kwokctl wrote."""
    config = yaml.safe_load(layout.cluster.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    return int(server.rsplit(":", 1)[1])


def kubeconfig(layout: NodeLayout, name: str, user: str, group: str) -> Path:
    """A kubeconfig for a component in the node namespace, authenticated as user/group."""
    cert, key = client_certificate(layout, name, user, group)
    path = layout.dir / f"{name}.kubeconfig"
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "node",
        # Quoted names: a user called `n` or `y` would otherwise parse as a boolean.
        "clusters": [{"name": "local", "cluster": {
            "server": f"https://127.0.0.1:{api_port(layout)}",
            "certificate-authority": str(layout.pki / "ca.crt")}}],
        "users": [{"name": name, "user": {"client-certificate": str(cert),
                                          "client-key": str(key)}}],
        "contexts": [{"name": "node", "context": {"cluster": "local", "user": name}}],
    }
    path.write_text(yaml.safe_dump(config, default_style=None))
    path.chmod(0o600)
    return path
