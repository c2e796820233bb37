"""The real node's configuration, offline: what this machine needs (cgroup v1, no
CAP_SYS_RESOURCE, no registry), per-cluster names so that two clusters share nothing, and the
real-node overlay layered on dev.yaml passing every check `make check` runs."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cluster.local.controlplane import (Layout, egress_selector_configuration,
                                        kwokctl_configuration)
from cluster.node import cni, containerd, coredns, kube_proxy, kubelet, operator_pod, platform
from cluster.node.layout import KUBERNETES_SERVICE_IP, NODE_IP, NodeLayout
from harness import cli
from harness.tools import VALUES_DIR
from images.build import Built


@pytest.fixture
def two_nodes() -> tuple[NodeLayout, NodeLayout]:
    """Layouts as make up (.tools/local) and the node tests (/tmp/ray-platform-node-*) make
    them; nothing is created."""
    return (NodeLayout(Layout(name="one")),
            NodeLayout(Layout(state_dir=Path("/tmp/ray-platform-node-abcdefgh/state"), name="two")))


def test_two_clusters_share_no_namespace_cgroup_socket_or_image_store(two_nodes) -> None:
    first, second = two_nodes
    for attribute in ("netns", "cgroup_root", "containerd_socket", "api_socket",
                      "containerd_root", "kubelet_dir"):
        assert getattr(first, attribute) != getattr(second, attribute), attribute
    for layout in two_nodes:  # a Unix socket path has 108 bytes at most
        assert len(str(layout.containerd_socket)) < 100, layout.containerd_socket


def test_kubelet_configuration_fits_this_machine(two_nodes) -> None:
    config = kubelet.configuration(two_nodes[0])
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["cgroupRoot"] == two_nodes[0].cgroup_root
    assert config["clusterDNS"] == [NODE_IP] and config["resolvConf"] == ""
    assert config["authentication"]["anonymous"]["enabled"] is False
    # Every eviction signal is listed (unlisted ones would become 0); image GC never runs.
    assert set(config["evictionHard"]) >= {"memory.available", "nodefs.available", "imagefs.available"}
    assert config["imageGCHighThresholdPercent"] == 100


def test_containerd_configuration(two_nodes) -> None:
    text = containerd.config(two_nodes[0], "localhost/ray-platform/pause:x")
    assert "restrict_oom_score_adj = true" in text  # no CAP_SYS_RESOURCE in this sandbox
    assert 'sandbox = "localhost/ray-platform/pause:x"' in text
    assert "netns_mounts_under_state_dir = true" in text
    assert "io.containerd.nri.v1.nri" in text
    assert f'address = "{two_nodes[0].containerd_socket}"' in text


def test_cni_keeps_pods_on_a_private_bridge_without_masquerade() -> None:
    bridge = cni.conflist()["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False and bridge["hairpinMode"]
    assert bridge["ipam"]["ranges"][0][0]["subnet"] == "10.244.0.0/24"


def test_kube_proxy_never_touches_the_machines_conntrack_table(two_nodes) -> None:
    config = kube_proxy.configuration(two_nodes[0], "kc")
    assert config["conntrack"]["maxPerCore"] == 0 and config["mode"] == "iptables"


def test_coredns_serves_the_cluster_domain_on_the_node_ip_only() -> None:
    text = coredns.corefile("kc")
    assert f"bind {NODE_IP}" in text and "forward" not in text and "kubeconfig kc" in text


def test_the_control_plane_leaves_the_real_node_to_its_kubelet(tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path, bin_dir=tmp_path)
    for name in ("kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager",
                 "kube-scheduler", "kubectl"):
        (tmp_path / name).touch()
    config = kwokctl_configuration(layout)[0]
    assert set(config["options"]["kubeApiserverCertSANs"]) == {KUBERNETES_SERVICE_IP, NODE_IP}
    patches = {p["name"]: {a["key"]: a["value"] for a in p["extraArgs"]}
               for p in config["componentsPatches"]}
    assert patches["kwok-controller"]["manage-all-nodes"] == "false"
    assert patches["kwok-controller"]["manage-nodes-with-annotation-selector"] == "kwok.x-k8s.io/node=fake"
    assert patches["kube-apiserver"]["advertise-address"] == NODE_IP
    # A cluster of simulated nodes only: the API server dials their (loopback) kubelets directly.
    assert "egress-selector-config-file" not in patches["kube-apiserver"]


def test_with_a_real_node_the_api_server_dials_into_the_cluster_through_its_proxy(
        tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path, bin_dir=tmp_path)
    for name in ("kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager",
                 "kube-scheduler", "kubectl"):
        (tmp_path / name).touch()
    config = kwokctl_configuration(layout, real_node=True)[0]
    args = {a["key"]: a["value"] for p in config["componentsPatches"]
            if p["name"] == "kube-apiserver" for a in p["extraArgs"]}
    assert args["egress-selector-config-file"] == str(layout.egress_config)
    assert args["kubelet-preferred-address-types"].split(",")[0] == "InternalIP"
    assert args["kubelet-client-certificate"] == str(layout.pki / "admin.crt")
    assert args["kubelet-client-key"] == str(layout.pki / "admin.key")
    egress = egress_selector_configuration(layout)
    assert (egress["apiVersion"], egress["kind"]) == ("apiserver.k8s.io/v1beta1",
                                                      "EgressSelectorConfiguration")
    # `cluster` only: etcd and the control plane's own connections stay direct.
    assert [s["name"] for s in egress["egressSelections"]] == ["cluster"]
    connection = egress["egressSelections"][0]["connection"]
    assert connection == {"proxyProtocol": "HTTPConnect",
                          "transport": {"uds": {"udsName": str(layout.egress_socket)}}}
    # The proxy's socket is the node's (found and swept with the node's folder), short enough
    # for a Unix socket, and the same path for the API server and the node.
    node_layout = NodeLayout(layout)
    assert node_layout.egress_socket == layout.egress_socket
    assert layout.egress_socket.parent == node_layout.dir
    for state_dir in (Layout().state_dir, Path("/tmp/ray-platform-node-abcdefgh/state")):
        assert len(str(Layout(state_dir=state_dir).egress_socket)) < 100


def test_the_dev_release_on_the_real_node_passes_every_check(tmp_path: Path, capsys) -> None:
    """values/dev.yaml + values/local/real-node.yaml + the generated image values, as `make up`
    layers them, pass `make check`'s render and validation on the newest Kubernetes."""
    built = {name: Built(name, f"localhost/ray-platform/{name}:2.60.0-0123456789ab",
                         tmp_path / "x.tar", 0, True) for name in ("ray", "ray-serve")}
    generated = platform.images_values(tmp_path, built)
    values = yaml.safe_load(generated.read_text())
    assert values["image"]["pullPolicy"] == "Never"
    assert cli.main([str(VALUES_DIR / "dev.yaml"), str(platform.REAL_NODE_VALUES),
                     str(generated), "--kube-version", "1.37"]) == 0, capsys.readouterr().out


