"""`make up` / `make down`: the platform on the local cluster (no container engine needed), on a
kind cluster, or on the cluster KUBECONFIG names.

    python3 -m cluster.platform_up preflight   # what `make up` checks first (plain python3, fast)
    .venv/bin/python -m cluster.platform_up up [--timeout SECONDS] [--values FILE ...] [--no-tests]
                                               (MONITORING=1: the local cluster's monitoring stack too)
    python3 -m cluster.platform_up down

up:   create the kind cluster `ray-platform` (pinned kind and node image, bootstrap/install_kind.py;
      kubeconfig in .tools/kind/kubeconfig, your ~/.kube/config is left alone) unless KUBECONFIG
      names a cluster; build the chart's dependencies (`helm repo add` + `helm dependency build`);
      install the release with values/dev.yaml; wait for the KubeRay operator Deployment, the
      RayCluster and the RayService to report ready in their status (harness/readiness.py), with
      progress; run `helm test`; print how to open the dashboard and call /imagine.
down: delete the kind cluster; with KUBECONFIG naming another cluster, uninstall the release.

Which cluster: CLUSTER=local or CLUSTER=kind forces one. Otherwise KUBECONFIG's cluster when it
names one, kind when a Docker engine answers, and the local cluster (cluster/local: a real
control plane as host processes and a real node running the release's pods) when none does. Forced
to kind without Docker (or kind), `up` stops at once with one sentence that says what is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

# Standard library only at the top level, like bootstrap/: `preflight` runs on plain python3.
from bootstrap import install_kind
from harness import helm
from harness.tools import CHART_DIR, NAMESPACE, RELEASE, TOOLS_BIN, TOOLS_DIR, VALUES_DIR, ToolMissing

KIND_KUBECONFIG = TOOLS_DIR / "kind" / "kubeconfig"
LOCAL_STATE_DIR = TOOLS_DIR / "local"  # cluster/local's default state folder (kubeconfig inside)
LOCAL_KUBECONFIG = LOCAL_STATE_DIR / "kubeconfig"
CLUSTER_NAME = "ray-platform"
DEV_VALUES = VALUES_DIR / "dev.yaml"
OPERATOR_LABEL = "app.kubernetes.io/name=kuberay-operator"
# The first `make up` pulls the Ray images (~2 GB), and the Stable Diffusion replica installs its
# Python packages (torch alone is GBs) and downloads its model before the service is ready.
DEFAULT_TIMEOUT_S = 2700
HELM_TEST_TIMEOUT = "15m"  # per test Pod (helm waits for each in turn); each has its own deadline

Run = Callable[..., "subprocess.CompletedProcess[str]"]

# --- what is missing, in one sentence each ------------------------------------------------------
NO_DOCKER = ("make up needs Docker to run its kind cluster, and there is no `docker` command here: "
             "install Docker, or point KUBECONFIG at an existing cluster.")
NO_ENGINE = ("make up needs a running Docker engine for its kind cluster, but `docker info` cannot "
             "reach one (the docker command alone is only a client): start Docker, or point "
             "KUBECONFIG at an existing cluster.")
NO_KIND = ("make up needs kind {version} to create its cluster, and none could be installed "
           "({reason}): put kind {version} on PATH, or point KUBECONFIG at an existing cluster.")
BAD_CLUSTER = "CLUSTER={value} is not a cluster make up knows: use CLUSTER=local or CLUSTER=kind."
NO_KUBECONFIG = ("KUBECONFIG names {paths}, and none of these files exists: fix KUBECONFIG, or unset "
                 "it to let make up create a kind cluster.")


class Refused(Exception):
    """The machine cannot do what was asked; str() is one sentence saying what is missing."""


class StepFailed(Exception):
    """A step of `up`/`down` failed; str() names it."""


@dataclass(frozen=True)
class Cluster:
    """Where the platform goes: the kind cluster of `make up`, or an existing one (KUBECONFIG)."""

    kind: bool
    kubeconfig: Path | None  # None: whatever KUBECONFIG says (passed on through the environment)
    kind_binary: Path | None = None
    name: str = CLUSTER_NAME  # of the kind cluster
    local: bool = False  # the local control plane with simulated nodes (cluster/local)

    def kube_args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []

    def describe(self) -> str:
        if self.local:
            return (f"the local cluster (real control plane as host processes, a real node in a "
                    f"network namespace running the operator and the Ray pods as containers, a "
                    f"simulated GPU node; kubeconfig {self.kubeconfig})")
        return (f"kind cluster {self.name} (export KUBECONFIG={self.kubeconfig})" if self.kind
                else f"the cluster of KUBECONFIG={os.environ.get('KUBECONFIG', '')}")


def _ours(kubeconfig: str) -> bool:
    return Path(kubeconfig).expanduser().resolve() in {KIND_KUBECONFIG.resolve(),
                                                       LOCAL_KUBECONFIG.resolve()}


def existing_cluster(environ: dict[str, str]) -> Cluster | None:
    """The cluster KUBECONFIG names, if it names one other than make up's own kind cluster."""
    value = environ.get("KUBECONFIG", "")
    if not value or _ours(value):
        return None
    paths = [p for p in value.split(os.pathsep) if p]
    if not any(Path(p).expanduser().is_file() for p in paths):
        raise Refused(NO_KUBECONFIG.format(paths=", ".join(paths)))
    return Cluster(kind=False, kubeconfig=None)


