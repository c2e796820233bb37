"""The API server's way into the real node: an HTTP CONNECT proxy on a Unix socket, run inside
the node's network namespace, that the API server's egress selector (`cluster`, HTTPConnect over
UDS; cluster/local/controlplane.py writes it) dials for every connection into the cluster: the
kubelet (logs, exec, attach, port-forward) and the pod and Service proxy.

    in the node namespace:  unix:egress.sock --CONNECT 10.250.255.1:10250--> tcp:10.250.255.1:10250

It dials only the node's own networks (the node IP, the node's pod subnet, the Service range:
cluster/node/addresses.py) and answers 403 to any other target without dialling it: whatever the
API server asks, this never opens a connection to the host's addresses or beyond. A hostname is
refused too (nothing here resolves names).

    python -m cluster.node.connect_proxy --listen /path/egress.sock

The byte pipe after `200 Connection established` is the relay's (cluster/local/relay.py), as in
forward.py.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from pathlib import Path
from typing import Awaitable, Callable, Sequence

from cluster.local.relay import _handler
from cluster.node.addresses import NODE_IP, POD_SUBNET, SERVICE_CIDR

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Dial = Callable[[str, int], Awaitable[Streams]]

NODE_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr) for cidr in (f"{NODE_IP}/32", POD_SUBNET, SERVICE_CIDR))
# A CONNECT request is one line and a Host header (the API server's, egress_selector.go); more
# than this is not a request from it.
MAX_HEAD_BYTES = 8192
HEAD_TIMEOUT_S = 10.0
DIAL_TIMEOUT_S = 10.0


class BadRequest(ValueError):
    """Not a well-formed `CONNECT host:port HTTP/1.x` request."""


def parse_head(head: bytes) -> tuple[str, int]:
    """(host, port) of a CONNECT request head (request line and headers, CRLF CRLF ended)."""
    try:
        request_line = head.decode("ascii").split("\r\n", 1)[0]
    except UnicodeDecodeError as error:
        raise BadRequest("request is not ASCII") from error
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] != "CONNECT" or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"not a CONNECT request: {request_line[:100]!r}")
    host, colon, port = parts[1].rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequest(f"target is not host:port: {parts[1][:100]!r}")
    if host.startswith("[") and host.endswith("]"):  # an IPv6 literal, [::1]:80
        host = host[1:-1]
    return host, int(port)


def allowed(host: str, networks: Sequence[Network]) -> bool:
    """Only IP literals inside the node's networks; names are never resolved."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


async def _answer(writer: asyncio.StreamWriter, status: str) -> None:
    writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def _open(host: str, port: int) -> Streams:
    return await asyncio.wait_for(asyncio.open_connection(host, port), DIAL_TIMEOUT_S)


def handler(networks: Sequence[Network] = NODE_NETWORKS, dial: Dial = _open,
            log: Callable[[str], None] = print
            ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A connection handler: read the CONNECT head, refuse (400/403/502) or tunnel."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
            if len(head) > MAX_HEAD_BYTES:
                raise BadRequest(f"request head over {MAX_HEAD_BYTES} bytes")
            host, port = parse_head(head)
        except (BadRequest, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError) as error:
            log(f"400: {error}")
            await _answer(writer, "400 Bad Request")
            return
        if not allowed(host, networks):
            log(f"403: {host}:{port} is outside the node's networks")
            await _answer(writer, "403 Forbidden")
            return

        async def connect() -> Streams:
            try:
                upstream = await dial(host, port)
            except (OSError, asyncio.TimeoutError) as error:
                log(f"502: {host}:{port}: {error}")
                await _answer(writer, "502 Bad Gateway")
                raise OSError(str(error)) from error  # the relay's handler then stops here
            # Nothing after the status line and its blank line: the API server refuses a
            # tunnel whose first read already holds bytes beyond the response.
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            return upstream

        await _handler(connect)(reader, writer)

    return handle


async def serve(path: Path, networks: Sequence[Network] = NODE_NETWORKS) -> None:
    path.unlink(missing_ok=True)  # a socket a stopped proxy left would refuse the bind
    server = await asyncio.start_unix_server(handler(networks, log=_log), path=str(path))
    _log(f"connect proxy: {path} -> {', '.join(map(str, networks))}")
    async with server:
        await server.serve_forever()


def _log(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=Path, required=True, help="the Unix socket to serve")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.listen))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
