"""Every helm command the project runs goes through here: the pinned binary of a helm major, and
one way to run it (output captured as text, no exception on a non-zero exit).

`runner` replaces subprocess.run, so callers that record their commands (the `make up` tests)
see helm's argv exactly as it would run.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable

from harness.tools import TOOLS_BIN, ToolMissing

DEFAULT_MAJOR = 4

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def binary(major: int = DEFAULT_MAJOR) -> Path:
    """The pinned helm of a major in .tools/bin; ToolMissing says how to install it."""
    path = TOOLS_BIN / f"helm{major}"
    if not path.is_file():
        raise ToolMissing(f"helm {major} is not installed at {path}: run `make setup`")
    return path


def command(*args: str, major: int = DEFAULT_MAJOR) -> list[str]:
    return [str(binary(major)), *args]


def run(*args: str, major: int = DEFAULT_MAJOR, runner: Runner = subprocess.run,
        **options: Any) -> "subprocess.CompletedProcess[str]":
    """`helm <args>`; captures stdout and stderr as text unless options say otherwise."""
    options.setdefault("capture_output", True)
    options.setdefault("text", True)
    options.setdefault("check", False)
    return runner(command(*args, major=major), **options)
