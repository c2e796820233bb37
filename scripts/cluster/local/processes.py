"""Host processes that outlive the command that started them (`make up` returns, they keep
running until `make down`): started in a session of their own, found again by a pid file."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence


def start(argv: Sequence[str], pid_file: Path, log_file: Path,
          env: Mapping[str, str] | None = None) -> int:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=dict(env) if env else None,
                                   start_new_session=True)
    pid_file.write_text(f"{process.pid}\n")
    return process.pid


def pid_of(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def running(pid_file: Path) -> bool:
    return pid_of(pid_file) is not None


def stop(pid_file: Path, grace_seconds: float = 10.0) -> bool:
    """Stop the process group a pid file names (TERM, then KILL); True if one was running."""
    pid = pid_of(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            try:
                finished, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                finished = 0
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return True
            if finished:
                return True
            time.sleep(0.1)
    return True
