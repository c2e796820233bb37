"""Generate README.md's reachability table (Security section) from the chart's NetworkPolicies.

    python -m generate.reachability_table           # rewrite the table between the markers
    python -m generate.reachability_table --check   # exit 1 when the committed table is stale

The release is the one tests/node measures: values/dev.yaml + values/local/real-node.yaml in
namespace real-dev, and the same with values/local/exposed.yaml. Sources are the probe parties
of harness/netpol_parties.py (the live test's) and Ray pods; destinations the Ray pod templates;
each cell is what the evaluator (harness/netpol.py) says, and the live test
(tests/node/test_network_policy_matrix.py) fails unless every measured connection agrees with it.
"""
from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from generate.generated_file import between_markers, check_flag, marker, write_or_check
from harness import helm, netpol
from harness.netpol_parties import Party, parties
from harness.render import RENDER_ENV, make_offline_copy, parse_manifests
from harness.tools import CHART_DIR, REPO, VALUES_DIR
from harness.values import merged_values

WHAT = "README.md reachability table"
README = REPO / "README.md"
START = ("<!-- reachability:start: "
         f"{marker('generate.reachability_table', 'the rendered NetworkPolicies')} -->")
END = "<!-- reachability:end -->"
# The table continues the NetworkPolicies bullet of the Security list, so it is indented with it.
INDENT = "  "

# tests/node's release (tests/node/conftest.py): the same name and namespace, so that the policies
# and selectors are the ones measured.
RELEASE, NAMESPACE = "ray-platform", "real-dev"
DEV = (VALUES_DIR / "dev.yaml", VALUES_DIR / "local" / "real-node.yaml")
EXPOSED = (*DEV, VALUES_DIR / "local" / "exposed.yaml")
# The operator runs outside the release on the real node; without its subchart the render needs
# no download (the offline copy drops the dependency, this keeps its values consistent).
SET_VALUES = ("kuberay-operator.enabled=false",)

# The ports Ray and KubeRay give fixed numbers; every other port Ray opens (raylets, object
# managers, workers) is chosen at random, so one sample port outside this list stands for them.
RAY_PORTS: dict[int, str] = {6379: "GCS", 8000: "Serve", 8080: "metrics", 8265: "dashboard and Jobs API",
                             10001: "Ray Client", 44217: "metrics", 44227: "metrics",
                             52365: "dashboard agent"}
OTHER_PORT = 20000

# How a party of netpol_parties reads in a row heading.
PARTY_TITLES = {"plain": "a pod", "client": "a client pod", "plain-other-ns": "a pod",
                "client-other-ns": "a client pod", "prometheus": "Prometheus",
                "ingress-controller": "the ingress controller", "operator": "the KubeRay operator"}
COMPONENT_TITLES = {"raycluster": "RayCluster", "stable-diffusion": "Stable Diffusion"}


@dataclass(frozen=True)
class Row:
    """A source: a heading and the pods standing for it. Pods of the destination's own cluster
    are left out for `other_clusters` rows and the only ones kept for `same_cluster` rows."""

    title: str
    pods: tuple[netpol.Endpoint, ...]
    other_clusters: bool = False
    same_cluster: bool = False

    def sources(self, destination: netpol.Endpoint) -> list[netpol.Endpoint]:
        cluster = destination.labels.get("ray.io/cluster")
        if self.other_clusters:
            return [p for p in self.pods if p.labels.get("ray.io/cluster") != cluster]
        if self.same_cluster:
            return [p for p in self.pods
                    if p.labels.get("ray.io/cluster") == cluster and p != destination]
        return list(self.pods)


@dataclass(frozen=True)
class Column:
    title: str
    pod: netpol.Endpoint


def open_ports(policies: Sequence[Mapping[str, Any]], source: netpol.Endpoint,
               destination: netpol.Endpoint) -> str:
    """The cell: the well-known ports the policies let through, "all" when the sample port is
    open too and nothing is closed, "none" when nothing is open."""
    opened = [port for port in RAY_PORTS if netpol.allowed(policies, source, destination, port)]
    others = netpol.allowed(policies, source, destination, OTHER_PORT)
    if others and len(opened) == len(RAY_PORTS):
        return "all"
    closed = [port for port in RAY_PORTS if port not in opened]
    if others:
        return "all but " + ", ".join(map(str, closed))
    return ", ".join(map(str, opened)) or "none"


def cell(policies: Sequence[Mapping[str, Any]], row: Row, column: Column) -> str:
    """One answer for every pod of the row; sources that disagree need rows of their own."""
    answers = {open_ports(policies, source, column.pod) for source in row.sources(column.pod)}
    if len(answers) > 1:
        raise ValueError(f"the sources of {row.title!r} disagree on {column.title}: "
                         f"{sorted(answers)}; give them a row each")
    return answers.pop() if answers else "-"


