"""Render the chart with the real helm binaries.

    python -m harness.render [VALUES_FILE ...]   # `make render`: helm 4's manifests, offline

The kuberay-operator dependency cannot always be downloaded (it can't on the build machines), so
the umbrella's own templates are rendered from a temporary copy of the chart without the
dependency. Where `helm dependency build` has put the archive in charts/ray-platform/charts/,
`Renderer(with_dependency=True)` renders the real chart, subchart included.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from harness import helm
from harness.tools import CHART_DIR, NAMESPACE, RELEASE


class RenderError(Exception):
    """helm refused the values; str() is helm's message without the usage noise."""


@dataclass(frozen=True)
class RenderRequest:
    values_files: tuple[Path, ...] = ()
    helm_major: int = 4
    kube_version: str | None = None
    api_versions: tuple[str, ...] = ()
    set_values: tuple[str, ...] = ()


# The Helm repository of the kuberay-operator dependency (as Chart.yaml names it).
KUBERAY_REPO = ("kuberay", "https://ray-project.github.io/kuberay-helm/")


def dependency_archive(chart_dir: Path = CHART_DIR) -> Path | None:
    """The kuberay-operator archive fetched by `helm dependency build`, if present."""
    found = sorted((chart_dir / "charts").glob("kuberay-operator-*.tgz"))
    return found[-1] if found else None


def dependency_build_steps(chart_dir: Path = CHART_DIR) -> list[tuple[str, list[str]]]:
    """(name, helm arguments) of the commands that fetch the kuberay-operator archive."""
    return [("helm repo add", ["repo", "add", *KUBERAY_REPO, "--force-update"]),
            ("helm dependency build", ["dependency", "build", str(chart_dir)])]


def make_offline_copy(chart_dir: Path, dest: Path) -> Path:
    """Copy the chart to dest without its remote dependency (Chart.yaml, Chart.lock, charts/)."""
    target = dest / chart_dir.name
    shutil.copytree(chart_dir, target, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    chart_yaml = target / "Chart.yaml"
    metadata = yaml.safe_load(chart_yaml.read_text())
    metadata.pop("dependencies", None)
    chart_yaml.write_text(yaml.safe_dump(metadata, sort_keys=False))
    return target


# libyaml's loader: the pure-Python one takes longer than helm itself on the larger renders.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=SafeLoader) if doc]


@dataclass
class Renderer:
    """Renders the chart, each distinct request once (tests share one Renderer per session)."""

    with_dependency: bool = False
    chart_dir: Path = CHART_DIR
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _chart: Path | None = field(default=None, init=False, repr=False)
    _cache: dict[RenderRequest, tuple[str, list[dict[str, Any]] | None]] = field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def chart(self) -> Path:
        if self._chart is None:
            if self.with_dependency:
                if dependency_archive(self.chart_dir) is None:
                    raise FileNotFoundError(
                        "the kuberay-operator archive is missing: run `helm dependency build "
                        f"{self.chart_dir}` where the network allows"
                    )
                self._chart = self.chart_dir
            else:
                self._workdir = tempfile.TemporaryDirectory(prefix="ray-platform-chart-")
                self._chart = make_offline_copy(self.chart_dir, Path(self._workdir.name))
        return self._chart

    def close(self) -> None:
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir, self._chart = None, None

    def arguments(self, request: RenderRequest) -> list[str]:
        """helm's arguments (after the binary) for the request."""
        args = ["template", RELEASE, str(self.chart), "--namespace", NAMESPACE]
        for path in request.values_files:
            args += ["--values", str(path)]
        for assignment in request.set_values:
            args += ["--set", assignment]
        if request.kube_version:
            args += ["--kube-version", request.kube_version]
        for api_version in request.api_versions:
            args += ["--api-versions", api_version]
        return args

    def _execute(self, request: RenderRequest) -> tuple[str, list[dict[str, Any]] | None]:
        proc = helm.run(*self.arguments(request), major=request.helm_major)
        if proc.returncode == 0:
            return proc.stdout, parse_manifests(proc.stdout)
        return clean_error(proc.stderr), None

    def _run(self, request: RenderRequest) -> tuple[str, list[dict[str, Any]] | None]:
        if request not in self._cache:
            self._cache[request] = self._execute(request)
        return self._cache[request]

    def prefetch(self, requests: Iterable[RenderRequest]) -> None:
        """Render many requests at once, one helm process per core: a test session asks for a
        few hundred renders, and helm spends most of a render starting up on one core."""
        todo = [request for request in dict.fromkeys(requests) if request not in self._cache]
        if not todo:
            return
        self.chart  # create the offline copy before the threads share it
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for request, result in zip(todo, pool.map(self._execute, todo)):
                self._cache[request] = result

    def render(self, request: RenderRequest) -> list[dict[str, Any]]:
        """The rendered objects; RenderError with helm's message when helm refuses."""
        text, objects = self._run(request)
        if objects is None:
            raise RenderError(text)
        return objects

    def manifest_text(self, request: RenderRequest) -> str:
        """helm's output as text; RenderError when helm refuses."""
        text, objects = self._run(request)
        if objects is None:
            raise RenderError(text)
        return text

    def error(self, request: RenderRequest) -> str | None:
        """helm's error message for the request, or None when it renders."""
        text, objects = self._run(request)
        return text if objects is None else None

    def install_output(self, set_values: Iterable[str] = ()) -> str:
        """What `helm install --dry-run=client` prints (manifests, then NOTES.txt) with the chart's
        defaults: helm 4 renders NOTES.txt without a cluster, helm 3 cannot. RenderError when it fails."""
        args = ["install", RELEASE, str(self.chart), "--namespace", NAMESPACE, "--dry-run=client"]
        for assignment in set_values:
            args += ["--set", assignment]
        proc = helm.run(*args, major=4, timeout=120)
        if proc.returncode != 0:
            raise RenderError(clean_error(proc.stderr))
        return proc.stdout


def clean_error(stderr: str) -> str:
    """helm's error without its trailing hint lines about --debug."""
    lines = [line for line in stderr.strip().splitlines() if "--debug" not in line]
    return "\n".join(lines).strip()


def normalise_paths(message: str) -> str:
    """Helm 4 names keys as '/a/b/c', Helm 3 as 'a.b.c': turn the former into the latter."""
    return re.sub(r"'/([^' ]*)'", lambda m: m.group(1).replace("/", "."), message)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj.get("kind") == kind]


def object_ref(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"



def main(argv: list[str] | None = None) -> int:
    renderer = Renderer()
    try:
        print(renderer.manifest_text(RenderRequest(tuple(Path(v) for v in (sys.argv[1:] if argv is None else argv)), 4)))
    except RenderError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        renderer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
