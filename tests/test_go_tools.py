"""The Go-built tools: pins read from the committed go.mod files, version flags as each project's
release build sets them, and the binaries `make tools` built report those versions."""
from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from bootstrap import go_tools
from cluster.local import controlplane, fleet


def test_pins_come_from_the_committed_go_mod() -> None:
    pins = go_tools.module_versions(go_tools.TOOLS_DIR)
    assert pins["k8s.io/kubernetes"].startswith("v1.37.")
    assert pins["helm.sh/helm/v4"].startswith("v4.3.")
    assert pins["helm.sh/helm/v3"].startswith("v3.21.")
    assert pins["go.etcd.io/etcd/server/v3"].startswith("v3.")
    assert "sigs.k8s.io/kwok" in pins and "github.com/helm/chart-testing/v3" in pins
    operator = go_tools.module_versions(go_tools.OPERATOR_DIR)
    assert operator["github.com/ray-project/kuberay/ray-operator"].startswith("v1.")


def test_every_staging_module_is_replaced_at_the_control_planes_release() -> None:
    """k8s.io/kubernetes requires each staging module at v0.0.0; ours must replace every one of
    them (read from the go.mod that Go downloaded) with the release matching the control plane."""
    release = go_tools.module_versions(go_tools.TOOLS_DIR)["k8s.io/kubernetes"]
    expected = "v0." + release.removeprefix("v1.")
    gomodcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                                check=True).stdout.strip()
    upstream = Path(gomodcache, "cache", "download", "k8s.io", "kubernetes", "@v", f"{release}.mod")
    staging = {line.split()[0] for line in upstream.read_text().splitlines()
               if line.strip().endswith(" v0.0.0") and line.strip().startswith("k8s.io/")}
    assert len(staging) > 20, staging
    replaced = {module: go_tools.replaced_version(go_tools.TOOLS_DIR, module) for module in staging}
    assert replaced == {module: expected for module in staging}


def test_kubernetes_and_helm_version_flags() -> None:
    flags = " ".join(go_tools.kubernetes_version_flags("v1.37.2"))
    assert "k8s.io/component-base/version.gitVersion=v1.37.2" in flags
    assert "k8s.io/client-go/pkg/version.gitMinor=37" in flags
    helm3 = " ".join(go_tools.helm_flags(3, "v3.21.4", "v0.37.2"))
    assert "helm.sh/helm/v3/internal/version.version=v3.21.4" in helm3
    assert "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37" in helm3
    helm4 = " ".join(go_tools.helm_flags(4, "v4.3.2", "v0.37.2"))
    assert "helm.sh/helm/v4/internal/version.version=v4.3.2" in helm4
    assert "chartutil" not in helm4
    with pytest.raises(SystemExit):
        go_tools.kubernetes_version_flags("master")


@pytest.mark.parametrize("name, args, expected", [
    ("helm4", ["version", "--template", "{{.Version}}"], "v4.3."),
    ("helm3", ["version", "--template", "{{.Version}}"], "v3.21."),
    ("kube-apiserver", ["--version"], "Kubernetes v1.37."),
    ("kubectl", ["version", "--client"], "Client Version: v1.37."),
    ("kwokctl", ["--version"], "kwokctl version v0.8."),
    ("ct", ["version"], "v3."),
])
def test_built_binaries_report_the_pinned_versions(name: str, args: list[str], expected: str) -> None:
    binary = go_tools.BIN / name
    assert binary.is_file(), f"{binary} missing: run `make tools`"
    output = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)
    assert expected in output.stdout + output.stderr, output.stdout + output.stderr


