"""`chaos_app:app`, the Serve application the chaos scenarios send traffic to: GET /answer returns
at once which replica answered (its pod) and the deployment's user_config `version`, so a test
can see an in-place reconfigure reach every replica and the replicas move after a fault. No
model, no dependencies beyond Ray's: the `ray` image is enough and a request takes milliseconds.
It reaches the Ray pods as a ConfigMap on PYTHONPATH (scripts/chaos/release.py)."""
from __future__ import annotations

import os
import socket
from typing import Any

from ray import serve


@serve.deployment
class Answer:
    def __init__(self) -> None:
        self.version = ""

    def reconfigure(self, config: dict[str, Any]) -> None:
        # Serve calls this on every live replica when only user_config changed: no restart.
        self.version = str(config.get("version", ""))

    async def __call__(self, _request) -> dict[str, str]:
        return {"version": self.version, "pod": os.environ.get("HOSTNAME", socket.gethostname()),
                "pid": str(os.getpid())}


app = Answer.bind()
