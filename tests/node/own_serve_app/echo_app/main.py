"""`echo_app.main:app`: POST /echo answers its body after ECHO_GREETING (the application's
runtime_env env_vars), from each of the Echo deployment's replicas."""
from __future__ import annotations

import os

from ray import serve
from starlette.requests import Request


@serve.deployment
class Echo:
    def __init__(self) -> None:
        self.greeting = os.environ.get("ECHO_GREETING", "")

    async def __call__(self, request: Request) -> str:
        return self.greeting + (await request.body()).decode()


app = Echo.bind()
