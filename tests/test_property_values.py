"""Property-based: values generated from the schema either render into objects that pass every
check, or are refused by helm with a message naming a key - never a template crash or a
manifest the API server or the KubeRay operator would reject."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis_jsonschema import from_schema

from generate import schema as generate_schema
from harness.check import check_objects
from harness.crds import CrdRegistry
from harness.render import Renderer, RenderRequest, normalise_paths
from harness.versions import SUPPORTED_KUBE_MINORS

# Kubernetes pass-through nodes (marked x-kubernetes-passthrough in the schema source) are
# Kubernetes' business, not the chart's: generate them from small valid samples instead.
PASSTHROUGH_SAMPLES: dict[str, list[Any]] = {
    "object": [{}, {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ray"]}]}]}}}],
    "array": [[]],
}
# Bounds that keep each example small so the suite stays fast.
MAX_ITEMS, MAX_GROUPS = 2, 2
# A refusal names a key: a dotted values path or the quoted name of a map key.
NAMED_KEY = re.compile(r"(\b[a-zA-Z][\w-]*\.[\w.-]+|'[^']+'|\"[^\"]+\"|\b(rayCluster|image|auth|rayVersion|rayTmpDir)\b)")


def bounded(node: Any) -> Any:
    if isinstance(node, list):
        return [bounded(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-passthrough"):
        samples = PASSTHROUGH_SAMPLES[node.get("type", "object")]
        if node.get("type") == "array" and node.get("items", {}).get("required"):
            samples = [[]]
        return {"enum": samples}
    out = {key: bounded(value) for key, value in node.items()}
    if out.get("type") == "array":
        out["maxItems"] = min(out.get("maxItems", MAX_ITEMS), MAX_ITEMS)
    if "propertyNames" in out and isinstance(out.get("additionalProperties"), dict):
        out["maxProperties"] = MAX_GROUPS
    return out


def generation_schema() -> dict[str, Any]:
    schema = bounded(copy.deepcopy(generate_schema.load_source()))
    return generate_schema.strip_project_keywords(schema)


# Built once: hypothesis-jsonschema canonicalises the whole schema when the strategy is made.
VALUES_STRATEGY = from_schema(generation_schema())


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(values=VALUES_STRATEGY)
def test_generated_values_render_cleanly_or_are_refused_naming_a_key(
        values: dict[str, Any], renderer: Renderer, crds: CrdRegistry, tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
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
