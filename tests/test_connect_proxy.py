"""The real node's CONNECT proxy (cluster/node/connect_proxy.py), offline: a real server on a
temporary Unix socket, a real TCP echo server on 127.0.0.1 let in by an injected allow-list; a
target outside it is refused with 403 and never dialled; a malformed request gets 400."""
from __future__ import annotations

import asyncio
import ipaddress
import tempfile
from pathlib import Path
from typing import Awaitable, Callable

import pytest

from cluster.node import connect_proxy
from cluster.node.addresses import NODE_IP, POD_SUBNET, SERVICE_CIDR

LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def run_with_proxy(test: Callable[[Path, int, list[tuple[str, int]]], Awaitable[None]],
                   networks=LOCAL) -> list[tuple[str, int]]:
    """An echo server on 127.0.0.1 and the proxy on a Unix socket, both real; returns every
    (host, port) the proxy dialled."""
    dialled: list[tuple[str, int]] = []

    async def dial(host: str, port: int):
        dialled.append((host, port))
        return await asyncio.open_connection(host, port)

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "egress.sock"
            echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
            port = echo_server.sockets[0].getsockname()[1]
            proxy = await asyncio.start_unix_server(
                connect_proxy.handler(networks, dial, log=lambda _line: None), path=str(path))
            async with echo_server, proxy:
                await asyncio.wait_for(test(path, port, dialled), 10)

    asyncio.run(main())
    return dialled


async def request(path: Path, head: bytes) -> tuple[bytes, asyncio.StreamReader,
                                                     asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(head)
    await writer.drain()
    return await reader.readuntil(b"\r\n\r\n"), reader, writer


def test_connect_to_an_allowed_target_pipes_bytes_both_ways() -> None:
    async def test(path: Path, port: int, _dialled) -> None:
        # What the API server's egress dialer sends (k8s.io/apiserver egress_selector.go).
        status, reader, writer = await request(
            path, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert status == b"HTTP/1.1 200 Connection established\r\n\r\n"
        payload = bytes(range(256)) * 1024  # 256 KiB: more than one read on each side
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        assert await reader.read() == payload
        writer.close()

    assert len(run_with_proxy(test)) == 1


def test_a_target_outside_the_allow_list_gets_403_and_is_never_dialled() -> None:
    async def test(path: Path, port: int, _dialled) -> None:
        for target in (f"127.0.0.2:{port}", f"10.250.255.9:{port}", f"localhost:{port}",
                       f"[::1]:{port}"):
            status, reader, writer = await request(
                path, f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert status.startswith(b"HTTP/1.1 403 "), (target, status)
            assert await reader.read() == b""  # and the connection ends
            writer.close()

    assert run_with_proxy(test) == []


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n",
    b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n",
    b"CONNECT 127.0.0.1:80\r\n\r\n",
    b"\xff\xfe\r\n\r\n",
])
def test_a_malformed_request_gets_400(head: bytes) -> None:
    async def test(path: Path, _port: int, _dialled) -> None:
        status, _reader, writer = await request(path, head)
        assert status.startswith(b"HTTP/1.1 400 "), status
        writer.close()

    assert run_with_proxy(test) == []


def test_a_refused_dial_gets_502() -> None:
    async def test(path: Path, port: int, _dialled) -> None:
        status, _reader, writer = await request(
            path, f"CONNECT 127.0.0.1:{closed_port()} HTTP/1.1\r\n\r\n".encode())
        assert status.startswith(b"HTTP/1.1 502 "), status
        writer.close()

    assert len(run_with_proxy(test)) == 1


def closed_port() -> int:
    import socket

    with socket.socket() as sock:  # bound, never listening: a connection is refused
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_default_allow_list_is_the_nodes_networks_only() -> None:
    networks = connect_proxy.NODE_NETWORKS
    assert {str(n) for n in networks} == {f"{NODE_IP}/32", POD_SUBNET, SERVICE_CIDR}
    for inside in (NODE_IP, "10.244.0.17", "10.0.0.1"):
        assert connect_proxy.allowed(inside, networks), inside
    # The host's loopback (the API server, the simulated nodes' kubelets), other private
    # ranges, a name: never.
    for outside in ("127.0.0.1", "10.250.255.2", "10.244.1.5", "10.0.1.1", "192.168.1.1",
                    "8.8.8.8", "::1", "kubernetes.default"):
        assert not connect_proxy.allowed(outside, networks), outside
