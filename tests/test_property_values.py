"""Property-based: values generated from the schema either render into objects that pass every
check, or are refused by helm with a message naming a key - never a template crash or a
manifest the API server or the KubeRay operator would reject."""
from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import _from_schema, from_schema
from hypothesis_jsonschema._encode import encode_canonical_json

from generate import schema as generate_schema
from harness.check import check_objects
from harness.crds import CrdRegistry
from harness.render import Renderer, RenderRequest, normalise_paths
from harness.versions import SUPPORTED_KUBE_MINORS

# Kubernetes pass-through nodes (marked x-kubernetes-passthrough in the schema source, directly
# or through a $ref) are Kubernetes' business, not the chart's: generate them from small samples
# that are valid where the key goes (an affinity is no securityContext), by default empty ones.
PASSTHROUGH_SAMPLES: dict[str, list[Any]] = {
    "affinity": [{}, {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ray"]}]}]}}}],
}
EMPTY_SAMPLES = {"object": [{}], "array": [[]]}
# Bounds that keep each example small so the suite stays fast.
MAX_ITEMS, MAX_GROUPS = 2, 2
# A refusal names a key: a dotted values path or the quoted name of a map key.
# A top-level key may stand alone (helm 4: "at fullnameOverride: got boolean, want string").
TOP_LEVEL_KEYS = "|".join(sorted(generate_schema.load_source()["properties"], key=len, reverse=True))
NAMED_KEY = re.compile(rf"(\b[a-zA-Z][\w-]*\.[\w.-]+|'[^']+'|\"[^\"]+\"|\b({TOP_LEVEL_KEYS})\b)")


def bounded(node: Any, definitions: dict[str, Any], name: str | None = None) -> Any:
    """node with pass-through values replaced by samples and arrays and maps kept small; name is
    the property node describes, if any."""
    if isinstance(node, list):
        return [bounded(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    target = definitions.get(ref.removeprefix("#/definitions/"), {}) if ref.startswith("#/definitions/") else node
    if target.get("x-kubernetes-passthrough"):
        return {"enum": PASSTHROUGH_SAMPLES.get(name or "", EMPTY_SAMPLES[target.get("type", "object")])}
    out = {key: ({prop: bounded(sub, definitions, prop) for prop, sub in value.items()} if key == "properties"
                 else bounded(value, definitions)) for key, value in node.items()}
    if out.get("type") == "array":
        out["maxItems"] = min(out.get("maxItems", MAX_ITEMS), MAX_ITEMS)
    if "propertyNames" in out and isinstance(out.get("additionalProperties"), dict):
        out["maxProperties"] = MAX_GROUPS
    return out


def generation_schema() -> dict[str, Any]:
    source = copy.deepcopy(generate_schema.load_source())
    schema = bounded(source, source.get("definitions", {}))
    return generate_schema.strip_project_keywords(schema)


def keep_subschema_strategies() -> None:
    """hypothesis-jsonschema (0.23.1, pinned) makes the strategy of an object's property anew at
    every draw, canonicalising its schema each time: three quarters of this test's time. A
    (sub)schema's strategy depends on nothing but its arguments, so make each one once."""
    make = vars(_from_schema).get("__from_schema")
    if make is None or getattr(make, "keeps", False):
        return  # another hypothesis-jsonschema: correct, only slower
    made: dict[tuple[str, int, int], st.SearchStrategy[Any]] = {}

    def keeping(schema: Any, *, alphabet: Any, custom_formats: Any) -> st.SearchStrategy[Any]:
        key = (encode_canonical_json(schema), id(alphabet), id(custom_formats))
        if key not in made:
            made[key] = make(schema, alphabet=alphabet, custom_formats=custom_formats)
        return made[key]

    keeping.keeps = True  # type: ignore[attr-defined]
    setattr(_from_schema, "__from_schema", keeping)


def values_strategy() -> st.SearchStrategy[Any]:
    """Values with one or two top-level keys generated from their part of the schema (the rest
    left to the defaults). Drawing whole documents from the whole schema costs seconds per
    example now that it has RayJobs and RayServices of their own; pairs keep the interactions
    between keys (a RayJob on the chart's RayCluster while rayCluster is off)."""
    keep_subschema_strategies()
    schema = generation_schema()
    definitions = schema.get("definitions", {})
    # Each part is made when first drawn: making the big ones (rayServices 3.6 s, rayJobs 1.8 s)
    # costs more than the examples that draw them.
    parts = {key: st.deferred(lambda sub=sub: from_schema({"definitions": definitions, **sub}))
             for key, sub in schema["properties"].items()}
    return (st.lists(st.sampled_from(sorted(parts)), min_size=1, max_size=2, unique=True)
            .flatmap(lambda keys: st.fixed_dictionaries({key: parts[key] for key in keys})))


# Built once, when the test first draws (not at collection: hypothesis-jsonschema canonicalises
# the whole schema when the strategy is made, which takes seconds).
VALUES_STRATEGY = st.deferred(values_strategy)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(values=VALUES_STRATEGY)
def test_generated_values_render_cleanly_or_are_refused_naming_a_key(
        values: dict[str, Any], renderer: Renderer, crds: CrdRegistry, tmp_path: Path) -> None:
    # One file per example: tmp_path is the same for every example, and the renderer caches by
    # request (a fixed name would render the first example only).
    text = yaml.safe_dump(values)
    path = tmp_path / f"values-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    path.write_text(text)
    request = RenderRequest((path,), 4)
    error = renderer.error(request)
    if error is not None:
        message = normalise_paths(error)
        assert "panic" not in message and "goroutine" not in message, message
        assert "execution error" in message or "schema" in message, f"not a refusal:\n{message}"
        assert NAMED_KEY.search(message.split("chart(s):")[-1]), f"no key named:\n{message}"
        event("refused by helm")
        return
    event("rendered")
    problems = check_objects(renderer.render(request), crds, [SUPPORTED_KUBE_MINORS[-1]])
    assert not problems, f"values {values} rendered invalid objects:\n" + "\n".join(map(str, problems))
