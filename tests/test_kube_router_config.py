"""kube-router on the real node, offline: a firewall only, for this cluster's node and Service
range, reading the API as a read-only user of its own, resolving the same iptables as
kube-proxy, started after kube-proxy and before CoreDNS, stopped and swept with the node, and
built at its pinned version. tests/node/test_network_policy_enforced.py shows it enforcing."""
from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bootstrap import go_tools
from cluster.local.controlplane import Layout
from cluster.node import cleanup, kube_proxy, kube_router, netns, node
from cluster.node.layout import KUBERNETES_SERVICE_IP, NODE_NAME, SERVICE_CIDR, NodeLayout
from images.build import Built

MODULE = "github.com/cloudnativelabs/kube-router/v2"


def flags(argv: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in argv if arg.startswith("--"))


def test_it_runs_the_firewall_alone_for_this_node_and_service_range() -> None:
    given = flags(kube_router.arguments("/x/kube-router.kubeconfig"))
    assert given == {
        "kubeconfig": "/x/kube-router.kubeconfig",
        "run-firewall": "true", "run-router": "false", "run-service-proxy": "false",
        "enable-cni": "false", "hostname-override": NODE_NAME,
        "service-cluster-ip-range": SERVICE_CIDR, "health-port": "0", "metrics-port": "0",
    }
    # The range the API server allocates from (it holds the `kubernetes` Service's IP).
    assert ipaddress.ip_address(KUBERNETES_SERVICE_IP) in ipaddress.ip_network(SERVICE_CIDR)


def test_every_flag_is_one_the_built_kube_router_knows() -> None:
    """An unknown flag makes kube-router exit at start; its --help lists the ones it has."""
    binary = go_tools.BIN / "kube-router"
    assert binary.is_file(), f"{binary} missing: run `make tools-node`"
    usage = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60)
    text = usage.stdout + usage.stderr
    for name in flags(kube_router.arguments("kc")):
        assert f"--{name} " in text, name


def test_its_api_user_only_reads_what_its_informers_watch() -> None:
    role, binding = kube_router.rbac()
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert {verb for verbs in granted.values() for verb in verbs} <= {"get", "list", "watch"}
    for needed in (("", "pods"), ("", "namespaces"), ("", "nodes"),
                   ("networking.k8s.io", "networkpolicies")):
        assert {"list", "watch"} <= granted[needed], needed
    assert "get" in granted[("", "nodes")]  # it reads its own Node for the node IP
    assert not any("*" in key for key in granted)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                    "name": kube_router.USER}]


class Recorder:
    """Stands in for processes, pki and kubectl: records what start() would run."""

    def __init__(self) -> None:
        self.started: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.kubeconfigs: list[tuple[str, str, str]] = []
        self.applied: list[dict[str, Any]] = []

    def start(self, argv, pid_file: Path, log_file: Path, env=None) -> int:
        self.started[pid_file.stem] = (list(argv), dict(env or {}))
        return 1

    def running(self, pid_file: Path) -> bool:
        return pid_file.stem in self.started

    def kubeconfig(self, layout: NodeLayout, name: str, user: str, group: str) -> Path:
        self.kubeconfigs.append((name, user, group))
        return layout.dir / f"{name}.kubeconfig"

    def apply(self, objects) -> None:
        self.applied += list(objects)


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(kube_router.processes, "start", recorder.start)
    monkeypatch.setattr(kube_router.processes, "running", recorder.running)
    monkeypatch.setattr(kube_router.pki, "kubeconfig", recorder.kubeconfig)
    monkeypatch.setattr(kube_router.time, "sleep", lambda _seconds: None)
    return recorder


