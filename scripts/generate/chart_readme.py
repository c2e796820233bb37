"""Generate charts/ray-platform/README.md, what `helm show readme` and Artifact Hub show: what the
chart is (Chart.yaml), how to install it, the two overlays most users start from (values/dev.yaml
and values/production.yaml, each with its own header comment) and every value (the schema).

    python -m generate.chart_readme [--check]

`--check` exits 1 when the committed file is stale (`make lint` and the tests use it).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from generate.descriptions import values_table
from generate.generated_file import check_flag, marker, write_or_check
from harness.tools import CHART_DIR, VALUES_DIR

WHAT = "charts/ray-platform/README.md"
TARGET = CHART_DIR / "README.md"
OVERLAYS = ("dev", "production")
SOURCES = "Chart.yaml, values/dev.yaml, values/production.yaml and schemas/values.schema.yaml"

TEMPLATE = """\
<!-- {marker} -->
# {name}

{description}

| chart | Ray (appVersion) | Kubernetes | Helm | KubeRay operator |
|---|---|---|---|---|
| {version} | {app_version} | `{kube_version}` | 3 and 4 | {dependency_version} (subchart `{dependency}`) |

Source, developer notes and the full story (security, monitoring, Stable Diffusion, `make up`):
{home}

## Install

From a chart repository or OCI registry that serves this chart:

```bash
helm install ray <repository>/{name} --version {version} --namespace ray --create-namespace -f dev.yaml
```

Releases are signed. `--verify --keyring ray-platform.gpg` refuses a chart that is not exactly
what was signed, with `ray-platform.gpg` the public key that `artifacthub.io/signKey` names, in
the binary format Helm reads (`gpg --dearmor < ray-platform-release.asc > ray-platform.gpg`). In
an OCI registry the chart also carries a cosign signature:
`cosign verify --key cosign.pub --insecure-ignore-tlog=true <registry>/{name}:{version}`
(no transparency log entry is made). Both public keys are served beside the repository's
`index.yaml`.

From a checkout of the source (the `{dependency}` subchart comes from its own Helm repository):

```bash
helm repo add kuberay {dependency_repository}
helm dependency build charts/{name}
helm install ray charts/{name} --namespace ray --create-namespace -f values/dev.yaml
```

- Overlays merge: `-f dev.yaml -f my-team.yaml`. Worker groups are a map keyed by name, so
  `rayCluster.workerGroups.cpu.maxReplicas: 8` in your file changes that group and keeps the rest.
- A KubeRay operator already runs in the cluster (one per cluster)? Add
  `--set {dependency}.enabled=false`.
- The install notes (`helm get notes ray -n ray`) say how to reach the dashboard, get the Ray
  token and call `/imagine`; `helm test ray -n ray --logs` proves the release works.
- Helm installs the operator's CRDs on the first install only; apply newer CRDs yourself before an
  upgrade that moves the operator to a newer version.
- `helm uninstall ray -n ray` removes the release; a model cache volume the chart created stays.

## Overlays

Start from one of these and change what your cluster needs. The values the chart refuses are
refused with the key's name (`values.schema.json` and template checks).
{overlays}
## Values

Every key, its type, its default and what it does. `<name>` stands for a key you choose (a worker
group's name).

{table}"""

OVERLAY = """
### {name}

{about}

```yaml
{body}```
"""


def header_and_body(path: Path) -> tuple[str, str]:
    """An overlay's leading comment block (as prose) and the rest of the file."""
    lines = path.read_text().splitlines(keepends=True)
    head = []
    while lines and lines[0].startswith("#"):
        head.append(lines.pop(0).lstrip("#").strip())
    return " ".join(head), "".join(lines)


def render() -> str:
    chart: dict[str, Any] = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    (dependency,) = chart["dependencies"]
    overlays = "".join(OVERLAY.format(name=name, about=about, body=body) for name, (about, body) in
                       ((name, header_and_body(VALUES_DIR / f"{name}.yaml")) for name in OVERLAYS))
    return TEMPLATE.format(
        marker=marker("generate.chart_readme", SOURCES), name=chart["name"],
        description=" ".join(chart["description"].split()), version=chart["version"],
        app_version=chart["appVersion"], kube_version=chart["kubeVersion"], home=chart["home"],
        dependency=dependency["name"], dependency_version=dependency["version"],
        dependency_repository=dependency["repository"], overlays=overlays, table=values_table())


def main(argv: list[str] | None = None) -> int:
    return write_or_check(TARGET, render(), check_flag(__doc__.splitlines()[0], argv))


if __name__ == "__main__":
    sys.exit(main())
