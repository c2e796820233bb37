"""A classic Helm chart repository (a folder with index.yaml, the .tgz archives and their .prov
files, artifacthub-repo.yml) served read-only over HTTPS on a free loopback port, by Python's
http.server in a background thread.

    with ChartRepoServer(folder, certificate) as server:
        server.url      # https://127.0.0.1:<port>
"""
from __future__ import annotations

import functools
import http.server
import ssl
import threading
from pathlib import Path

from release.tls import ServerCertificate


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files only; no directory listings, no request log on stderr."""

    def list_directory(self, path: str):  # type: ignore[override]
        self.send_error(404, "no listing")
        return None

    def log_message(self, format: str, *args: object) -> None:
        pass


class ChartRepoServer:
    def __init__(self, folder: Path, certificate: ServerCertificate, port: int = 0) -> None:
        # Bound here, served from __enter__: the index's URLs may need the port first.
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certificate.cert_file), str(certificate.key_file))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="chart-repo-server")
        self.folder = folder
        self.certificate = certificate

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}"

    def __enter__(self) -> "ChartRepoServer":
        if not any(self.folder.rglob("index.yaml")):
            self._server.server_close()
            raise SystemExit(f"{self.folder} holds no index.yaml: no chart repository to serve "
                             "(make release writes one)")
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
