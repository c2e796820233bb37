"""The values schema: generated JSON is current, defaults satisfy it, every key is described,
and the versions in Chart.yaml and values.yaml agree."""
from __future__ import annotations

import json
from typing import Any, Iterator

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

import generate_docs
import generate_schema
from harness.tools import CHART_DIR
from harness.versions import SUPPORTED_KUBE_MINORS

VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
CHART = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads((CHART_DIR / "values.schema.json").read_text())


def test_committed_json_schema_is_current() -> None:
    assert generate_schema.main(["--check"]) == 0, "run `make generate`"


def test_committed_values_reference_is_current() -> None:
    assert generate_docs.main(["--check"]) == 0, "run `make generate`"


@pytest.mark.parametrize("generator", [generate_schema, generate_docs], ids=lambda g: g.__name__)
def test_staleness_check_can_fail(generator, tmp_path, monkeypatch) -> None:
    stale = tmp_path / "stale"
    stale.write_text("{}\n")
    monkeypatch.setattr(generator, "TARGET", stale)
    assert generator.main(["--check"]) == 1


def test_values_reference_lists_every_documented_key() -> None:
    reference = generate_docs.TARGET.read_text()
    for path in ("rayCluster.workerGroups.<name>.gpus", "stableDiffusion.weights.source",
                 "auth.mode", "kuberay-operator.enabled"):
        assert f"| `{path}` |" in reference


def test_defaults_satisfy_the_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(VALUES)


def test_schema_stays_open_for_umbrella_keys(schema: dict[str, Any]) -> None:
    values = {**VALUES, "global": {"imageRegistry": "mirror.example"},
              "kuberay-operator": {"enabled": True, "image": {"tag": "v1.7.0"}}}
    jsonschema.Draft7Validator(schema).validate(values)


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, schema) of every declared property, definitions included."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{path}{name}", sub
        for key, sub in node.items():
            if key != "properties":
                yield from _properties(sub, f"{path}{key}.")
        for name, sub in (node.get("properties") or {}).items():
            yield from _properties(sub, f"{path}{name}.")
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            yield from _properties(sub, f"{path}{index}.")


# `{}` re-declares a key whose schema (with its description) comes from an allOf base; the
# properties of resources' requests/limits are Kubernetes' own.
UNDESCRIBED_OK = ("definitions.resources.",)
# Conditions and list items restate properties described where they are declared.
RESTATEMENTS = (".if.", ".then.", ".items.")


def test_every_property_is_described() -> None:
    source = generate_schema.load_source()
    missing = sorted({path for path, sub in _properties(source)
                      if sub != {} and not sub.get("description") and not path.startswith(UNDESCRIBED_OK)
                      and not any(part in f".{path}" for part in RESTATEMENTS)})
    assert not missing, f"properties without a description: {missing}"


def test_app_version_ray_version_and_image_tag_agree() -> None:
    assert CHART["appVersion"] == VALUES["rayVersion"]
    assert VALUES["image"]["tag"].split("-")[0] == VALUES["rayVersion"]


def test_kube_version_admits_exactly_the_tested_range() -> None:
    spec = SpecifierSet(CHART["kubeVersion"].replace("-0", ""))
    for minor in SUPPORTED_KUBE_MINORS:
        assert f"{minor}.0" in spec, minor
    major, oldest = SUPPORTED_KUBE_MINORS[0].split(".")
    assert f"{major}.{int(oldest) - 1}.0" not in spec


def test_dependency_is_the_pinned_kuberay_operator() -> None:
    (dependency,) = CHART["dependencies"]
    assert dependency == {
        "name": "kuberay-operator", "version": "1.7.0",
        "repository": "https://ray-project.github.io/kuberay-helm/",
        "condition": "kuberay-operator.enabled",
    }
    assert CHART["apiVersion"] == "v2" and CHART["name"] == "ray-platform"
