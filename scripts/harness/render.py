"""Render the chart with the real helm binaries.

    python -m harness.render [VALUES_FILE ...]   # `make render`: helm 4's manifests, offline

The kuberay-operator dependency cannot always be downloaded (it can't on the build machines), so
the umbrella's own templates are rendered from a temporary copy of the chart without the
dependency. Where `helm dependency build` has put the archive in charts/ray-platform/charts/,
`Renderer(with_dependency=True)` renders the real chart, subchart included.

`Renderer(cache_dir=...)` keeps helm's answers in a folder that several processes share (the
test session's workers): each answer is keyed by the chart's content, the helm binary, helm's
arguments and the values files' content, and computed by whichever process gets there first.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
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


def tree_digest(folder: Path) -> str:
    """sha256 over the relative path and bytes of every file below folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def binary_identity(path: Path) -> str:
    """Changes whenever the binary is rebuilt (bootstrap/go_tools.py replaces the file)."""
    stat = path.resolve().stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"


# A render is a helm process of a fraction of a second: its garbage collector would spend a
# quarter of it reclaiming memory that the exit returns anyway, and several renders run at once
# (one per core), so one thread each is enough.
RENDER_ENV = {"GOGC": "off", "GOMAXPROCS": "1"}

# libyaml's loader: the pure-Python one takes longer than helm itself on the larger renders.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """yaml.safe_load with libyaml's loader (the values, schema and CRD files are large)."""
    return yaml.load(text, Loader=SafeLoader)


def parse_manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=SafeLoader) if doc]


@dataclass
class Renderer:
    """Renders the chart, each distinct request once (tests share one Renderer per session)."""

    with_dependency: bool = False
    chart_dir: Path = CHART_DIR
    cache_dir: Path | None = None  # helm's answers, shared with other processes (see above)
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _chart: Path | None = field(default=None, init=False, repr=False)
    _chart_digest: str | None = field(default=None, init=False, repr=False)
    # helm's answer per request: (rendered, manifests or error message); objects parsed on demand
    _cache: dict[RenderRequest, tuple[bool, str]] = field(default_factory=dict, init=False, repr=False)
    _objects: dict[RenderRequest, list[dict[str, Any]]] = field(default_factory=dict, init=False, repr=False)

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
            elif self.cache_dir is not None:
                self._chart = self._shared_offline_copy(self.cache_dir)
            else:
                self._workdir = tempfile.TemporaryDirectory(prefix="ray-platform-chart-")
                self._chart = make_offline_copy(self.chart_dir, Path(self._workdir.name))
        return self._chart

    def _shared_offline_copy(self, cache_dir: Path) -> Path:
        """One offline copy per chart content in cache_dir, so that every process renders the
        same path (helm's messages can name it)."""
        self._chart_digest = tree_digest(self.chart_dir)
        folder = cache_dir / f"chart-{self._chart_digest[:16]}"
        if not folder.is_dir():
            cache_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".chart-", dir=cache_dir))
            make_offline_copy(self.chart_dir, staging)
            try:
                staging.rename(folder)
            except OSError:  # another process was first: use its copy
                shutil.rmtree(staging)
        return folder / self.chart_dir.name

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

    def _helm(self, request: RenderRequest) -> tuple[bool, str]:
        """(rendered, helm's manifests or its cleaned error message)."""
        proc = helm.run(*self.arguments(request), major=request.helm_major, env={**os.environ, **RENDER_ENV})
        return (True, proc.stdout) if proc.returncode == 0 else (False, clean_error(proc.stderr))

    def _entry(self, request: RenderRequest) -> Path:
        """The cache file of a request: its name hashes everything helm's answer depends on."""
        assert self.cache_dir is not None and self.chart is not None  # the copy sets _chart_digest
        key = json.dumps([binary_identity(helm.binary(request.helm_major)), self._chart_digest,
                          self.arguments(request), RENDER_ENV,
                          [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in request.values_files]])
        name = hashlib.sha256(key.encode()).hexdigest()
        return self.cache_dir / "answers" / name[:2] / f"{name}.json"

    def _shared(self, request: RenderRequest, wait: bool = True) -> tuple[bool, str] | None:
        """helm's answer from the shared cache, computed here if no process has it yet. None
        (with wait=False) when another process is computing it right now."""
        entry = self._entry(request)
        if not entry.is_file():
            entry.parent.mkdir(parents=True, exist_ok=True)
            with entry.with_suffix(".lock").open("a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    return None
                if not entry.is_file():
                    staged = entry.with_suffix(f".{os.getpid()}.tmp")
                    staged.write_text(json.dumps(self._helm(request)))
                    staged.replace(entry)
        rendered, text = json.loads(entry.read_text())
        return rendered, text

    def _execute(self, request: RenderRequest, wait: bool = True) -> tuple[bool, str] | None:
        shared = self.cache_dir is not None and not self.with_dependency
        return self._shared(request, wait) if shared else self._helm(request)

    def _run(self, request: RenderRequest) -> tuple[bool, str]:
        if request not in self._cache:
            self._cache[request] = self._execute(request)  # type: ignore[assignment]
        return self._cache[request]

    def prefetch(self, requests: Iterable[RenderRequest]) -> None:
        """Render many requests at once, one helm process per core: a test session asks for a
        few hundred renders, and helm spends most of a render starting up on one core. With a
        shared cache, requests another process is rendering right now are taken last, by when
        they are mostly done."""
        todo = [request for request in dict.fromkeys(requests) if request not in self._cache]
        if not todo:
            return
        self.chart  # create the offline copy before the threads share it
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for wait in (False, True):
                results = list(pool.map(lambda request: self._execute(request, wait), todo))
                for request, result in zip(todo, results):
                    if result is not None:
                        self._cache[request] = result
                todo = [request for request in todo if request not in self._cache]

    def render(self, request: RenderRequest) -> list[dict[str, Any]]:
        """The rendered objects; RenderError with helm's message when helm refuses."""
        text = self.manifest_text(request)
        if request not in self._objects:
            self._objects[request] = parse_manifests(text)
        return self._objects[request]

    def manifest_text(self, request: RenderRequest) -> str:
        """helm's output as text; RenderError when helm refuses."""
        rendered, text = self._run(request)
        if not rendered:
            raise RenderError(text)
        return text

    def error(self, request: RenderRequest) -> str | None:
        """helm's error message for the request, or None when it renders."""
        rendered, text = self._run(request)
        return None if rendered else text

    def install_output(self, set_values: Iterable[str] = (), values_files: Iterable[Path] = ()) -> str:
        """What `helm install --dry-run=client` prints (manifests, then NOTES.txt) with the chart's
        defaults, or values_files and set_values over them: helm 4 renders NOTES.txt without a
        cluster, helm 3 cannot. RenderError when it fails."""
        args = ["install", RELEASE, str(self.chart), "--namespace", NAMESPACE, "--dry-run=client"]
        for path in values_files:
            args += ["--values", str(path)]
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
