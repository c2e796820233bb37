"""README.md's reachability table (generate/reachability_table.py): the committed table is what
the generator writes from the chart's NetworkPolicies, and its builder on a tiny policy set."""
from __future__ import annotations

from typing import Any

import pytest

from generate import reachability_table as table
from harness.netpol import Endpoint
from harness.netpol_parties import Party

NS = "apps"


def pod(name: str, cluster: str, node_type: str) -> Endpoint:
    return Endpoint(name, NS, {"ray.io/cluster": cluster, "ray.io/node-type": node_type})


HEAD, WORKER, OTHER_HEAD = pod("head", "a", "head"), pod("worker", "a", "worker"), pod("b-head", "b", "head")
COLUMNS = [table.Column("a head", HEAD), table.Column("a worker", WORKER)]


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def of_cluster(cluster: str) -> dict[str, Any]:
    return {"matchLabels": {"ray.io/cluster": cluster}}


# Ray pods denied by default; cluster a's pods reach each other; clients reach a's head on the
# dashboard and Ray Client ports only.
POLICIES = [
    policy("deny", {"podSelector": of_cluster("a"), "policyTypes": ["Ingress"]}),
    policy("within", {"podSelector": of_cluster("a"),
                      "ingress": [{"from": [{"podSelector": of_cluster("a")}]}]}),
    policy("clients", {"podSelector": {"matchLabels": {"ray.io/cluster": "a", "ray.io/node-type": "head"}},
                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"client": "yes"}}}],
                                    "ports": [{"port": 8265}, {"port": 10001}]}]}),
]
CLIENT = Party("client", "", {"client": "yes"})
ROWS = [table.Row("plain", (Party("plain", "").endpoint(NS),)),
        table.Row("client", (CLIENT.endpoint(NS),)),
        table.Row("same", (HEAD, WORKER, OTHER_HEAD), same_cluster=True),
        table.Row("other", (HEAD, WORKER, OTHER_HEAD), other_clusters=True)]


def test_the_readme_table_is_generated_from_the_policies() -> None:
    assert table.main(["--check"]) == 0, "run `make generate`"


def test_a_hand_edited_table_is_stale(tmp_path, monkeypatch) -> None:
    edited = table.README.read_text().replace("| 8080, 44217, 44227 |", "| 8080 |", 1)
    assert edited != table.README.read_text()
    monkeypatch.setattr(table, "README", tmp_path / "README.md")
    table.README.write_text(edited)
    assert table.main(["--check"]) == 1


def test_cells_name_the_open_ports_all_or_none() -> None:
    assert table.grid(POLICIES, ROWS, COLUMNS) == [
        ["none", "none"],
        ["8265, 10001", "none"],
        ["all", "all"],
        ["none", "none"],
    ]


def test_an_open_sample_port_with_a_closed_well_known_one_says_which_is_closed() -> None:
    all_but_gcs = policy("all-but-gcs", {"podSelector": {}, "ingress": [{"ports": [
        {"port": 1, "endPort": 6378}, {"port": 6380, "endPort": 65535}]}]})
    assert table.open_ports([all_but_gcs], CLIENT.endpoint(NS), HEAD) == "all but 6379"


def test_sources_of_one_row_that_disagree_are_refused() -> None:
    mixed = table.Row("plain and client", (Party("plain", "").endpoint(NS), CLIENT.endpoint(NS)))
    with pytest.raises(ValueError, match="disagree on a head"):
        table.grid(POLICIES, [mixed], COLUMNS)


def test_cells_the_exposed_overlay_changes_show_both_answers() -> None:
    text = table.markdown(["client"], ["a head", "a worker"], [["none", "8000"]], [["8265", "8000"]])
    assert text.splitlines()[-1] == "| client | none; **exposed: 8265** | 8000 |"


def test_the_table_shows_the_parties_of_the_live_test() -> None:
    committed = table.README.read_text().split(table.START, 1)[1].split(table.END, 1)[0]
    for title in ("a pod in the release namespace", "Prometheus in namespace `monitoring`",
                  "a Ray pod of another cluster of the release", "| RayCluster head |"):
        assert title in committed