def docker_engine_problem(which: Callable[[str], str | None] = shutil.which, run: Run = subprocess.run) -> str | None:
    """None when a Docker engine answers; else the sentence saying what is missing."""
    docker = which("docker")
    if docker is None:
        return NO_DOCKER
    try:
        proc = run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                   timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return NO_ENGINE
    return None if proc.returncode == 0 and proc.stdout.strip() else NO_ENGINE


def preflight(environ: dict[str, str], which: Callable[[str], str | None] = shutil.which, run: Run = subprocess.run,
              get_kind: Callable[[], Path] = lambda: install_kind.install(TOOLS_BIN)) -> Cluster:
    """Where `up` will install, or Refused with one sentence, before anything slow happens."""
    forced = environ.get("CLUSTER", "")
    if forced not in ("", "kind", "local"):
        raise Refused(BAD_CLUSTER.format(value=forced))
    if forced == "local":
        return local_cluster()
    existing = None if forced else existing_cluster(environ)
    if existing is not None:
        return existing
    problem = docker_engine_problem(which, run)
    if problem:
        if forced == "kind":
            raise Refused(problem)
        say(f"no Docker engine here, so no kind: using the local cluster ({problem.split(':')[0]})")
        return local_cluster()
    try:
        kind = get_kind()
    except install_kind.KindUnavailable as unavailable:
        raise Refused(NO_KIND.format(version=install_kind.KIND_VERSION, reason=unavailable)) from None
    return Cluster(kind=True, kubeconfig=KIND_KUBECONFIG, kind_binary=kind)


LOCAL_CLUSTER = Cluster(kind=False, kubeconfig=LOCAL_KUBECONFIG, local=True)


def local_cluster() -> Cluster:
    """The local cluster, if this machine can run its real node; Refused naming what is missing."""
    from cluster.node import preflight as node_preflight

    problems = node_preflight.problems()
    if problems:
        raise Refused("make up's local cluster cannot run its real node here: "
                      + "; ".join(problems) + ".")
    return LOCAL_CLUSTER


# --- steps ------------------------------------------------------------------------------------------

def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def checked(what: str, proc: "subprocess.CompletedProcess[str]") -> "subprocess.CompletedProcess[str]":
    """proc, or StepFailed naming the step and helm's (or the tool's) last line of stderr."""
    if proc.returncode != 0:
        detail = (getattr(proc, "stderr", None) or "").strip().splitlines()
        raise StepFailed(f"{what} failed (exit {proc.returncode}){': ' + detail[-1] if detail else ''}")
    return proc


def step(run: Run, what: str, cmd: Sequence[str], **kwargs: Any) -> "subprocess.CompletedProcess[str]":
    """Run one command, its output going to the terminal unless captured; StepFailed on failure."""
    return checked(what, run(list(cmd), text=True, check=False, **kwargs))


def helm_step(run: Run, what: str, *args: str, capture: bool = False) -> "subprocess.CompletedProcess[str]":
    """`helm <args>` (helm 4) as one step; its output goes to the terminal unless captured."""
    return checked(what, helm.run(*args, runner=run, capture_output=capture))


