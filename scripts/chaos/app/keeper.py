"""A named detached actor the GCS fault tolerance scenarios create before the faults and call
after them: `python - create|add` inside the head's Ray container (its stdin is this file, sent by
`kubectl exec -i`), which prints one JSON line: the actor's running total after adding 1, its pid
and its Ray node.

`create` places it on a worker (not the head: the faults take the head's processes down, and a
detached actor on the worker outlives them only if its raylet reconnects to the recovered GCS)
with no restarts, so that a lost actor shows up as an error and a restarted one could not carry
its total. `add` finds it by name through the GCS, which after a fault means the GCS recovered it
from Redis."""
from __future__ import annotations

import json
import os
import sys

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

NAME = "keeper"
NAMESPACE = "chaos"
TIMEOUT = 60


@ray.remote(num_cpus=0)
class Keeper:
    def __init__(self) -> None:
        self.total = 0

    def add(self, amount: int) -> dict[str, object]:
        self.total += amount
        return {"total": self.total, "pid": os.getpid(),
                "node": ray.get_runtime_context().get_node_id()}


def a_worker() -> str:
    """The node ID of a live Ray node that is not the head."""
    for node in ray.nodes():
        if node["Alive"] and "node:__internal_head__" not in node["Resources"]:
            return node["NodeID"]
    raise SystemExit("no live worker node to place the actor on")


def main(action: str) -> None:
    # The head's container has the cluster's token (RAY_AUTH_TOKEN) in its environment.
    ray.init(address="auto", namespace=NAMESPACE, logging_level="ERROR", log_to_driver=False)
    if action == "create":
        keeper = Keeper.options(name=NAME, lifetime="detached", max_restarts=0,
                                scheduling_strategy=NodeAffinitySchedulingStrategy(
                                    a_worker(), soft=False)).remote()
    else:
        keeper = ray.get_actor(NAME)
    print(json.dumps(ray.get(keeper.add.remote(1), timeout=TIMEOUT)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