def test_a_replaced_binary_is_not_taken_for_up_to_date(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(go_tools, "BIN", tmp_path)
    tool = go_tools.all_tools()[0]
    (tmp_path / tool.name).write_text("built")
    stamp = {tool.name: {"inputs": go_tools.fingerprint(tool),
                         "binary": go_tools.binary_identity(tmp_path / tool.name)}}
    assert go_tools.up_to_date(tool, stamp)
    (tmp_path / tool.name).write_text("something else")
    assert not go_tools.up_to_date(tool, stamp)


def test_simulated_fleet_stays_on_loopback_and_taints_gpu_nodes() -> None:
    loopback = ipaddress.ip_network("127.0.0.0/8")
    assert ipaddress.ip_network(controlplane.DEFAULT_POD_CIDR).subnet_of(loopback)
    assert ipaddress.ip_address(controlplane.NODE_IP) in loopback
    nodes = fleet.nodes(fleet.UP_FLEET)
    assert len({n["spec"]["podCIDR"] for n in nodes}) == len(nodes)
    for node in nodes:
        assert ipaddress.ip_network(node["spec"]["podCIDR"]).subnet_of(loopback)
        gpu = "nvidia.com/gpu" in node["status"]["capacity"]
        assert (fleet.GPU_TAINT in node["spec"].get("taints", [])) == gpu
    cpu_pools = [p for p in fleet.UP_FLEET.pools if not p.is_gpu]
    gpu_pools = [p for p in fleet.UP_FLEET.pools if p.is_gpu]
    assert sum(p.count for p in cpu_pools) >= 3 and sum(p.count for p in gpu_pools) >= 1
    assert all(p.gpus == 4 for p in gpu_pools)


HELLO = 'package main\n\nimport "fmt"\n\nvar greeting = "hello"\n\nfunc main() { fmt.Println(greeting) }\n'


@pytest.fixture
def hello_tool(tmp_path, monkeypatch) -> go_tools.Tool:
    """A one-file module: the cache's logic on a real go build, in about a second."""
    module = tmp_path / "hello"
    module.mkdir()
    (module / "go.mod").write_text("module example.com/hello\n\ngo 1.26.0\n")
    (module / "go.sum").write_text("")
    (module / "main.go").write_text(HELLO)
    monkeypatch.setattr(go_tools, "BIN_CACHE", tmp_path / "cache")
    return go_tools.Tool("hello", module, "example.com/hello", group="helm")


def use_bin(monkeypatch, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(go_tools, "BIN", folder)
    monkeypatch.setattr(go_tools, "STAMP", folder / ".go-tools.json")
    return folder


def run(binary: Path) -> str:
    return subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.strip()


def test_a_fresh_clone_takes_the_binary_from_the_machines_cache(hello_tool, tmp_path, monkeypatch) -> None:
    first = use_bin(monkeypatch, tmp_path / "clone-1")
    assert go_tools.install([hello_tool], {}, go_tools.go_env()) == (["hello"], [])
    cached = go_tools.cached_binary(hello_tool)
    assert cached is not None and cached.is_file() and run(first / "hello") == "hello"

    second = use_bin(monkeypatch, tmp_path / "clone-2")
    def no_build(*_args) -> float:
        raise AssertionError("built although the cache has it")
    monkeypatch.setattr(go_tools, "build", no_build)
    stamp: dict[str, dict[str, str]] = {}
    assert go_tools.install([hello_tool], stamp, go_tools.go_env()) == ([], ["hello"])
    assert run(second / "hello") == "hello"
    assert (second / "hello").stat().st_ino == cached.stat().st_ino  # a link, not a 2 GB copy
    assert go_tools.up_to_date(hello_tool, stamp)


def test_other_flags_miss_the_cache_and_a_rebuild_leaves_the_cached_binary_alone(hello_tool, tmp_path, monkeypatch) -> None:
    bin_dir = use_bin(monkeypatch, tmp_path / "clone")
    go_tools.install([hello_tool], {}, go_tools.go_env())
    cached = go_tools.cached_binary(hello_tool)
    assert cached is not None
    louder = go_tools.Tool("hello", hello_tool.module_dir, hello_tool.package,
                           ("-X main.greeting=HELLO",), group="helm")
    assert go_tools.cached_binary(louder) != cached
    assert go_tools.install([louder], {}, go_tools.go_env()) == (["hello"], [])
    assert run(bin_dir / "hello") == "HELLO"
    assert run(cached) == "hello"  # go build wrote a new file, not through the shared link


def test_cgo_tools_are_never_cached(hello_tool) -> None:
    with_cgo = go_tools.Tool("hello", hello_tool.module_dir, hello_tool.package, cgo=True)
    assert go_tools.cached_binary(with_cgo) is None