def test_start_runs_it_in_the_node_namespace_as_its_own_user(recorder, monkeypatch, tmp_path) -> None:
    layout = NodeLayout(Layout(state_dir=tmp_path, name="t"))
    checks = iter(["*filter\n", f"-A FORWARD {kube_router.ENFORCING}\n"])
    monkeypatch.setattr(kube_router, "rules", lambda _layout: next(checks))
    kube_router.start(layout, recorder)  # type: ignore[arg-type]
    argv, env = recorder.started[kube_router.COMPONENT]
    assert argv[:2] == netns.enter(layout) and argv[1] == f"--net={layout.netns_path}"
    assert argv[2] == str(go_tools.BIN / "kube-router")
    assert flags(argv)["kubeconfig"] == str(layout.dir / "kube-router.kubeconfig")
    assert recorder.kubeconfigs == [("kube-router", kube_router.USER, "system:ray-platform")]
    assert recorder.applied == kube_router.rbac()
    assert next(checks, None) is None, "start() returned before its FORWARD jump was there"
    # `down` stops every pid file under run/, and a sweep finds it by the node folder in argv.
    assert layout.pid(kube_router.COMPONENT).parent == layout.dir / "run"
    assert any(cleanup.markers(layout)[0] in arg for arg in argv)


def test_start_says_where_the_log_is_when_it_exits(recorder, monkeypatch, tmp_path) -> None:
    layout = NodeLayout(Layout(state_dir=tmp_path, name="t"))
    monkeypatch.setattr(kube_router, "rules", lambda _layout: "*filter\n")
    monkeypatch.setattr(kube_router.processes, "running", lambda _pid: False)
    with pytest.raises(RuntimeError, match=str(layout.log(kube_router.COMPONENT))):
        kube_router.start(layout, recorder)  # type: ignore[arg-type]


def test_it_resolves_the_same_iptables_and_ipset_as_kube_proxy(recorder, tmp_path) -> None:
    """One PATH, so one iptables flavour for both (Debian's alternatives: nf_tables here)."""
    layout = NodeLayout(Layout(state_dir=tmp_path, name="t"))
    layout.dir.mkdir(parents=True)
    kube_proxy.start(layout)
    _, proxy_env = recorder.started[kube_proxy.COMPONENT]
    assert proxy_env["PATH"] == kube_router.PATH
    for tool in ("iptables", "iptables-save", "iptables-restore", "ipset"):
        assert shutil.which(tool, path=kube_router.PATH), f"{tool} not on {kube_router.PATH}"
    version = subprocess.run(["iptables", "--version"], capture_output=True, text=True,
                             env={"PATH": kube_router.PATH}).stdout
    assert "(nf_tables)" in version, version


def test_the_node_starts_it_after_kube_proxy_and_before_coredns(monkeypatch, tmp_path) -> None:
    order: list[str] = []

    def step(name: str):
        return lambda *args, **kwargs: order.append(name)

    monkeypatch.setattr(node, "missing_binaries", lambda: [])
    monkeypatch.setattr(node.processes, "running", lambda _pid: True)
    for module, name in ((node.netns, "create"), (node.cni, "write"), (node.containerd, "start"),
                         (node.kubelet, "start"), (node.kube_proxy, "start"),
                         (node.kube_router, "start"), (node.coredns, "start")):
        monkeypatch.setattr(module, name, step(f"{module.__name__.rsplit('.', 1)[1]}.{name}"))
    monkeypatch.setattr(node.containerd, "import_image", lambda *args: False)
    monkeypatch.setattr(node, "start_api_forwards", step("forwards"))
    monkeypatch.setattr(node, "wait_node_ready", step("ready"))
    pause = Built("pause", "localhost/ray-platform/pause:x", tmp_path / "p.tar", 0, True)
    node.up(Layout(state_dir=tmp_path, name="t"), None, [pause], say=lambda _line: None)  # type: ignore[arg-type]
    assert order.index("kube_proxy.start") < order.index("kube_router.start") \
        < order.index("coredns.start"), order
    assert "kube-router" in node.BINARIES


def test_it_is_built_from_its_pinned_module_with_its_version() -> None:
    pinned = go_tools.module_versions(go_tools.NODE_DIR / "kube-router")[MODULE]
    tool = next(t for t in go_tools.all_tools() if t.name == "kube-router")
    assert tool.group == "node" and not tool.cgo
    assert tool.package == f"{MODULE}/cmd/kube-router"
    assert f"-X {MODULE}/pkg/version.Version={pinned}" in tool.ldflags
    binary = go_tools.BIN / "kube-router"
    assert binary.is_file(), f"{binary} missing: run `make tools-node`"
    output = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert f"version {pinned}," in output.stdout + output.stderr, output.stdout + output.stderr
