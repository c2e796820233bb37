"""What the GCS fault tolerance scenarios do inside the pods, through `kubectl exec`: call the
detached actor (app/keeper.py) from the head's Ray container, kill the head's gcs_server, and
list the keys the GCS keeps in Redis."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from chaos import redis

KEEPER = Path(__file__).with_name("app") / "keeper.py"


class Runs(Protocol):
    """cluster.local.kubectl.Kubectl's run()."""

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 120) -> Any: ...


def ray_container(pod: dict[str, Any]) -> str:
    """The Ray container of a Ray pod: KubeRay's first container (the autoscaler comes after)."""
    return pod["spec"]["containers"][0]["name"]


def in_pod(kubectl: Runs, pod: dict[str, Any], container: str, *argv: str,
           stdin: str | None = None, timeout: float = 180) -> str:
    """argv's stdout in the pod's container; an AssertionError with its output when it fails."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    result = kubectl.run("exec", *(["-i"] if stdin is not None else []), name, "-n", namespace,
                         "-c", container, "--", *argv, stdin=stdin, check=False, timeout=timeout)
    assert result.returncode == 0, (f"{' '.join(argv[:3])} in {name}/{container}: exit "
                                    f"{result.returncode}\n{result.stdout[-2000:]}"
                                    f"{result.stderr[-2000:]}")
    return result.stdout


def keeper(kubectl: Runs, head: dict[str, Any], action: str) -> dict[str, Any]:
    """`create` the detached actor (or call the existing one: `add`) from the head: its total,
    pid and node after adding 1."""
    output = in_pod(kubectl, head, ray_container(head), "python", "-", action,
                    stdin=KEEPER.read_text())
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, f"keeper {action}: no answer in {output[-2000:]!r}"
    return json.loads(lines[-1])


def kill_gcs_server(kubectl: Runs, head: dict[str, Any]) -> None:
    """SIGKILL to the head's gcs_server, as a crash would end it (no clean shutdown)."""
    in_pod(kubectl, head, ray_container(head), "pkill", "-9", "-x", "gcs_server")


def redis_keys(kubectl: Runs, pod: dict[str, Any]) -> list[str]:
    """Every key in the Redis pod's database, listed with redis-cli in its container. The
    password reaches redis-cli as REDISCLI_AUTH from the container's own environment: a shell in
    the container expands it, so it is on no command line here."""
    output = in_pod(kubectl, pod, "redis", "sh", "-c",
                    'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli -p '
                    f'{redis.PORT} --scan', timeout=60)
    return [line for line in output.splitlines() if line]
