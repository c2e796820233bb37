"""`make package` / `make repo-index`: build the chart archive into dist/ and a chart repository
index for a base URL.

    python -m release.package_chart package [--offline] [--dist DIR]
    python -m release.package_chart repo-index --url URL [--dist DIR]

The archive includes the kuberay-operator subchart when `helm dependency build` has fetched it
(or can fetch it now). Where the network cannot reach the KubeRay Helm repository, `--offline`
packages the chart without the subchart and says so in the archive's Chart.yaml annotations -
for trying the packaging path, not for publishing.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import helm
from harness.render import dependency_archive, dependency_build_steps, make_offline_copy
from harness.tools import CHART_DIR, REPO

DIST = REPO / "dist"


def fetch_dependency() -> bool:
    """Try `helm dependency build`; True when the subchart archive is in place."""
    if dependency_archive() is not None:
        return True
    for _, args in dependency_build_steps():
        helm.run(*args)
    return dependency_archive() is not None


@dataclass(frozen=True)
class Signing:
    """What `helm package --sign` needs: the key's name and the legacy secret keyring holding it."""
    key: str
    keyring: Path
    passphrase_file: Path | None = None

    def args(self) -> list[str]:
        args = ["--sign", "--key", self.key, "--keyring", str(self.keyring)]
        return args + (["--passphrase-file", str(self.passphrase_file)] if self.passphrase_file else [])


def _with_annotations(source: Path, annotations: dict[str, str]) -> None:
    chart_yaml = source / "Chart.yaml"
    metadata = yaml.safe_load(chart_yaml.read_text())
    metadata.setdefault("annotations", {}).update(annotations)
    chart_yaml.write_text(yaml.safe_dump(metadata, sort_keys=False))


def package(dist: Path, offline: bool, *, version: str | None = None,
            signing: Signing | None = None, annotations: dict[str, str] | None = None) -> Path:
    """The chart archive in dist (and, signed, its .prov beside it). `version` overrides
    Chart.yaml's; `annotations` are set in the packaged Chart.yaml only (a copy)."""
    dist.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.TemporaryDirectory(prefix="ray-platform-package-")
    try:
        if fetch_dependency():
            source = CHART_DIR
            if annotations:
                source = Path(workdir.name) / CHART_DIR.name
                shutil.copytree(CHART_DIR, source)
        elif offline:
            source = make_offline_copy(CHART_DIR, Path(workdir.name))
            _with_annotations(source, {"ray-platform.io/packaged-without": "kuberay-operator"})
            print("package: the kuberay-operator subchart is not available; packaging WITHOUT it (--offline)",
                  file=sys.stderr)
        else:
            raise SystemExit("package: the kuberay-operator subchart cannot be fetched (no access to the "
                             "KubeRay Helm repository); run `helm dependency build charts/ray-platform` where "
                             "the network allows, or `make package OFFLINE=1` to package without it")
        if annotations:
            _with_annotations(source, annotations)
        args = ["package", str(source), "--destination", str(dist)]
        args += ["--version", version] if version else []
        args += signing.args() if signing else []
        proc = helm.run(*args)
        if proc.returncode != 0:
            raise SystemExit(f"package: helm package failed: {proc.stderr.strip()}")
    finally:
        workdir.cleanup()
    archive = Path(proc.stdout.strip().rsplit(": ", 1)[-1])
    print(f"package: {archive}{' (signed: ' + archive.name + '.prov)' if signing else ''}")
    return archive


def repo_index(dist: Path, url: str) -> Path:
    if not url:
        raise SystemExit("repo-index: set the chart repository's base URL: make repo-index URL=https://charts.example.com")
    index = dist / "index.yaml"
    args = ["repo", "index", str(dist), "--url", url]
    if index.exists():
        args += ["--merge", str(index)]
    proc = helm.run(*args)
    if proc.returncode != 0:
        raise SystemExit(f"repo-index: helm repo index failed: {proc.stderr.strip()}")
    print(f"repo-index: {index}")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pack = sub.add_parser("package")
    pack.add_argument("--offline", action="store_true", help="package without the subchart if it cannot be fetched")
    index = sub.add_parser("repo-index")
    index.add_argument("--url", default="", help="base URL the archives will be served from")
    for command in (pack, index):
        command.add_argument("--dist", type=Path, default=DIST)
    args = parser.parse_args(argv)
    if args.command == "package":
        package(args.dist, args.offline)
    else:
        repo_index(args.dist, args.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
