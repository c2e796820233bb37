"""Custom resources validated strictly against the openAPIV3Schema of their CRD.

Strict means what server-side apply does: a property the schema does not declare is an error,
unless the schema node says x-kubernetes-preserve-unknown-fields. CRDs come from a folder (CI:
../shared/crds), loaded once per folder.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness.render import SafeLoader


def strict_schema(node: Any) -> Any:
    """Translate a CRD structural schema to JSON Schema that rejects undeclared fields."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict_schema(value) for key, value in node.items()
           if key not in ("properties", "additionalProperties", "items")}
    for key in ("properties",):
        if key in node:
            out[key] = {name: strict_schema(sub) for name, sub in node[key].items()}
    for key in ("additionalProperties", "items"):
        if key in node:
            out[key] = strict_schema(node[key])
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if node.get("type") == "object" and not preserve and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


@dataclass
class CrdRegistry:
    """Validators for every (apiVersion, kind) defined by the CRDs under a folder."""

    directory: Path
    _validators: dict[tuple[str, str], jsonschema.Draft7Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.directory.is_dir():
            raise FileNotFoundError(
                f"CRD folder {self.directory} not found: set RAY_PLATFORM_CRD_DIR (or --crd-dir) "
                "to a folder of CRD YAML files, e.g. ../shared/crds"
            )
        for path in sorted(self.directory.rglob("*.yaml")):
            # The C loader: the KubeRay CRDs are megabytes of YAML (seconds with the pure-Python one).
            for doc in yaml.load_all(path.read_text(), Loader=SafeLoader):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    self._add(doc)
        # Kinds without a CRD in the folder that the harness has a hand-written schema for
        # (Gateway API HTTPRoute, see harness.gatewayapi); a real CRD in the folder wins.
        from harness.gatewayapi import SCHEMAS

        for key, schema in SCHEMAS.items():
            self._validators.setdefault(key, jsonschema.Draft7Validator(schema))

    def _add(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            # The API server validates metadata as ObjectMeta, not by the CRD's loose `type: object`.
            schema.setdefault("properties", {})["metadata"] = {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            self._validators[key] = jsonschema.Draft7Validator(strict_schema(schema))

    @property
    def kinds(self) -> list[tuple[str, str]]:
        return sorted(self._validators)

    def knows(self, obj: dict[str, Any]) -> bool:
        return (obj.get("apiVersion"), obj.get("kind")) in self._validators

    def problems(self, obj: dict[str, Any]) -> list[str]:
        key = (obj.get("apiVersion"), obj.get("kind"))
        check = self._validators.get(key)  # type: ignore[arg-type]
        if check is None:
            return [f"no CRD for {key[1]} {key[0]} in {self.directory}"]
        return [
            f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in sorted(check.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]


@functools.lru_cache(maxsize=None)
def registry(directory: Path) -> CrdRegistry:
    """One registry per folder and process: loading the KubeRay CRDs takes a second or two."""
    return CrdRegistry(directory)
