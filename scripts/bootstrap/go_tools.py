"""Build the Go-pinned tools into .tools/bin (`make tools`). Standard library only.

    python3 -m bootstrap.go_tools [--only NAME ...] [--list]

Every tool is a main package of a module pinned by a committed go.mod/go.sum:
- tools/go.mod: kube-apiserver, kube-controller-manager, kube-scheduler and kubectl
  (k8s.io/kubernetes), etcd, kwok and kwokctl, helm 4 and helm 3, kind, chart-testing's ct;
- tools/kuberay-operator/go.mod: the KubeRay operator, in a module of its own so that it keeps
  the k8s.io and controller-runtime releases its own go.mod names;
- tools/node/<component>/go.mod: the real node's containerd, runc, CNI plugins, CoreDNS,
  crictl and kube-router (the NetworkPolicy firewall), each in a module of its own (their
  dependency graphs disagree with the control plane's); kubelet and kube-proxy come from
  tools/go.mod's k8s.io/kubernetes.

Each tool belongs to a group (`--group helm|control-plane|node|release`), so that a make target
builds only what it uses.

Idempotent: a tool is rebuilt only when its binary is missing or its module files or build flags
changed (a stamp beside the binaries records them); a rebuild reuses Go's build cache. A fresh
clone on the same machine (CI's) takes each binary from the machine's cache of linked binaries
(`~/.cache/ray-platform/go-bin/<inputs and Go version>/`, hard links, no copy) instead of linking
30 binaries again (about 75 s with a warm build cache). Version
strings are set with -ldflags the way each project's own release build sets them, so that
`kube-apiserver --version`, `helm version` and the API server's discovery answer report the
pinned release (helm's kubeVersion checks need a parseable server version).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO / "tools"
OPERATOR_DIR = TOOLS_DIR / "kuberay-operator"
NODE_DIR = TOOLS_DIR / "node"
BIN = REPO / ".tools" / "bin"
STAMP = BIN / ".go-tools.json"
# Beside the images cache (images.build.cache_root, not imported: this module needs only the
# standard library).
BIN_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ray-platform" / "go-bin"


GROUPS = ("helm", "control-plane", "node", "release", "monitoring")


@dataclass(frozen=True)
class Tool:
    name: str          # binary name in .tools/bin
    module_dir: Path   # the go.mod that pins it
    package: str       # its main package
    ldflags: tuple[str, ...] = ()
    group: str = "control-plane"
    tags: tuple[str, ...] = ()
    # cgo only where the project needs it: runc's nsenter and libseccomp (RuntimeDefault seccomp
    # must be real), which needs gcc, pkg-config and Debian's libseccomp-dev.
    cgo: bool = False


def module_versions(module_dir: Path) -> dict[str, str]:
    """Module path -> version from the require lines of module_dir/go.mod."""
    versions: dict[str, str] = {}
    in_require = False
    for raw in (module_dir / "go.mod").read_text().splitlines():
        line = raw.split("//")[0].strip()
        if line.startswith("require ("):
            in_require = True
            continue
        if in_require and line == ")":
            in_require = False
            continue
        parts = line.removeprefix("require ").split()
        if (in_require or raw.startswith("require ")) and len(parts) == 2:
            versions[parts[0]] = parts[1]
    return versions


def kubernetes_version_flags(version: str) -> tuple[str, ...]:
    """What kubernetes' hack/lib/version.sh sets, for the component-base and client-go copies."""
    match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", version)
    if not match:
        raise SystemExit(f"k8s.io/kubernetes version {version!r} in tools/go.mod is not vX.Y.Z")
    major, minor = match.groups()
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.gitVersion={version}", f"-X {package}.gitMajor={major}",
                  f"-X {package}.gitMinor={minor}", f"-X {package}.gitTreeState=clean"]
    return tuple(flags)