def test_the_real_node_overlay_only_lowers_cpu_requests() -> None:
    """Its header promises it: the limits (and so Ray's --num-cpus) stay as dev.yaml has them."""
    overlay = yaml.safe_load(platform.REAL_NODE_VALUES.read_text())

    def requests(tree, path=()):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from requests(value, (*path, key))
            elif path and path[-1] == "limits":
                raise AssertionError(f"{'.'.join(path)}.{key} changes a limit")
            elif path and path[-1] == "requests":
                assert key == "cpu", f"{'.'.join(path)}.{key}"
                yield key

    assert sum(1 for _ in requests(overlay)) == 7


def test_the_operator_pod_is_the_modules_deployment_on_the_local_image(monkeypatch, tmp_path) -> None:
    manager = tmp_path / "config" / "manager"
    manager.mkdir(parents=True)
    (manager / "manager.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "kuberay-operator", "namespace": "system"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "kuberay-operator", "image": "kuberay/operator", "args": ["--x"]}]}}}}))
    monkeypatch.setattr(operator_pod.operator, "module_dir", lambda: tmp_path)
    deployment = operator_pod.deployment("localhost/ray-platform/kuberay-operator:abc")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["metadata"]["namespace"] == "kuberay-system"
    assert container["image"] == "localhost/ray-platform/kuberay-operator:abc"
    assert container["imagePullPolicy"] == "Never"
    assert "RayCronJob=true" in container["args"][0]


def test_preflight_names_each_missing_piece_in_a_sentence(tmp_path: Path) -> None:
    from cluster.node import preflight

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "filesystems").write_text("nodev\tproc\n\text4\n")
    found = preflight.problems(root=tmp_path, euid=1000, which=lambda _tool: None,
                               free_path=tmp_path, needed=1 << 60)
    text = " | ".join(found)
    for expected in ("needs root", "/dev/kmsg", "overlay", "cpu, cpuacct, cpuset, memory, pids",
                     "br_netfilter", "Debian package iproute2", "GiB more"):
        assert expected in text, (expected, text)


def test_preflight_passes_on_this_machine() -> None:
    """The build machines have what the node needs (root, cgroup v1, overlay, br_netfilter)."""
    from cluster.node import preflight

    assert preflight.problems() == []
