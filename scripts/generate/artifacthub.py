"""Generate the `artifacthub.io/*` annotations of charts/ray-platform/Chart.yaml, what Artifact
Hub shows for each published version:

- changes:   the CHANGELOG.md section of Chart.yaml's version, one entry per bullet, its kind
             from the `### Added|Changed|Deprecated|Removed|Fixed|Security` heading above it;
- containsSecurityUpdates: whether that section has a `### Security` heading;
- prerelease: whether the version has a pre-release part (`1.2.0-rc.1`);
- images:    every image the chart deploys with its defaults: the Ray image, each group's image
             override in values.yaml, and the kuberay-operator subchart's operator image;
- signKey:   the fingerprint of keys/ray-platform-release.asc (the key `make release` signs
             with) and the URL users download it from;
- license, links, category, operator: constants below.

    python -m generate.artifacthub [--check]

Annotations of other prefixes in Chart.yaml are kept; the `annotations:` block must stay the last
key of Chart.yaml (this generator rewrites it to the end of the file).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

from generate.generated_file import check_flag, marker, write_or_check
from harness.tools import CHART_DIR, REPO

WHAT = "charts/ray-platform/Chart.yaml artifacthub.io annotations"
CHART_YAML = CHART_DIR / "Chart.yaml"
CHANGELOG = REPO / "CHANGELOG.md"
VALUES = CHART_DIR / "values.yaml"
SIGNING_KEY = REPO / "keys" / "ray-platform-release.asc"
PREFIX = "artifacthub.io/"
SOURCES = "CHANGELOG.md, values.yaml and keys/ray-platform-release.asc"

LICENSE = "Apache-2.0"
CATEGORY = "ai-machine-learning"
# The chart installs an operator (KubeRay's, as its subchart) and the resources it reconciles.
OPERATOR = "true"
SOURCE_REPOSITORY = "https://github.com/ray-platform/ray-platform"
SIGNING_KEY_URL = ("https://raw.githubusercontent.com/ray-platform/ray-platform/main/"
                   f"{SIGNING_KEY.relative_to(REPO).as_posix()}")
LINKS = (
    {"name": "Chart source", "url": SOURCE_REPOSITORY},
    {"name": "support", "url": f"{SOURCE_REPOSITORY}/issues"},
    {"name": "KubeRay", "url": "https://github.com/ray-project/kuberay"},
    {"name": "Ray Serve", "url": "https://docs.ray.io/en/latest/serve/index.html"},
)
# The kuberay-operator chart's default image, by the subchart's version (its values.yaml:
# image.repository quay.io/kuberay/operator, image.tag v<chart version>).
OPERATOR_IMAGE = "quay.io/kuberay/operator:v{version}"
CHANGE_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}


def changelog_section(changelog: str, version: str) -> str:
    """The text under `## <version>` up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(version)}\s*$(.*?)(?=^## |\Z)", changelog, re.M | re.S)
    if not match:
        raise SystemExit(f"{CHANGELOG.name} has no `## {version}` section for Chart.yaml's version")
    return match.group(1)


def changes(section: str) -> list[dict[str, str]]:
    """One entry per bullet; a bullet's continuation lines are joined into one line."""
    entries: list[dict[str, str]] = []
    kind = None
    for line in section.splitlines():
        heading = re.match(r"^### (\w+)\s*$", line)
        if heading:
            kind = heading.group(1).lower()
            if kind not in CHANGE_KINDS:
                raise SystemExit(f"{CHANGELOG.name}: `### {heading.group(1)}` is not one of "
                                 f"Artifact Hub's change kinds ({', '.join(sorted(CHANGE_KINDS))})")
        elif line.startswith("- "):
            if kind is None:
                raise SystemExit(f"{CHANGELOG.name}: a bullet before any `### <kind>` heading: {line}")
            entries.append({"kind": kind, "description": line[2:].strip()})
        elif line.startswith("  ") and line.strip() and entries:
            entries[-1]["description"] += " " + line.strip()
    if not entries:
        raise SystemExit(f"{CHANGELOG.name}: the chart version's section lists no change")
    return entries


def _image_overrides(node: Any) -> Iterator[dict[str, Any]]:
    """Every non-empty `image` map below the top level of values.yaml (a group's override)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, dict) and value:
                yield value
            yield from _image_overrides(value)
    elif isinstance(node, list):
        for item in node:
            yield from _image_overrides(item)


def images(values: dict[str, Any], operator_version: str) -> list[dict[str, str]]:
    base = values["image"]
    found = [f"{base['repository']}:{base['tag']}"]
    for override in _image_overrides({key: value for key, value in values.items() if key != "image"}):
        image = f"{override.get('repository', base['repository'])}:{override.get('tag', base['tag'])}"
        if image not in found:
            found.append(image)
    entries = [{"name": "ray" if i == 0 else f"ray-{image.rsplit('-', 1)[-1]}", "image": image}
               for i, image in enumerate(found)]
    entries.append({"name": "kuberay-operator",
                    "image": OPERATOR_IMAGE.format(version=operator_version)})
    return entries


def annotations(chart: dict[str, Any], changelog: str, values: dict[str, Any],
                fingerprint: str) -> dict[str, str]:
    section = changelog_section(changelog, chart["version"])
    operator = next(dep for dep in chart.get("dependencies", []) if dep["name"] == "kuberay-operator")

    def block(value: Any) -> str:
        return yaml.safe_dump(value, sort_keys=False, width=120, allow_unicode=True)

    return {
        f"{PREFIX}category": CATEGORY,
        f"{PREFIX}changes": block(changes(section)),
        f"{PREFIX}containsSecurityUpdates": str("### Security" in section).lower(),
        f"{PREFIX}images": block(images(values, operator["version"])),
        f"{PREFIX}license": LICENSE,
        f"{PREFIX}links": block(list(LINKS)),
        f"{PREFIX}operator": OPERATOR,
        f"{PREFIX}prerelease": str("-" in chart["version"]).lower(),
        f"{PREFIX}signKey": block({"fingerprint": fingerprint, "url": SIGNING_KEY_URL}),
    }


def render_block(kept: dict[str, str], generated: dict[str, str]) -> str:
    """The `annotations:` block as Chart.yaml text: kept keys first, then the generated ones,
    multi-line values as literal block scalars."""
    lines = ["annotations:"]
    for key, value in kept.items():
        lines.append(f"  {yaml.safe_dump({key: value}, width=1000).strip()}")
    lines.append(f"  # {marker('generate.artifacthub', SOURCES)}")
    for key, value in generated.items():
        if "\n" in value:
            lines.append(f"  {key}: |")
            lines += [f"    {line}" if line else "" for line in value.rstrip("\n").splitlines()]
        else:
            lines.append(f"  {key}: {yaml.safe_dump(value).splitlines()[0]}")
    return "\n".join(lines) + "\n"


def updated_chart_yaml(text: str, generated: dict[str, str]) -> str:
    match = re.search(r"^annotations:\s*$", text, re.M)
    head = text[:match.start()] if match else text.rstrip("\n") + "\n"
    current = (yaml.safe_load(text) or {}).get("annotations") or {}
    kept = {key: value for key, value in current.items() if not key.startswith(PREFIX)}
    if match and re.search(r"^\S", text[match.end():], re.M):
        raise SystemExit(f"{CHART_YAML}: `annotations:` must be the last key (the generator "
                         "rewrites it to the end of the file)")
    return head + render_block(kept, generated)


def wanted() -> str:
    from release.gpg import public_key_fingerprint

    text = CHART_YAML.read_text()
    chart = yaml.safe_load(text)
    values = yaml.safe_load(VALUES.read_text())
    generated = annotations(chart, CHANGELOG.read_text(), values,
                            public_key_fingerprint(SIGNING_KEY))
    return updated_chart_yaml(text, generated)


def main(argv: list[str] | None = None) -> int:
    return write_or_check(CHART_YAML, wanted(), check_flag(__doc__.splitlines()[0], argv))


if __name__ == "__main__":
    sys.exit(main())