def helm_flags(major: int, version: str, client_go: str) -> tuple[str, ...]:
    """What helm's Makefile sets: the version, a clean tree, and (Helm 3) the default
    Kubernetes version of `helm template`, derived from the client-go it is built with."""
    base = f"helm.sh/helm/v{major}"
    flags = [f"-X {base}/internal/version.version={version}",
             f"-X {base}/internal/version.metadata=",
             f"-X {base}/internal/version.gitTreeState=clean"]
    if major == 3:
        k8s_major, k8s_minor = "1", client_go.removeprefix("v0.").split(".")[0]
        for package in (f"{base}/pkg/chartutil", f"{base}/pkg/lint/rules"):
            flags += [f"-X {package}.k8sVersionMajor={k8s_major}",
                      f"-X {package}.k8sVersionMinor={k8s_minor}"]
    return tuple(flags)


def replaced_version(module_dir: Path, module: str) -> str:
    """The version a replace line of module_dir/go.mod pins `module` to."""
    pattern = re.compile(rf"^\s*{re.escape(module)}\s*=>\s*{re.escape(module)}\s+(\S+)", re.M)
    match = pattern.search((module_dir / "go.mod").read_text())
    if not match:
        raise SystemExit(f"no replace line for {module} in {module_dir / 'go.mod'}")
    return match.group(1)


@functools.cache
def module_source(module: str, tools_dir: Path, make_target: str) -> Path:
    """The source folder of `module` in Go's module cache, at the version tools_dir/go.mod pins
    (the manifests the cluster code reads from a built tool's own module); fails naming the make
    target that fetches it."""
    result = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", module],
                            cwd=tools_dir, text=True, capture_output=True)
    path = Path(result.stdout.strip())
    if result.returncode != 0 or not path.is_dir():
        raise RuntimeError(f"the {module} module is not in Go's module cache "
                           f"({result.stderr.strip()}): run `{make_target}`")
    return path