def grid(policies: Sequence[Mapping[str, Any]], rows: Sequence[Row],
         columns: Sequence[Column]) -> list[list[str]]:
    return [[cell(policies, row, column) for column in columns] for row in rows]


def party_title(party: Party) -> str:
    labels = ", ".join(f"`{key}={value}`" for key, value in sorted(party.labels.items()))
    where = ("the release namespace" if not party.namespace
             else "another namespace" if party.name.endswith("-other-ns")  # the test's own namespace
             else f"namespace `{party.namespace}`")
    return f"{PARTY_TITLES.get(party.name, party.name)} in {where}" + (f" ({labels})" if labels else "")


def columns(ray_pods: Iterable[netpol.Endpoint]) -> list[Column]:
    found = []
    for pod in ray_pods:
        component = pod.labels.get("app.kubernetes.io/component", "")
        kind = COMPONENT_TITLES.get(component, pod.labels.get("ray.io/cluster", pod.name))
        found.append(Column(f"{kind} {pod.labels['ray.io/node-type']}", pod))
    return found


def rows(party_list: Sequence[Party], ray_pods: Sequence[netpol.Endpoint]) -> list[Row]:
    return [*(Row(party_title(p), (p.endpoint(NAMESPACE),)) for p in party_list),
            Row("a Ray pod of the same cluster", tuple(ray_pods), same_cluster=True),
            Row("a Ray pod of another cluster of the release", tuple(ray_pods),
                other_clusters=True)]


def markdown(row_titles: Sequence[str], column_titles: Sequence[str],
             dev: list[list[str]], exposed: list[list[str]]) -> str:
    """The table, a cell that exposed.yaml changes showing both answers."""
    lines = ["| from \\ to | " + " | ".join(column_titles) + " |",
             "|---|" + "---|" * len(column_titles)]
    for title, dev_row, exposed_row in zip(row_titles, dev, exposed):
        cells = [a if a == b else f"{a}; **exposed: {b}**" for a, b in zip(dev_row, exposed_row)]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(chart: Path, values_files: Sequence[Path]) -> list[dict[str, Any]]:
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
    for path in values_files:
        args += ["--values", str(path)]
    for assignment in SET_VALUES:
        args += ["--set", assignment]
    proc = helm.run(*args, major=4, env={**os.environ, **RENDER_ENV})
    if proc.returncode != 0:
        raise SystemExit(f"helm template failed: {proc.stderr.strip()}")
    return parse_manifests(proc.stdout)


def matrix(objects: list[dict[str, Any]], values: dict[str, Any]
           ) -> tuple[list[str], list[str], list[list[str]]]:
    """(row titles, column titles, cells) of one release."""
    ray_pods = netpol.ray_pods(objects, NAMESPACE)
    row_list, column_list = rows(parties(values), ray_pods), columns(ray_pods)
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    return ([r.title for r in row_list], [c.title for c in column_list],
            grid(policies, row_list, column_list))


def table() -> str:
    with tempfile.TemporaryDirectory(prefix="ray-platform-reachability-") as workdir:
        chart = make_offline_copy(CHART_DIR, Path(workdir))
        dev = matrix(render(chart, DEV), merged_values(DEV))
        exposed = matrix(render(chart, EXPOSED), merged_values(EXPOSED))
    # exposed.yaml changes policies only, not Ray pods or parties: the same rows and columns.
    if dev[:2] != exposed[:2]:
        raise SystemExit(f"exposed.yaml changed the table's rows or columns: {dev[:2]} {exposed[:2]}")
    ports = ", ".join(f"{port} {name}" for port, name in RAY_PORTS.items())
    intro = ("Who reaches which Ray pod on which port, generated by `make generate` from the "
             "harness's evaluator for the dev release (`values/dev.yaml` + "
             "`values/local/real-node.yaml`; a cell marked **exposed** differs with "
             "`values/local/exposed.yaml` layered on it). "
             "`tests/node/test_network_policy_matrix.py` holds the evaluator to real TCP "
             "connections on the real node, for both overlays, on every port each Ray pod "
             f"listens on. Ports: {ports}; \"all\" = those and Ray's other ports (sampled at "
             f"{OTHER_PORT}).")
    text = "\n".join([*textwrap.wrap(intro, 100 - len(INDENT), break_on_hyphens=False), "",
                      markdown(dev[0], dev[1], dev[2], exposed[2])])
    return "\n".join(INDENT + line if line else "" for line in text.splitlines())


def updated(readme: str, generated: str) -> str:
    return between_markers(readme, START, END, generated, README, "reachability table",
                           end_indent=INDENT)


def main(argv: list[str] | None = None) -> int:
    return write_or_check(README, updated(README.read_text(), table()),
                          check_flag(__doc__.splitlines()[0], argv))


if __name__ == "__main__":
    sys.exit(main())
