"""Artifact Hub metadata: Chart.yaml's `artifacthub.io/*` annotations and artifacthub-repo.yml
against Artifact Hub's documented formats (its Helm annotations and repository metadata docs),
the annotations generated (and not stale), the images every image the chart deploys, and the
signKey the key `make release` must sign with."""
from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import yaml

from generate import artifacthub
from harness.pods import pod_templates
from harness.tools import CHART_DIR, REPO
from release import gpg, publish
from release.package_chart import Signing

CHART = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
ANNOTATIONS = {key: value for key, value in CHART["annotations"].items()
               if key.startswith("artifacthub.io/")}
# Artifact Hub's documented Helm annotations and their value types.
BOOLEAN_STRINGS = {"artifacthub.io/containsSecurityUpdates", "artifacthub.io/operator",
                   "artifacthub.io/prerelease"}
PLAIN_STRINGS = {"artifacthub.io/alternativeName", "artifacthub.io/category",
                 "artifacthub.io/license", "artifacthub.io/operatorCapabilities"}
YAML_STRINGS = {"artifacthub.io/changes", "artifacthub.io/images", "artifacthub.io/crds",
                "artifacthub.io/crdsExamples", "artifacthub.io/links", "artifacthub.io/maintainers",
                "artifacthub.io/recommendations", "artifacthub.io/screenshots",
                "artifacthub.io/signKey"}
CATEGORIES = {"ai-machine-learning", "database", "integration-delivery", "monitoring-logging",
              "networking", "security", "storage", "streaming-messaging", "skip-prediction"}
CHANGE_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}
URL = re.compile(r"^https://[^\s/]+(/\S*)?$")
SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")


def decoded(key: str) -> Any:
    return yaml.safe_load(ANNOTATIONS[key])


def test_the_annotations_are_generated_and_not_stale() -> None:
    assert artifacthub.wanted() == (CHART_DIR / "Chart.yaml").read_text(), \
        "run `make generate` (python -m generate.artifacthub)"


def test_every_annotation_is_a_documented_one_with_its_type() -> None:
    assert set(ANNOTATIONS) <= BOOLEAN_STRINGS | PLAIN_STRINGS | YAML_STRINGS
    for key, value in ANNOTATIONS.items():
        assert isinstance(value, str), f"{key}: annotations are strings"
        if key in BOOLEAN_STRINGS:
            assert value in ("true", "false"), f"{key}: {value!r} is not a boolean string"
        if key in YAML_STRINGS:
            assert decoded(key), f"{key} decodes to nothing"
    assert {"artifacthub.io/changes", "artifacthub.io/images", "artifacthub.io/license",
            "artifacthub.io/links", "artifacthub.io/signKey", "artifacthub.io/operator"} <= set(ANNOTATIONS)


def test_category_license_and_links() -> None:
    assert ANNOTATIONS["artifacthub.io/category"] in CATEGORIES
    assert SPDX_ID.match(ANNOTATIONS["artifacthub.io/license"])
    links = decoded("artifacthub.io/links")
    assert all(set(link) == {"name", "url"} and URL.match(link["url"]) for link in links), links
    assert len({link["name"] for link in links}) == len(links)


def test_changes_are_the_changelog_section_of_the_chart_version() -> None:
    entries = decoded("artifacthub.io/changes")
    for entry in entries:
        assert set(entry) <= {"kind", "description", "links"}, entry
        assert entry["kind"] in CHANGE_KINDS and entry["description"].strip(), entry
    section = artifacthub.changelog_section((REPO / "CHANGELOG.md").read_text(), CHART["version"])
    assert len(entries) == len(re.findall(r"^- ", section, re.M))


def test_a_changelog_heading_artifact_hub_lacks_is_refused() -> None:
    with pytest.raises(SystemExit, match="`### Breaking` is not one of Artifact Hub's change kinds"):
        artifacthub.changes("### Breaking\n- something\n")


def test_images_are_every_image_the_chart_deploys(default_objects: list[dict[str, Any]]) -> None:
    """Every container image of every pod template the chart renders with its defaults (Ray
    pods' nested templates and the helm test Pods included), plus the operator subchart's.
    Overlays choose their own images; the annotation lists what the chart installs as it is."""
    listed = decoded("artifacthub.io/images")
    for entry in listed:
        assert set(entry) <= {"name", "image", "whitelisted", "platforms"}, entry
        assert ":" in entry["image"].rsplit("/", 1)[-1] and not entry["image"].endswith(":latest")
    rendered = {container["image"]
                for obj in default_objects for template in pod_templates(obj)
                for container in [*template.spec.get("containers", []),
                                  *template.spec.get("initContainers", [])]}
    operator = next(dep for dep in CHART["dependencies"] if dep["name"] == "kuberay-operator")
    assert {entry["image"] for entry in listed} == rendered | {
        artifacthub.OPERATOR_IMAGE.format(version=operator["version"])}


def test_sign_key_is_the_committed_release_key() -> None:
    sign_key = decoded("artifacthub.io/signKey")
    assert set(sign_key) == {"fingerprint", "url"}  # url is mandatory once signKey is given
    assert re.fullmatch(r"[0-9A-F]{40}", sign_key["fingerprint"])
    assert sign_key["fingerprint"] == gpg.public_key_fingerprint(artifacthub.SIGNING_KEY)
    assert URL.match(sign_key["url"]) and sign_key["url"].endswith("/keys/ray-platform-release.asc")


def test_release_refuses_a_key_other_than_the_advertised_one(tmp_path) -> None:
    other = publish.OpenPgpKey(Signing("someone", tmp_path / "secring.gpg"), "A" * 40,
                               tmp_path / "public-key.asc")
    with pytest.raises(SystemExit, match="is not the one Chart.yaml's artifacthub.io/signKey names"):
        publish.sign_key_annotations(other, throwaway=False, repo_url="https://charts.example.com")
    trial = publish.sign_key_annotations(other, throwaway=True, repo_url="https://charts.example.com")
    assert yaml.safe_load(trial["artifacthub.io/signKey"]) == {
        "fingerprint": "A" * 40, "url": "https://charts.example.com/public-key.asc"}


def test_artifacthub_repo_yml_has_the_documented_shape() -> None:
    metadata = yaml.safe_load((REPO / "artifacthub-repo.yml").read_text())
    assert set(metadata) <= {"repositoryID", "owners", "ignore"}
    if "repositoryID" in metadata:
        uuid.UUID(metadata["repositoryID"])
    for owner in metadata.get("owners", []):
        assert set(owner) == {"name", "email"} and re.fullmatch(r"[^@\s]+@[^@\s]+\.\w+", owner["email"])
    for ignored in metadata.get("ignore", []):
        assert set(ignored) <= {"name", "version"} and ignored["name"] == CHART["name"]
        re.compile(ignored.get("version", ""))