def all_tools() -> list[Tool]:
    pins = module_versions(TOOLS_DIR)
    kube = kubernetes_version_flags(pins["k8s.io/kubernetes"])
    client_go = replaced_version(TOOLS_DIR, "k8s.io/client-go")
    kwok = (f"-X sigs.k8s.io/kwok/pkg/consts.Version={pins['sigs.k8s.io/kwok']}",)
    # Helm and ct first: the offline checks (make check, make lint, most of make test) need
    # only them, and they build in about a minute; the control plane takes ten.
    tools = [
        Tool("helm4", TOOLS_DIR, "helm.sh/helm/v4/cmd/helm",
             helm_flags(4, pins["helm.sh/helm/v4"], client_go), group="helm"),
        Tool("helm3", TOOLS_DIR, "helm.sh/helm/v3/cmd/helm",
             helm_flags(3, pins["helm.sh/helm/v3"], client_go), group="helm"),
        Tool("ct", TOOLS_DIR, "github.com/helm/chart-testing/v3/ct",
             (f"-X github.com/helm/chart-testing/v3/ct/cmd.Version="
              f"{pins['github.com/helm/chart-testing/v3']}",), group="helm"),
    ]
    tools += [Tool(name, TOOLS_DIR, f"k8s.io/kubernetes/cmd/{name}", kube)
              for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")]
    tools += [
        Tool("etcd", TOOLS_DIR, "go.etcd.io/etcd/server/v3"),
        Tool("kwok", TOOLS_DIR, "sigs.k8s.io/kwok/cmd/kwok", kwok),
        Tool("kwokctl", TOOLS_DIR, "sigs.k8s.io/kwok/cmd/kwokctl", kwok),
        Tool("kind", TOOLS_DIR, "sigs.k8s.io/kind"),
        Tool("kuberay-operator", OPERATOR_DIR, "github.com/ray-project/kuberay/ray-operator"),
    ]
    return tools + node_tools(kube) + release_tools() + monitoring_tools()


def node_tools(kube_flags: tuple[str, ...]) -> list[Tool]:
    """The real node: kubelet and kube-proxy at the control plane's version, containerd v2, runc
    with seccomp, the CNI plugins, CoreDNS, crictl and kube-router's NetworkPolicy firewall."""
    def pin(component: str, module: str) -> str:
        return module_versions(NODE_DIR / component)[module]

    containerd = "github.com/containerd/containerd/v2"
    containerd_version = pin("containerd", containerd)
    containerd_flags = (f"-X {containerd}/version.Version={containerd_version}",
                        f"-X {containerd}/version.Package={containerd}")
    # no_btrfs: btrfs needs cgo and the root filesystem is ext4 (overlayfs snapshotter).
    containerd_tags = ("no_btrfs", "no_devmapper", "no_zfs")
    runc = "github.com/opencontainers/runc"
    cni = "github.com/containernetworking/plugins"
    coredns = "github.com/coredns/coredns"
    crictl = "sigs.k8s.io/cri-tools"
    kube_router = "github.com/cloudnativelabs/kube-router/v2"
    return [
        *(Tool(name, TOOLS_DIR, f"k8s.io/kubernetes/cmd/{name}", kube_flags, group="node")
          for name in ("kubelet", "kube-proxy")),
        *(Tool(name, NODE_DIR / "containerd", f"{containerd}/cmd/{name}", containerd_flags,
               group="node", tags=containerd_tags)
          for name in ("containerd", "containerd-shim-runc-v2", "ctr")),
        Tool("runc", NODE_DIR / "runc", runc, (f"-X main.version={pin('runc', runc).lstrip('v')}",),
             group="node", tags=("seccomp",), cgo=True),
        *(Tool(name, NODE_DIR / "cni-plugins", f"{cni}/plugins/{kind}/{name}",
               (f"-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion="
                f"{pin('cni-plugins', cni)}",), group="node")
          for kind, name in (("main", "bridge"), ("main", "loopback"), ("ipam", "host-local"),
                             ("meta", "portmap"))),
        # Our own main (tools/node/coredns/main.go): CoreDNS with the Corefile's plugins only.
        Tool("coredns", NODE_DIR / "coredns", "github.com/ray-platform/ray-platform/tools/node/coredns",
             (f"-X {coredns}/coremain.GitCommit={pin('coredns', coredns)}",), group="node"),
        Tool("crictl", NODE_DIR / "cri-tools", f"{crictl}/cmd/crictl",
             (f"-X {crictl}/pkg/version.Version={pin('cri-tools', crictl)}",), group="node"),
        # The NetworkPolicy firewall. Its Makefile also sets BuildDate; a date would change the
        # flags, and so force a rebuild, on every run: the version alone stops the "Malformed
        # version" warning an empty one logs at start.
        Tool("kube-router", NODE_DIR / "kube-router", f"{kube_router}/cmd/kube-router",
             (f"-X {kube_router}/pkg/version.Version={pin('kube-router', kube_router)}",),
             group="node"),
    ]


def release_tools() -> list[Tool]:
    """The chart's publishing path: the CNCF distribution registry (the OCI registry the release
    tests push to) and cosign (signs and verifies the pushed chart), from tools/release/go.mod, a
    module of its own because cosign's dependency graph is not the control plane's."""
    release_dir = TOOLS_DIR / "release"
    pins = module_versions(release_dir)
    distribution = "github.com/distribution/distribution/v3"
    cosign = "github.com/sigstore/cosign/v3"
    # As distribution's Makefile does; without it `registry --version` says "+unknown".
    registry_flags = (f"-X {distribution}/version.version={pins[distribution]}",
                      f"-X {distribution}/version.mainpkg={distribution}")
    # As cosign's Makefile does, through sigs.k8s.io/release-utils; the proxy carries no commit.
    cosign_flags = (f"-X sigs.k8s.io/release-utils/version.gitVersion={pins[cosign]}",
                    "-X sigs.k8s.io/release-utils/version.gitTreeState=clean")
    return [
        Tool("registry", release_dir, f"{distribution}/cmd/registry", registry_flags,
             group="release"),
        Tool("cosign", release_dir, f"{cosign}/cmd/cosign", cosign_flags, group="release"),
    ]


def monitoring_tools() -> list[Tool]:
    """The local cluster's monitoring stack (`make up MONITORING=1`, tests/node/test_monitoring_live.py):
    Prometheus v3, the prometheus-operator with its config reloader and kube-state-metrics, each
    from a module of its own under tools/monitoring (the operator pins an older
    prometheus/prometheus than v3.16; kube-state-metrics its own client-go)."""
    monitoring_dir = TOOLS_DIR / "monitoring"
    prometheus = "github.com/prometheus/prometheus"
    operator = "github.com/prometheus-operator/prometheus-operator"
    common = "github.com/prometheus/common/version"

    def version_flags(module_dir: Path, module: str) -> tuple[str, ...]:
        # As both projects' release builds do (promu / the operator's Makefile), minus the build
        # date and user: those would change the flags, and so force a rebuild, on every run.
        return (f"-X {common}.Version={module_versions(module_dir)[module].lstrip('v')}",
                f"-X {common}.Branch=HEAD")

    prometheus_dir = monitoring_dir / "prometheus"
    # The module's v0.MNN.P is Prometheus M.NN.P (v0.316.0 = 3.16.0).
    module_version = module_versions(prometheus_dir)[prometheus]
    match = re.fullmatch(r"v0\.(\d)(\d+)\.(\d+)", module_version)
    if not match:
        raise SystemExit(f"{prometheus} {module_version} in {prometheus_dir}/go.mod is not v0.MNN.P")
    prometheus_flags = (f"-X {common}.Version={'.'.join(match.groups())}", f"-X {common}.Branch=HEAD")
    operator_dir = monitoring_dir / "prometheus-operator"
    ksm_dir = monitoring_dir / "kube-state-metrics"
    ksm = "k8s.io/kube-state-metrics/v2"
    return [
        # Kubernetes service discovery only (the operator's PodMonitors compile to it): the
        # other two dozen discovery plugins would double the build for nothing.
        Tool("prometheus", prometheus_dir, f"{prometheus}/cmd/prometheus", prometheus_flags,
             group="monitoring", tags=("remove_all_sd", "enable_kubernetes_sd")),
        *(Tool(name, operator_dir, f"{operator}/cmd/{package}", version_flags(operator_dir, operator),
               group="monitoring")
          for name, package in (("prometheus-operator", "operator"),
                                ("prometheus-config-reloader", "prometheus-config-reloader"))),
        # The pod state the chart's worker pod alerts read (kube_pod_status_ready, ...), as
        # kube-prometheus-stack runs it.
        Tool("kube-state-metrics", ksm_dir, ksm, version_flags(ksm_dir, ksm), group="monitoring"),
    ]


def fingerprint(tool: Tool) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((tool.module_dir / name).read_bytes())
    digest.update(" ".join((tool.package, *tool.ldflags, *tool.tags, str(tool.cgo))).encode())
    return digest.hexdigest()


def binary_identity(path: Path) -> str:
    """Size and mtime of a built binary: a binary replaced by anything else gets rebuilt."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def up_to_date(tool: Tool, stamp: dict[str, dict[str, str]]) -> bool:
    path = BIN / tool.name
    recorded = stamp.get(tool.name)
    return (isinstance(recorded, dict) and path.is_file() and recorded.get("inputs") == fingerprint(tool)
            and recorded.get("binary") == binary_identity(path))


@functools.cache
def go_version() -> str:
    return subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True,
                          check=True, env=go_env()).stdout.strip()


def cached_binary(tool: Tool) -> Path | None:
    """Where the machine's cache keeps this tool as built from these inputs by this Go. None for
    cgo tools: their binaries also depend on C libraries and headers no fingerprint here names
    (runc links libseccomp), and they build in a second from Go's build cache anyway."""
    if tool.cgo:
        return None
    key = hashlib.sha256(f"{fingerprint(tool)} {go_version()}".encode()).hexdigest()[:24]
    return BIN_CACHE / key / tool.name


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link where both sides share a filesystem (2 GB of binaries stored once), a copy
    elsewhere. The target is unlinked first: nothing ever writes through a shared inode."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def take_from_cache(tool: Tool) -> bool:
    cached = cached_binary(tool)
    if cached is None or not cached.is_file():
        return False
    link_or_copy(cached, BIN / tool.name)
    return True


def keep_in_cache(tool: Tool) -> None:
    cached = cached_binary(tool)
    if cached is None:
        return
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{cached.name}.partial")
    link_or_copy(BIN / tool.name, partial)
    partial.replace(cached)  # atomic: a concurrent clone never takes half a binary


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # The machine's own Go: never let a toolchain line trigger a download.
    env.setdefault("GOTOOLCHAIN", "local")
    # Static binaries like the upstream release builds; no C toolchain needed.
    env["CGO_ENABLED"] = "0"
    # go.mod and go.sum are committed and complete: a build must not rewrite them.
    env["GOFLAGS"] = " ".join(flag for flag in env.get("GOFLAGS", "").split()
                              if not flag.startswith("-mod=")) + " -mod=readonly"
    return env


def build(tool: Tool, env: dict[str, str]) -> float:
    started = time.monotonic()
    output = BIN / tool.name
    # A binary taken from the cache is a hard link: go build must write a new file, not into it.
    output.unlink(missing_ok=True)
    command = ["go", "build", "-trimpath", "-ldflags", " ".join(tool.ldflags),
               *(["-tags", ",".join(tool.tags)] if tool.tags else []),
               "-o", str(output), tool.package]
    if tool.cgo:
        env = {**env, "CGO_ENABLED": "1"}
    result = subprocess.run(command, cwd=tool.module_dir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"building {tool.name} from {tool.package} failed:\n{result.stdout}")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="build only these tools (repeatable)")
    parser.add_argument("--group", action="append", default=[], choices=GROUPS,
                        help="build only the tools of these groups (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the tools and exit")
    args = parser.parse_args(argv)
    tools = all_tools()
    if args.list:
        for tool in tools:
            print(f"{tool.name}\t{tool.group}\t{tool.package}\t{tool.module_dir.relative_to(REPO)}")
        return 0
    unknown = set(args.only) - {tool.name for tool in tools}
    if unknown:
        parser.error(f"unknown tool(s): {', '.join(sorted(unknown))}")
    if shutil.which("go") is None:
        raise SystemExit("make tools needs Go (1.26 or newer) on PATH to build the pinned tools "
                         "in tools/go.mod; install Go, then run make tools again")
    selected = [tool for tool in tools
                if (not args.only or tool.name in args.only)
                and (not args.group or tool.group in args.group)]
    BIN.mkdir(parents=True, exist_ok=True)
    stamp = json.loads(STAMP.read_text()) if STAMP.is_file() else {}
    started = time.monotonic()
    built, cached = install(selected, stamp, go_env())
    total = time.monotonic() - started
    if built or cached:
        print(f"go tools: built {len(built)}, took {len(cached)} from {BIN_CACHE} "
              f"({len(selected)} selected) in {total:.0f} s into {BIN.relative_to(REPO)}",
              file=sys.stderr)
    else:
        print(f"go tools: all {len(selected)} up to date in {BIN.relative_to(REPO)}",
              file=sys.stderr)
    return 0


def install(tools: list[Tool], stamp: dict[str, dict[str, str]],
            env: dict[str, str]) -> tuple[list[str], list[str]]:
    """Bring each tool in BIN up to date: as it is, from the machine's cache, or built (and then
    cached). Returns the names built and the names taken from the cache."""
    built: list[str] = []
    cached: list[str] = []
    for tool in tools:
        if up_to_date(tool, stamp):
            # Binaries built before the cache existed seed it, so the next clone finds them.
            if (cached_file := cached_binary(tool)) is not None and not cached_file.is_file():
                keep_in_cache(tool)
            continue
        if take_from_cache(tool):
            cached.append(tool.name)
        else:
            print(f"go tools: building {tool.name} ({tool.package}) ...", file=sys.stderr, flush=True)
            seconds = build(tool, env)
            print(f"go tools: {tool.name} built in {seconds:.0f} s", file=sys.stderr, flush=True)
            keep_in_cache(tool)
            built.append(tool.name)
        stamp[tool.name] = {"inputs": fingerprint(tool),
                            "binary": binary_identity(BIN / tool.name)}
        STAMP.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    return built, cached


if __name__ == "__main__":
    sys.exit(main())
