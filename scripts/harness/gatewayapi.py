"""A JSON Schema for Gateway API HTTPRoute v1 (gateway.networking.k8s.io/v1), written by hand.

Why by hand: no package on PyPI or npm ships the Gateway API CRDs as data (the npm
@kubernetes-models/gateway-api package carries compiled JavaScript validators, not the CRDs),
and ../shared/crds has none. So this schema is written from the Gateway API specification
(standard channel, v1.x API reference for HTTPRoute, ParentReference, HTTPRouteRule,
HTTPRouteMatch, HTTPPathMatch, HTTPBackendRef, HTTPRouteTimeouts) and is strict: every object is
closed, as server-side apply treats a CRD. It covers the fields a route of this chart can carry
plus the common standard ones (header/query/method matches, filters, weights); the spec's CEL
rules that matter for us (path values for Exact/PathPrefix, a port on Service backends) are
expressed as JSON Schema too. Experimental-channel fields (retry, sessionPersistence) are not
allowed. When a real Gateway API CRD is in the CRD folder, harness.crds uses it instead.
"""
from __future__ import annotations

from typing import Any

GROUP_VERSION = "gateway.networking.k8s.io/v1"

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
KIND = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
GROUP = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DURATION = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"


def _closed(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        node["required"] = required
    node.update(extra)
    return node


def _string(pattern: str | None = None, min_length: int = 0, max_length: int = 253) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string", "minLength": min_length, "maxLength": max_length}
    if pattern:
        node["pattern"] = pattern
    return node


PORT = {"type": "integer", "minimum": 1, "maximum": 65535}

PARENT_REFERENCE = _closed({
    "group": _string(GROUP),
    "kind": _string(KIND, 1, 63),
    "namespace": _string(DNS_LABEL, 1, 63),
    "name": _string(None, 1, 253),
    "sectionName": _string(DNS_SUBDOMAIN, 1, 253),
    "port": PORT,
}, ["name"])

# CEL of HTTPPathMatch: Exact and PathPrefix values start with "/" and contain no "//", "/./",
# "/../", "%2f", "%2F" or "#", and do not end with "/." or "/..".
PATH_MATCH = _closed({
    "type": {"type": "string", "enum": ["Exact", "PathPrefix", "RegularExpression"]},
    "value": {"type": "string", "maxLength": 1024},
}, allOf=[{
    "if": {"properties": {"type": {"enum": ["Exact", "PathPrefix"]}}},
    "then": {"properties": {"value": {"allOf": [
        {"pattern": "^/"},
        {"not": {"pattern": r"//|/\./|/\.\./|%2[fF]|#"}},
        {"not": {"pattern": r"/\.\.?$"}},
    ]}}},
}])

HEADER_MATCH = _closed({
    "type": {"type": "string", "enum": ["Exact", "RegularExpression"]},
    "name": _string(HEADER_NAME, 1, 256),
    "value": _string(None, 1, 4096),
}, ["name", "value"])

QUERY_PARAM_MATCH = _closed({
    "type": {"type": "string", "enum": ["Exact", "RegularExpression"]},
    "name": _string(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$", 1, 256),
    "value": _string(None, 1, 1024),
}, ["name", "value"])

ROUTE_MATCH = _closed({
    "path": PATH_MATCH,
    "headers": {"type": "array", "maxItems": 16, "items": HEADER_MATCH},
    "queryParams": {"type": "array", "maxItems": 16, "items": QUERY_PARAM_MATCH},
    "method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]},
})

HEADER = _closed({"name": _string(HEADER_NAME, 1, 256), "value": _string(None, 1, 4096)}, ["name", "value"])
HEADER_FILTER = _closed({
    "set": {"type": "array", "maxItems": 16, "items": HEADER},
    "add": {"type": "array", "maxItems": 16, "items": HEADER},
    "remove": {"type": "array", "maxItems": 16, "items": _string(HEADER_NAME, 1, 256)},
})
PATH_MODIFIER = _closed({
    "type": {"type": "string", "enum": ["ReplaceFullPath", "ReplacePrefixMatch"]},
    "replaceFullPath": _string(None, 0, 1024),
    "replacePrefixMatch": _string(None, 0, 1024),
}, ["type"])
FILTER = _closed({
    "type": {"type": "string", "enum": ["RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror",
                                        "RequestRedirect", "URLRewrite", "ExtensionRef"]},
    "requestHeaderModifier": HEADER_FILTER,
    "responseHeaderModifier": HEADER_FILTER,
    "urlRewrite": _closed({"hostname": _string(HOSTNAME, 1, 253), "path": PATH_MODIFIER}),
    "requestRedirect": _closed({
        "scheme": {"type": "string", "enum": ["http", "https"]},
        "hostname": _string(HOSTNAME, 1, 253),
        "path": PATH_MODIFIER,
        "port": PORT,
        "statusCode": {"type": "integer", "enum": [301, 302]},
    }),
    "extensionRef": _closed({"group": _string(GROUP), "kind": _string(KIND, 1, 63), "name": _string(None, 1, 253)},
                            ["group", "kind", "name"]),
}, ["type"])

# CEL of BackendRef: a Service backend (group "" and kind Service, the defaults) needs a port.
BACKEND_REF = _closed({
    "group": _string(GROUP),
    "kind": _string(KIND, 1, 63),
    "name": _string(None, 1, 253),
    "namespace": _string(DNS_LABEL, 1, 63),
    "port": PORT,
    "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
    "filters": {"type": "array", "maxItems": 16, "items": FILTER},
}, ["name"], allOf=[{
    "if": {"properties": {"group": {"const": ""}, "kind": {"const": "Service"}}},
    "then": {"required": ["port"]},
}])

RULE = _closed({
    "name": _string(DNS_SUBDOMAIN, 1, 253),
    "matches": {"type": "array", "maxItems": 64, "items": ROUTE_MATCH},
    "filters": {"type": "array", "maxItems": 16, "items": FILTER},
    "backendRefs": {"type": "array", "maxItems": 16, "items": BACKEND_REF},
    "timeouts": _closed({"request": _string(DURATION, 1, 32), "backendRequest": _string(DURATION, 1, 32)}),
})

HTTPROUTE: dict[str, Any] = _closed({
    "apiVersion": {"const": GROUP_VERSION},
    "kind": {"const": "HTTPRoute"},
    # The API server validates metadata as ObjectMeta (Kubernetes' schema), like harness.crds does.
    "metadata": {"type": "object"},
    "spec": _closed({
        "parentRefs": {"type": "array", "minItems": 1, "maxItems": 32, "items": PARENT_REFERENCE},
        "hostnames": {"type": "array", "maxItems": 16, "items": _string(HOSTNAME, 1, 253)},
        "rules": {"type": "array", "minItems": 1, "maxItems": 16, "items": RULE},
    }),
}, ["apiVersion", "kind", "metadata", "spec"])

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {(GROUP_VERSION, "HTTPRoute"): HTTPROUTE}
