"""The values schema read as descriptions by values path: the one reader of the structure of
schemas/values.schema.yaml ($ref, allOf bases, maps keyed by a name of your choice) behind the
values reference table and the comments of values.yaml."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator


from harness.render import load_yaml
from generate.schema import load_source
from harness.tools import CHART_DIR

VALUES = CHART_DIR / "values.yaml"
MISSING = object()


@dataclass(frozen=True)
class Key:
    """What the schema says about one key of a values mapping."""

    node: dict[str, Any]  # the key's schema, $ref and allOf bases merged in
    description: str  # "" when the schema describes none
    named: bool  # a declared property (False: an entry of a map keyed by your own names)


class Schema:
    def __init__(self, source: dict[str, Any]) -> None:
        self.definitions = source.get("definitions", {})
        self.root = source

    @classmethod
    def load(cls) -> "Schema":
        return cls(load_source())

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """The node with $ref and allOf bases merged in (the node's own keys win)."""
        merged: dict[str, Any] = {}
        if "$ref" in node:
            merged.update(self.resolve(self.definitions[node["$ref"].split("/")[-1]]))
        for base in node.get("allOf", []):
            resolved = self.resolve(base)
            props = {**resolved.get("properties", {}), **merged.get("properties", {})}
            merged.update(resolved)
            merged["properties"] = props
        own = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
        if "properties" in own and "properties" in merged:
            base_props = merged["properties"]
            own["properties"] = {name: (sub if sub != {} else base_props.get(name, {}))
                                 for name, sub in own["properties"].items()}
        merged.update(own)
        return merged

    def description(self, node: dict[str, Any]) -> str:
        """The node's description on one line: its own, else its definition's."""
        text = node.get("description") or self.resolve(node).get("description") or ""
        return " ".join(str(text).split())

    def open_map(self, resolved: dict[str, Any]) -> dict[str, Any] | None:
        """The schema of the entries of a map keyed by names you choose (worker groups), if it is one."""
        entries = resolved.get("additionalProperties")
        if isinstance(entries, dict) and "propertyNames" in resolved and self.resolve(entries).get("properties"):
            return entries
        return None

    def key(self, parent: dict[str, Any], name: str) -> Key | None:
        """The schema of key `name` in a mapping whose (resolved) schema is parent."""
        properties = parent.get("properties") or {}
        if name in properties:
            return Key(self.resolve(properties[name]), self.description(properties[name]), True)
        entries = parent.get("additionalProperties")
        if isinstance(entries, dict):
            return Key(self.resolve(entries), "", False)
        return None

    def rows(self, node: dict[str, Any], path: str, default: Any) -> Iterator[tuple[str, str, Any, str]]:
        """(path, type, default, description) of every documented key below node."""
        resolved = self.resolve(node)
        description = self.description(node)
        properties = resolved.get("properties")
        open_map = self.open_map(resolved)
        if path and (not properties and not open_map or resolved.get("x-kubernetes-passthrough")):
            yield path, type_of(resolved), default, description
            return
        if path and description:
            yield path, "object", MISSING, description
        for name, sub in (properties or {}).items():
            sub_default = default.get(name, MISSING) if isinstance(default, dict) else MISSING
            yield from self.rows(sub, f"{path}.{name}" if path else name, sub_default)
        if open_map:
            yield from self.rows(open_map, f"{path}.<name>", MISSING)


def type_of(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind:
        return kind
    if "anyOf" in node:
        return "quantity" if "quantity" in str(node["anyOf"]) else "string"
    return "any"


def cell(value: Any) -> str:
    if value is MISSING:
        return ""
    text = json.dumps(value, separators=(", ", ": "))
    return f"`{text}`".replace("|", "\\|")


def values_table() -> str:
    """The markdown table of every key: type, default (from values.yaml) and description."""
    schema = Schema.load()
    defaults = load_yaml(VALUES.read_text())
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{path}` | {kind} | {cell(default)} | {description.replace('|', chr(92) + '|')} |"
              for path, kind, default, description in schema.rows(schema.root, "", defaults)]
    return "\n".join(lines) + "\n"
