"""Monitoring checks shared by the tests: promtool, PromQL queries of rules and dashboards, the
metric names they use, and which Ray pod templates a PodMonitor selects.

promtool is Prometheus' own rule checker; `make tools-promtool` installs it (Debian's
`prometheus` package). Metric names are taken from expressions with a small tokenizer (label
matchers, strings, ranges and grouping lists removed; identifiers followed by "(" are functions);
promtool itself checks that every expression parses.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable, Iterator

from harness.pods import PodTemplate, pod_templates
from harness.render import of_kind

PROMTOOL_MISSING = ("promtool is not on PATH: run `make tools-promtool` (installs Debian's prometheus "
                    "package with apt-get; needs root or passwordless sudo)")

# Operator-set pod labels (KubeRay v1.7.0 labelPod): they are not in the rendered templates.
RAY_NODE_TYPE, RAY_CLUSTER, RAY_GROUP, RAY_IS_NODE = "ray.io/node-type", "ray.io/cluster", "ray.io/group", "ray.io/is-ray-node"
# A RayService's cluster is named <rayservice>-<5 random characters> by the operator.
RAYSERVICE_CLUSTER_SUFFIX = "-k2x9q"

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
             "group_left", "group_right", "atan2", "inf", "nan", "start", "end"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSETS = re.compile(r"\boffset\s+-?[0-9a-z]+|@\s*[0-9.]+")
_NUMBERS = re.compile(r"(?<![\w:.])(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|\.[0-9]+([eE][-+]?[0-9]+)?)")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$", re.S)
_GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
_GRAFANA_VARIABLES = re.compile(r"\$\{[a-zA-Z_][a-zA-Z0-9_]*(:[a-z]+)?\}|\$[a-zA-Z_][a-zA-Z0-9_]*")


def promtool() -> str | None:
    return shutil.which("promtool")


def promtool_missing_outcome() -> tuple[str, str] | None:
    """None when promtool is on PATH; else ("fail" under CI, where it must run, or "skip", reason)."""
    if promtool() is not None:
        return None
    return ("fail" if os.environ.get("CI", "").lower() == "true" else "skip"), PROMTOOL_MISSING


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = promtool()
    if binary is None:
        raise FileNotFoundError(PROMTOOL_MISSING)
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, cwd=cwd)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (recorded names, with ':', included)."""
    text = _STRINGS.sub('""', expr)
    while _MATCHERS.search(text):
        text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _OFFSETS.sub(" ", text)
    previous = None
    while previous != text:
        previous, text = text, _GROUPING.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group(0)
        following = text[match.end():].lstrip()
        if name in _KEYWORDS or following.startswith("("):
            continue
        names.add(name)
    return names


def grafana_to_promql(expr: str) -> str:
    """A Grafana query as plain PromQL: interval macros become 5m, variables match anything."""
    return _GRAFANA_VARIABLES.sub(".*", _GRAFANA_INTERVALS.sub("5m", expr))


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows and the panels nested in collapsed rows included."""
    return list(_panels(dashboard.get("panels") or []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL as Grafana sends it) of every panel target and every query variable."""
    found = []
    for panel in all_panels(dashboard):
        for target in panel.get("targets") or []:
            found.append((f"panel {panel['id']} {panel.get('title')!r} {target.get('refId')}", target["expr"]))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(query or "")
        found.append((f"variable {variable['name']}", match.group("selector") if match else query))
    return found


def rule_groups(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [group for rule in of_kind(objects, "PrometheusRule") for group in rule["spec"]["groups"]]


def rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in rule_groups(objects) for rule in group["rules"]]


def alerts(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for rule in rules(objects) if "alert" in rule]


def rule_queries(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(rule.get("alert") or rule.get("record"), rule["expr"]) for rule in rules(objects)]


def queries_as_rules_file(queries: list[tuple[str, str]], group: str) -> dict[str, Any]:
    """Queries as recording rules, so `promtool check rules` parses each one."""
    return {"groups": [{"name": group, "rules": [
        {"record": f"check:query_{index}", "expr": grafana_to_promql(expr), "labels": {"where": where[:60]}}
        for index, (where, expr) in enumerate(queries)]}]}


# --------------------------------------------------------------------------- PodMonitors


def _template_node(pod: PodTemplate) -> tuple[str, str]:
    """(node type, group name) of a Ray pod template, from where it sits in its owner."""
    match = re.search(r"workerGroupSpecs\[([^\]]+)\]", pod.path)
    return ("worker", match.group(1)) if match else ("head", "headgroup")


def ray_pods(objects: list[dict[str, Any]]) -> list[tuple[PodTemplate, dict[str, str], str]]:
    """(template, labels the pod will carry, namespace) of every Ray pod the objects create:
    the template's labels plus the ones the KubeRay operator sets."""
    found = []
    for obj in objects:
        if obj.get("kind") not in ("RayCluster", "RayService", "RayJob", "RayCronJob"):
            continue
        name = obj["metadata"]["name"]
        cluster = name if obj["kind"] == "RayCluster" else name + RAYSERVICE_CLUSTER_SUFFIX
        for pod in pod_templates(obj):
            if not pod.ray_node:
                continue
            node_type, group = _template_node(pod)
            labels = dict((pod.template.get("metadata") or {}).get("labels") or {})
            labels.update({RAY_NODE_TYPE: node_type, RAY_CLUSTER: cluster, RAY_GROUP: group, RAY_IS_NODE: "yes"})
            found.append((pod, labels, obj["metadata"].get("namespace", "")))
    return found


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions) against a label set."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def selected_pods(podmonitor: dict[str, Any], objects: list[dict[str, Any]]) -> list[tuple[PodTemplate, dict[str, str]]]:
    spec = podmonitor["spec"]
    namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [podmonitor["metadata"].get("namespace")]
    return [(pod, labels) for pod, labels, namespace in ray_pods(objects)
            if namespace in namespaces and selector_matches(spec["selector"], labels)]


def container_ports(pod: PodTemplate) -> set[str]:
    """Port names of the Ray container (the first one, as KubeRay requires)."""
    containers = pod.spec.get("containers") or []
    return {port.get("name") for port in (containers[0].get("ports") or [])} if containers else set()