def kind_cluster_exists(cluster: Cluster, run: Run) -> bool:
    proc = step(run, "kind get clusters", [str(cluster.kind_binary), "get", "clusters"], capture_output=True)
    return cluster.name in proc.stdout.split()


def ensure_kind_cluster(cluster: Cluster, run: Run) -> bool:
    """Create the kind cluster, or reuse it; True when it was created now."""
    cluster.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kind = str(cluster.kind_binary)
    if kind_cluster_exists(cluster, run):
        say(f"kind cluster {cluster.name} exists; reusing it")
        step(run, "kind export kubeconfig", [kind, "export", "kubeconfig", "--name", cluster.name,
                                             "--kubeconfig", str(cluster.kubeconfig)])
        return False
    say(f"creating kind cluster {cluster.name} ({install_kind.KIND_NODE_IMAGE.split('@')[0]})")
    step(run, "kind create cluster", [kind, "create", "cluster", "--name", cluster.name, "--image",
                                      install_kind.KIND_NODE_IMAGE, "--kubeconfig", str(cluster.kubeconfig),
                                      "--wait", "180s"])
    return True


def delete_kind_cluster(cluster: Cluster, run: Run) -> None:
    say(f"deleting kind cluster {cluster.name}")
    step(run, "kind delete cluster", [str(cluster.kind_binary), "delete", "cluster", "--name", cluster.name,
                                      "--kubeconfig", str(cluster.kubeconfig)])
    cluster.kubeconfig.unlink(missing_ok=True)


def build_dependencies(run: Run, chart_dir: Path | None = None) -> None:
    from harness.render import dependency_archive, dependency_build_steps

    chart_dir = chart_dir or CHART_DIR
    if dependency_archive(chart_dir) is not None:
        say(f"chart dependencies present ({dependency_archive(chart_dir).name})")
        return
    say("building chart dependencies (kuberay-operator)")
    for what, args in dependency_build_steps(chart_dir):
        helm_step(run, what, *args)


