"""cluster.node.ray_status.live_nodes against `ray status` texts laid out as Ray 2.60's
autoscaler prints them (ray/autoscaler/_private/util.py, format_info_string): node counts per
type under Active and Idle, launches and pending nodes under Pending, failures after that."""
from __future__ import annotations

import pytest

from cluster.node.ray_status import live_nodes

HEADER = "======== Autoscaler status: 2026-12-06 03:20:00.000000 ========\nNode status\n" + "-" * 60


def status(active: str, idle: str, pending: str = " (no pending nodes)",
           failures: str = " (no failures)") -> str:
    return (f"{HEADER}\nActive:\n{active}\nIdle:\n{idle}\nPending:\n{pending}\n"
            f"Recent failures:\n{failures}\n\nResources\n{'-' * 60}\nTotal Usage:\n 0.0/3.0 CPU\n")


@pytest.mark.parametrize(("text", "expected"), [
    (status(" 1 headgroup\n 1 cpu", " (no idle nodes)"), 2),
    (status(" 1 headgroup", " 2 cpu"), 3),
    (status(" (no active nodes)", " 1 headgroup"), 1),
    # Launching and pending workers have not joined; failed ones are gone.
    (status(" 1 headgroup", " (no idle nodes)", " cpu, 2 launching\n 10.244.0.9: cpu, setting-up",
            " cpu: NodeTerminated (ip: 10.244.0.7)"), 1),
    # Without the autoscaler, every node is its own anonymous type.
    (status(" 1 node_4f2a9c\n 1 node_81be03", " (no idle nodes)"), 2),
])
def test_live_nodes_counts_active_and_idle_nodes_only(text: str, expected: int) -> None:
    assert live_nodes(text) == expected
