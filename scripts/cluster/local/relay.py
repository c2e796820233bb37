"""The byte pipe of the real node's forwards and CONNECT proxy (cluster/node/forward.py and
connect_proxy.py import `_handler`).

What is left of the relays of the host-process Ray head, which is gone: forward.py and the
proxy still read their pipe from here. Hand-written on asyncio: socat would do it but is not on
a fresh machine.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


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
    """A connection handler that opens connect() and pipes both directions until each ends."""
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
