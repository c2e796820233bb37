"""Helm as a new user has it: a Helm home of its own (config, cache, data in a fresh folder), so
no login, repository or cached chart of this machine's Helm takes part. Used by the release
tests and `make release-local` to consume what was published, with either helm major.

    user = FreshHelm(tmp / "home", major=3)
    user.run("registry", "login", host, "--username", name, "--password-stdin", "--ca-file", ca,
             stdin=password)
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import helm


@dataclass(frozen=True)
class FreshHelm:
    home: Path
    major: int

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HELM_")}
        env.update(HELM_CONFIG_HOME=str(self.home / "config"),
                   HELM_CACHE_HOME=str(self.home / "cache"),
                   HELM_DATA_HOME=str(self.home / "data"))
        return env

    def run(self, *args: str, stdin: str | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
        """`helm <args>` in this home; output captured, no exception on failure."""
        self.home.mkdir(parents=True, exist_ok=True)
        return helm.run(*args, major=self.major, env=self.env(), input=stdin, timeout=timeout)
