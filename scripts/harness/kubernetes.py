"""Built-in Kubernetes kinds, validated strictly with kubernetes-validate's schemas per minor.

kubernetes_validate.validate() re-reads its multi-megabyte definitions file on every call; the
harness validates hundreds of objects per run, so it builds each validator once from the same
schema files (kubernetes_validate's own data, through its own loader) and reuses it. A kind's
schema is mostly the same in several minors: minors whose schema for a kind is identical (the
kind's file and every definition it reaches) share one validator, and an object is validated
once per distinct schema (the results are kept).
"""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import Any

import jsonschema
import referencing
from kubernetes_validate import utils as kv

# Kinds the chart renders that are custom resources: validated by harness.crds instead.
CUSTOM_GROUPS = ("ray.io", "monitoring.coreos.com", "gateway.networking.k8s.io")


class UnknownKind(LookupError):
    """kubernetes-validate has no schema for the kind (a custom resource or a typo'd kind)."""


def is_custom_resource(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).split("/")[0] in CUSTOM_GROUPS


def supported_minors() -> list[str]:
    return [kv.major_minor(version) for version in kv.all_versions()]


@lru_cache(maxsize=None)
def _definitions(schema_dir: str, minor: str) -> dict[str, Any]:
    return kv.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", minor)


@lru_cache(maxsize=None)
def _registry(schema_dir: str, minor: str) -> referencing.Registry:
    return referencing.Resource.from_contents(_definitions(schema_dir, minor)) @ referencing.Registry()


REF = re.compile(r'"\$ref": "[^"#]*#/\$defs/([^"]+)"')


def schema_digest(schema: dict[str, Any], definitions: dict[str, Any]) -> str:
    """sha256 of a kind's schema and of every definition it reaches through $ref."""
    reached: dict[str, Any] = {}
    todo = REF.findall(json.dumps(schema))
    while todo:
        name = todo.pop()
        if name not in reached:
            reached[name] = definitions.get(name)
            todo += REF.findall(json.dumps(reached[name]))
    return hashlib.sha256(json.dumps([schema, reached], sort_keys=True).encode()).hexdigest()


_VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}


@lru_cache(maxsize=None)
def validator(minor: str, api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    """A strict validator for (Kubernetes minor, apiVersion, kind), built once (and shared with
    the minors whose schema of the kind is the same)."""
    if minor not in supported_minors():
        raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {minor}")
    schema_dir = f"v{minor}.0-local-strict"
    # Same naming as kubernetes_validate.validate: "rbac.authorization.k8s.io/v1" -> "rbac-v1".
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", minor
        )
    except FileNotFoundError as missing:
        raise UnknownKind(f"no schema for {kind} {api_version} in Kubernetes {minor}") from missing
    digest = schema_digest(schema, _definitions(schema_dir, minor).get("$defs", {}))
    if digest not in _VALIDATORS:
        registry = referencing.Resource.from_contents(schema) @ _registry(schema_dir, minor)
        _VALIDATORS[digest] = jsonschema.Draft202012Validator(schema, registry=registry)
    return _VALIDATORS[digest]


_CHECKED: dict[tuple[int, str], list[str]] = {}


def problems(obj: dict[str, Any], minor: str) -> list[str]:
    """Schema violations of a built-in object for a Kubernetes minor (empty when valid)."""
    try:
        check = validator(minor, obj["apiVersion"], obj["kind"])
    except UnknownKind as unknown:
        return [str(unknown)]
    key = (id(check), json.dumps(obj, sort_keys=True, default=repr))
    if key not in _CHECKED:
        _CHECKED[key] = [
            f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in sorted(check.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]
    return list(_CHECKED[key])


def pod_template_object(template: dict[str, Any], name: str) -> dict[str, Any]:
    """Wrap a pod template (from a RayCluster, say) in a core/v1 PodTemplate so the real
    Kubernetes schema checks it: CRD schemas of KubeRay copy PodSpec but drift from it."""
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}
