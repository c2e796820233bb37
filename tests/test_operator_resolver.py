"""The host-process KubeRay operator of tests/cluster looks names up on loopback only: its
lookups of *.svc.cluster.local (names only the real node's cluster DNS knows) must not reach the
machine's resolver, an address outside the project's namespaces."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from cluster.local.operator import LOOPBACK_RESOLV_CONF, with_loopback_resolver

LOOKUP = """
import socket, sys, time
started = time.monotonic()
try:
    socket.getaddrinfo("ray-head-svc.ray.svc.cluster.local", 8265)
    print("resolved")
except socket.gaierror as error:
    print(f"failed {time.monotonic() - started:.2f} {error}")
"""


def test_the_wrapped_process_sees_the_loopback_resolver_only(tmp_path: Path) -> None:
    argv = with_loopback_resolver(["cat", "/etc/resolv.conf"], tmp_path / "resolv.conf")
    seen = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout == LOOPBACK_RESOLV_CONF
    # The machine's own file is untouched: the bind mount lives in the child's namespace.
    assert Path("/etc/resolv.conf").read_text() != LOOPBACK_RESOLV_CONF


def test_a_cluster_name_fails_at_once_instead_of_asking_the_machines_resolver(
        tmp_path: Path) -> None:
    argv = with_loopback_resolver([sys.executable, "-c", LOOKUP], tmp_path / "resolv.conf")
    started = time.monotonic()
    answer = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("failed "), answer.stdout
    # Nothing listens on 127.0.0.1:53: refused, not a timeout against another server.
    assert time.monotonic() - started < 10, answer.stdout


def test_the_wrapper_keeps_the_programs_pid(tmp_path: Path) -> None:
    """unshare and sh exec: the pid file names the operator itself, whose group stop() kills."""
    argv = with_loopback_resolver(["sh", "-c", "echo $$"], tmp_path / "resolv.conf")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=30)
    assert int(out.strip()) == process.pid
