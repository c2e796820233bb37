"""Run inside a container: list this pod's listening TCP ports, or try TCP connections.

Standalone on purpose (standard library only): the reachability tests run this file's text with
`python3 -c` in probe pods and Ray containers on the real node, through the CRI.

    python3 probe_connect.py listening                   # prints [port, ...] (not loopback-only)
    python3 probe_connect.py connect '[["10.244.0.5", 8265], ...]'
                                                         # prints [["10.244.0.5", 8265, "open"], ...]

A connection is "open" (the handshake completed), "refused" (a reset or an ICMP reject: nothing
listens, or a firewall rejects) or "timeout" (dropped).
"""
from __future__ import annotations

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

TIMEOUT_S = 2.0
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1, as /proc shows


def listening() -> list[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and address not in LOOPBACK:  # 0A: LISTEN
                ports.add(int(port, 16))
    return sorted(ports)


def connect(target: list) -> list:
    address, port = target
    try:
        with socket.create_connection((address, port), timeout=TIMEOUT_S):
            return [address, port, "open"]
    except ConnectionRefusedError:
        return [address, port, "refused"]
    except (socket.timeout, TimeoutError):
        return [address, port, "timeout"]
    except OSError as e:  # unreachable host or network: a reject by another ICMP code
        return [address, port, f"refused ({e.strerror})"]


def main() -> None:
    if sys.argv[1] == "listening":
        print(json.dumps(listening()))
    else:
        with ThreadPoolExecutor(32) as pool:
            print(json.dumps(list(pool.map(connect, json.loads(sys.argv[2])))))


if __name__ == "__main__":
    main()
