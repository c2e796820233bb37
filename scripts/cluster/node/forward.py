"""Byte forwards between TCP and Unix sockets, so that the node's network namespace and the
host meet only at a socket file both see, never at an address:

    in the node namespace:  tcp:10.250.255.1:P, tcp:127.0.0.1:P  ->  unix:api.sock
    on the host:            unix:api.sock  ->  tcp:127.0.0.1:P   (the API server)

and the reverse for a port of the cluster opened to this machine (`make up`'s Serve and
dashboard URLs): host tcp:127.0.0.1:Q -> unix:x.sock -> in the namespace tcp:<Service IP>:8000.

    python -m cluster.node.forward --listen tcp:127.0.0.1:6443 --to unix:/path/api.sock

Reuses the relay's byte pipe (cluster/local/relay.py). A host-side TCP listener must be on
loopback: nothing here opens a port on another interface of the machine.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from pathlib import Path

from cluster.local.relay import _handler

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def parse(endpoint: str) -> tuple[str, str, int]:
    kind, _, rest = endpoint.partition(":")
    if kind == "unix" and rest:
        return kind, rest, 0
    host, _, port = rest.rpartition(":")
    if kind != "tcp" or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{endpoint!r}: expected tcp:HOST:PORT or unix:PATH")
    return kind, host, int(port)


def connector(target: tuple[str, str, int]):
    kind, address, port = target
    if kind == "unix":
        return lambda: asyncio.open_unix_connection(address)
    return lambda: asyncio.open_connection(address, port)


async def serve(listens: list[tuple[str, str, int]], target: tuple[str, str, int]) -> None:
    handle = _handler(connector(target))
    servers = []
    for kind, address, port in listens:
        if kind == "unix":
            Path(address).unlink(missing_ok=True)
            servers.append(await asyncio.start_unix_server(handle, path=address))
        else:
            servers.append(await asyncio.start_server(handle, host=address, port=port))
    print(f"forward: {listens} -> {target}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=parse, action="append", required=True)
    parser.add_argument("--to", type=parse, required=True)
    parser.add_argument("--host-side", action="store_true",
                        help="runs on the host: TCP listeners must be on 127.0.0.0/8")
    args = parser.parse_args(argv)
    if args.host_side:
        for kind, address, _ in args.listen:
            if kind == "tcp" and ipaddress.ip_address(address) not in LOOPBACK:
                parser.error(f"{address} is not in 127.0.0.0/8: host-side forwards serve loopback only")
    try:
        asyncio.run(serve(args.listen, args.to))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