def other_operators(cluster: Cluster, release: str = RELEASE, namespace: str = NAMESPACE) -> list[tuple[str, str]]:
    """(namespace, name) of KubeRay operators in the cluster that are not this release's: a
    second operator would reconcile the same resources, so the release then installs none."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = client.AppsV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig) if cluster.kubeconfig else None))
    try:
        found = api.list_deployment_for_all_namespaces(label_selector=OPERATOR_LABEL).items
    except ApiException:
        return []  # not allowed to look cluster-wide: install our own
    return [(d.metadata.namespace, d.metadata.name) for d in found
            if not (d.metadata.namespace == namespace and (d.metadata.labels or {}).get("app.kubernetes.io/instance") == release)]


def install_release(cluster: Cluster, run: Run, values: Sequence[Path], set_values: Sequence[str] = (),
                    chart: Path | None = None, release: str = RELEASE, namespace: str = NAMESPACE) -> None:
    args = ["upgrade", "--install", release, str(chart or CHART_DIR), "--namespace", namespace, "--create-namespace",
            *cluster.kube_args()]
    for path in values:
        args += ["--values", str(path)]
    for assignment in set_values:
        args += ["--set", assignment]
    say(f"installing release {release} into namespace {namespace}")
    helm_step(run, "helm upgrade --install", *args)


def release_objects(cluster: Cluster, run: Run, release: str = RELEASE, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    import yaml

    proc = helm_step(run, "helm get manifest", "get", "manifest", release, "--namespace", namespace, *cluster.kube_args(),
                     capture=True)
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def release_values(cluster: Cluster, run: Run, release: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, Any]:
    proc = helm_step(run, "helm get values", "get", "values", release, "--all", "--output", "json", "--namespace",
                     namespace, *cluster.kube_args(), capture=True)
    return json.loads(proc.stdout or "{}")


def readiness_targets(objects: list[dict[str, Any]], values: dict[str, Any], release: str = RELEASE,
                      namespace: str = NAMESPACE, operator: tuple[str, str] | None = None) -> list[Any]:
    """What to wait for: the operator (this release's, or the one already running), and every
    RayCluster and RayService of the release."""
    from harness.readiness import Target

    targets = []
    if (values.get("kuberay-operator") or {}).get("enabled", True):
        targets.append(Target("Deployment", "kuberay-operator", namespace,
                              f"{OPERATOR_LABEL},app.kubernetes.io/instance={release}"))
    elif operator is not None:
        targets.append(Target("Deployment", operator[1], operator[0]))
    for obj in objects:
        if obj.get("kind") in ("RayCluster", "RayService"):
            targets.append(Target(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace") or namespace))
    return targets


def wait_ready(cluster: Cluster, targets: list[Any], timeout: float, namespace: str = NAMESPACE, **options: Any) -> None:
    from harness import readiness

    say(f"waiting up to {int(timeout)}s for {', '.join(map(str, targets))}")
    fetch = readiness.KubeFetcher(str(cluster.kubeconfig) if cluster.kubeconfig else None)
    try:
        readiness.wait_until_ready(targets, fetch, timeout, **options)
    except readiness.NotReady as not_ready:
        raise StepFailed(f"the platform did not become ready: {not_ready}\n"
                         f"    look closer: kubectl -n {namespace} get pods; kubectl -n {namespace} describe "
                         "raycluster,rayservice; kubectl -n <operator namespace> logs deploy/<operator>") from None


def run_helm_test(cluster: Cluster, run: Run, release: str = RELEASE, namespace: str = NAMESPACE) -> None:
    say("running helm test")
    helm_step(run, "helm test", "test", release, "--namespace", namespace, "--timeout", HELM_TEST_TIMEOUT, "--logs",
              *cluster.kube_args())


def access_instructions(cluster: Cluster, objects: list[dict[str, Any]], values: dict[str, Any],
                        namespace: str = NAMESPACE) -> str:
    from harness.readiness import operator_secret_name

    kubectl = f"kubectl -n {namespace}"
    lines = [f"The platform is up on {cluster.describe()}."]
    auth = values.get("auth") or {}
    for obj in objects:
        if obj.get("kind") == "RayCluster":
            name = obj["metadata"]["name"]
            lines += ["", f"Ray dashboard of RayCluster {name}:",
                      f"  {kubectl} port-forward svc/{name}-head-svc 8265:8265",
                      "  then open http://localhost:8265"]
            if auth.get("mode") == "token":
                secret = auth.get("existingSecret") or operator_secret_name(name)
                lines += ["  it asks for the cluster's token (the ray CLI reads it from RAY_AUTH_TOKEN):",
                          f"  export RAY_AUTH_TOKEN=$({kubectl} get secret {secret} -o jsonpath='{{.data.auth_token}}' | base64 -d)"]
        if obj.get("kind") == "RayService":
            name = obj["metadata"]["name"]
            sd = values.get("stableDiffusion") or {}
            prefix = ((sd.get("app") or {}).get("routePrefix") or "/").rstrip("/")
            size = ((sd.get("apiIngress") or {}).get("userConfig") or {}).get("default_img_size", 512)
            lines += ["", f"Stable Diffusion (RayService {name}):",
                      f"  {kubectl} port-forward svc/{name}-serve-svc 8000:8000",
                      f"  curl -o fox.png \"http://localhost:8000{prefix}/imagine?prompt=a+red+fox+in+the+snow&img_size={size}\""]
    lines += ["", "`make down` removes " + (f"the kind cluster {CLUSTER_NAME}." if cluster.kind
                                            else f"the release {RELEASE} (the cluster stays).")]
    return "\n".join(lines)


# --- commands ---------------------------------------------------------------------------------------

@dataclass
class UpOptions:
    timeout: float = DEFAULT_TIMEOUT_S
    values: list[Path] = field(default_factory=lambda: [DEV_VALUES])
    tests: bool = True
    serve: bool = True  # the local cluster: wait for the RayService and /imagine too
    # the local cluster: the prometheus-operator and a Prometheus scraping the release (MONITORING=1)
    monitoring: bool = False


def up(cluster: Cluster, options: UpOptions, run: Run = subprocess.run) -> None:
    say(f"target: {cluster.describe()}")
    if cluster.local:
        from cluster.local.controlplane import Layout
        from cluster.node import platform  # needs the virtualenv (PyYAML, kubernetes)
        from harness.readiness import NotReady
        try:
            platform.up(Layout(state_dir=LOCAL_STATE_DIR), options.values, options.timeout, say=say,
                        serve=options.serve, tests=options.tests, monitoring=options.monitoring)
        except (RuntimeError, NotReady) as failed:
            raise StepFailed(str(failed)) from None
        return
    if cluster.kind:
        ensure_kind_cluster(cluster, run)
    build_dependencies(run)
    set_values = []
    others = other_operators(cluster)
    if others:
        say(f"a KubeRay operator already runs ({others[0][0]}/{others[0][1]}): installing without one")
        set_values.append("kuberay-operator.enabled=false")
    install_release(cluster, run, options.values, set_values)
    objects, values = release_objects(cluster, run), release_values(cluster, run)
    wait_ready(cluster, readiness_targets(objects, values, operator=others[0] if others else None), options.timeout)
    if options.tests:
        run_helm_test(cluster, run)
    print("\n" + access_instructions(cluster, objects, values), flush=True)


def local_cluster_exists() -> bool:
    return LOCAL_STATE_DIR.is_dir()


def down(environ: dict[str, str], run: Run = subprocess.run, which: Callable[[str], str | None] = shutil.which) -> str:
    forced = environ.get("CLUSTER", "")
    if forced == "local" or (not forced and local_cluster_exists()):
        from cluster.local import lifecycle  # needs PyYAML: `make down` runs it in the virtualenv
        from cluster.local.controlplane import Layout
        messages: list[str] = []
        lifecycle.down(Layout(state_dir=LOCAL_STATE_DIR), say=messages.append)
        return " ".join(messages)
    existing = None if forced else existing_cluster(environ)
    if existing is not None:
        say(f"uninstalling release {RELEASE} from {existing.describe()} (the cluster stays)")
        helm_step(run, "helm uninstall", "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--ignore-not-found")
        return f"release {RELEASE} uninstalled"
    kind = TOOLS_BIN / "kind" if (TOOLS_BIN / "kind").is_file() else (Path(which("kind")) if which("kind") else None)
    if kind is None:
        return f"no kind here, so no kind cluster {CLUSTER_NAME} to remove"
    problem = docker_engine_problem(which, run)
    if problem:
        raise Refused(problem.replace("make up needs", "make down needs"))
    cluster = Cluster(kind=True, kubeconfig=KIND_KUBECONFIG, kind_binary=kind)
    if not kind_cluster_exists(cluster, run):
        return f"no kind cluster {CLUSTER_NAME}: nothing to remove"
    delete_kind_cluster(cluster, run)
    return f"kind cluster {CLUSTER_NAME} deleted"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("preflight", help="check what `up` needs, install kind; exit 1 with one sentence if missing")
    up_parser = sub.add_parser("up", help="cluster, install, wait, helm test")
    up_parser.add_argument("--timeout", type=float, default=float(os.environ.get("UP_TIMEOUT") or DEFAULT_TIMEOUT_S),
                           help=f"seconds to wait for readiness (default {DEFAULT_TIMEOUT_S}, or $UP_TIMEOUT)")
    up_parser.add_argument("--values", type=Path, action="append", help="values files (default values/dev.yaml)")
    up_parser.add_argument("--no-tests", action="store_true", help="skip helm test")
    up_parser.add_argument("--clusters-only", action="store_true",
                           help="local cluster: stop once the RayClusters are ready (no wait for "
                                "the RayService, no /imagine, no helm test)")
    sub.add_parser("down", help="delete the kind cluster (or uninstall the release from KUBECONFIG's cluster)")
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    try:
        if args.command == "preflight":
            cluster = preflight(environ)
            say(f"preflight ok: {cluster.describe()}")
        elif args.command == "up":
            up(preflight(environ), UpOptions(args.timeout, args.values or [DEV_VALUES], not args.no_tests,
                                                not args.clusters_only,
                                                monitoring=environ.get("MONITORING", "") not in ("", "0")))
        else:
            say(down(environ))
    except Refused as refused:
        print(refused, file=sys.stderr, flush=True)
        return 1
    except (StepFailed, ToolMissing) as failed:
        print(f"make {args.command}: {failed}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
