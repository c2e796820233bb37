"""Byte relays between a Ray head's private network namespace and the host's loopback.

Ray 2.60 binds several of its servers (GCS, raylet, object manager, metrics) on every interface
of the machine, whatever --node-ip-address says. So the real Ray head of the local cluster runs
in a network namespace of its own that holds only a loopback interface (ray_head.py): there,
"every interface" is loopback, and nothing Ray starts can be reached from, or reach, any other
network. Only the ports a pod would offer to the cluster (dashboard, Serve) come out, through a
pair of relays that meet at Unix sockets in a folder both namespaces see:

    inside  (in the namespace): <dir>/<port>.sock  ->  <pod IP>:<port> (Ray)
    outside (on the host):      <pod IP>:<port>    ->  <dir>/<port>.sock

The pod IP is the loopback address kwok gave the head pod, so the operator, the tests and a
browser on this machine reach the real head where the cluster says the pod is.

    python -m cluster.local.relay inside  --dir DIR --address IP --port 8265 --port 8000
    python -m cluster.local.relay outside --dir DIR --address IP --port 8265 --port 8000

Hand-written on asyncio: socat would do it but is not on a fresh machine, and the relay is a few
lines.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from pathlib import Path
from typing import Awaitable, Callable

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def socket_path(folder: Path, port: int) -> Path:
    return folder / f"{port}.sock"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other direction may still be answering
    except (ConnectionError, OSError):
        writer.close()


def _handler(connect: Connect) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                           Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await connect()
        except OSError:
            writer.close()  # nothing listens on the other side (yet): the client sees a reset
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer),
                             return_exceptions=True)
        for end in (writer, upstream_writer):
            end.close()

    return handle


async def run(side: str, folder: Path, address: str, ports: list[int]) -> None:
    if ipaddress.ip_address(address) not in LOOPBACK:
        raise SystemExit(f"{address} is not in 127.0.0.0/8: the relay only serves loopback")
    servers = []
    for port in ports:
        path = socket_path(folder, port)
        if side == "inside":
            path.unlink(missing_ok=True)
            servers.append(await asyncio.start_unix_server(
                _handler(lambda port=port: asyncio.open_connection(address, port)), path=str(path)))
        else:
            servers.append(await asyncio.start_server(
                _handler(lambda path=path: asyncio.open_unix_connection(str(path))),
                host=address, port=port))
    print(f"relay {side}: {address} ports {', '.join(map(str, ports))} via {folder}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=("inside", "outside"))
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, action="append", required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.side, args.dir, args.address, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
