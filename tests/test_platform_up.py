"""`make up` / `make down` (cluster.platform_up) and the kind bootstrap (bootstrap.install_kind),
without Docker: which cluster is chosen, the one-sentence refusals when kind is forced, the order
and arguments of every step on a recorded command runner, and which kind binary and node image
are used. The local cluster itself is exercised for real in tests/cluster."""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bootstrap import go_tools, install_kind
from cluster import platform_up
from harness.readiness import Target
from harness.render import of_kind
from harness.scenarios import Scenario
from harness.tools import REPO, VALUES_DIR
from harness.versions import SUPPORTED_KUBE_MINORS

DEV = Scenario("values/dev.yaml", (VALUES_DIR / "dev.yaml",))


def one_sentence(text: str) -> bool:
    return text.endswith(".") and not re.search(r"[.!?]\s", text) and "\n" not in text


class FakeRun:
    """subprocess.run stand-in: records commands, answers from a table of (argv prefix -> stdout, rc)."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[str, int]] | None = None):
        self.answers = answers or {}
        self.commands: list[list[str]] = []

    def __call__(self, cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append([Path(cmd[0]).name, *cmd[1:]])
        for prefix, (stdout, rc) in self.answers.items():
            if tuple(self.commands[-1][: len(prefix)]) == prefix:
                return subprocess.CompletedProcess(cmd, rc, stdout, "boom" if rc else "")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    def names(self) -> list[str]:
        return [" ".join(cmd[:3]) for cmd in self.commands]


def no_kind() -> Path:
    raise install_kind.KindUnavailable("kind v0.33.0 is not built yet (.tools/bin/kind is missing): run `make tools` "
                                       "to build it from tools/go.mod")


# --- preflight: fail fast, in one sentence ----------------------------------------------------------

def test_no_docker_command_means_the_local_cluster_unless_kind_is_forced() -> None:
    cluster = platform_up.preflight({}, which=lambda _: None, run=FakeRun(), get_kind=no_kind)
    assert cluster is platform_up.LOCAL_CLUSTER and cluster.local and not cluster.kind
    assert cluster.kubeconfig == platform_up.LOCAL_KUBECONFIG
    with pytest.raises(platform_up.Refused) as refused:
        platform_up.preflight({"CLUSTER": "kind"}, which=lambda _: None, run=FakeRun(), get_kind=no_kind)
    assert str(refused.value) == platform_up.NO_DOCKER and one_sentence(str(refused.value))


def test_docker_client_without_an_engine() -> None:
    run = FakeRun({("docker", "info"): ("", 1)})
    assert platform_up.preflight({}, which=lambda _: "/usr/bin/docker", run=run,
                                 get_kind=no_kind) is platform_up.LOCAL_CLUSTER
    with pytest.raises(platform_up.Refused) as refused:
        platform_up.preflight({"CLUSTER": "kind"}, which=lambda _: "/usr/bin/docker", run=run, get_kind=no_kind)
    assert str(refused.value) == platform_up.NO_ENGINE and one_sentence(str(refused.value))
    assert run.commands == [["docker", "info", "--format", "{{.ServerVersion}}"]] * 2


def test_cluster_local_needs_neither_docker_nor_kubeconfig(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\n")

    def must_not_look(_: str) -> str:
        raise AssertionError("the local cluster needs no Docker")

    cluster = platform_up.preflight({"CLUSTER": "local", "KUBECONFIG": str(config)}, which=must_not_look,
                                    run=FakeRun(), get_kind=no_kind)
    assert cluster is platform_up.LOCAL_CLUSTER


def test_an_unknown_cluster_choice_is_refused() -> None:
    with pytest.raises(platform_up.Refused) as refused:
        platform_up.preflight({"CLUSTER": "minikube"}, get_kind=no_kind)
    assert "CLUSTER=minikube" in str(refused.value) and one_sentence(str(refused.value))


def test_docker_engine_without_kind() -> None:
    run = FakeRun({("docker", "info"): ("28.2.2", 0)})
    with pytest.raises(platform_up.Refused) as refused:
        platform_up.preflight({}, which=lambda _: "/usr/bin/docker", run=run, get_kind=no_kind)
    message = str(refused.value)
    assert message.startswith(f"make up needs kind {install_kind.KIND_VERSION}") and "make tools" in message
    assert one_sentence(message)


def test_docker_and_kind_give_a_kind_cluster(tmp_path: Path) -> None:
    run = FakeRun({("docker", "info"): ("28.2.2", 0)})
    cluster = platform_up.preflight({}, which=lambda _: "/usr/bin/docker", run=run, get_kind=lambda: tmp_path / "kind")
    assert cluster.kind and cluster.kubeconfig == platform_up.KIND_KUBECONFIG
    assert cluster.kube_args() == ["--kubeconfig", str(platform_up.KIND_KUBECONFIG)]


def test_kubeconfig_skips_cluster_creation_and_docker(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\n")

    def must_not_look(_: str) -> str:
        raise AssertionError("an existing cluster needs no Docker")

    cluster = platform_up.preflight({"KUBECONFIG": f"{tmp_path / 'missing'}:{config}"}, which=must_not_look,
                                    run=FakeRun(), get_kind=no_kind)
    assert not cluster.kind and cluster.kube_args() == []


def test_kubeconfig_naming_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(platform_up.Refused) as refused:
        platform_up.preflight({"KUBECONFIG": str(tmp_path / "nope")}, get_kind=no_kind)
    assert "none of these files exists" in str(refused.value) and one_sentence(str(refused.value))


def test_kubeconfig_of_make_up_itself_means_its_own_cluster() -> None:
    assert platform_up.existing_cluster({"KUBECONFIG": str(platform_up.KIND_KUBECONFIG)}) is None
    assert platform_up.existing_cluster({"KUBECONFIG": str(platform_up.LOCAL_KUBECONFIG)}) is None


@pytest.mark.skipif(platform_up.docker_engine_problem() is None, reason="a Docker engine answers here: make up would start")
def test_make_up_forced_to_kind_fails_fast_here_with_one_sentence() -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "KUBECONFIG"}
    env["CLUSTER"] = "kind"
    started = time.monotonic()
    proc = subprocess.run(["make", "--no-print-directory", "up"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[0]
    assert message in (platform_up.NO_DOCKER, platform_up.NO_ENGINE), proc.stderr
    assert elapsed < 15, f"make up took {elapsed:.1f}s to refuse"


# --- up: the steps, in order ---------------------------------------------------------------------

@pytest.fixture
def kind_cluster(tmp_path: Path) -> platform_up.Cluster:
    return platform_up.Cluster(kind=True, kubeconfig=platform_up.KIND_KUBECONFIG, kind_binary=tmp_path / "kind")


def patch_cluster_side(monkeypatch: pytest.MonkeyPatch, render, others=()) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    objects = render(DEV)
    monkeypatch.setattr(platform_up, "other_operators", lambda cluster: list(others))
    monkeypatch.setattr(platform_up, "release_objects", lambda cluster, run: objects)
    monkeypatch.setattr(platform_up, "release_values", lambda cluster, run: {
        "auth": {"mode": "token", "existingSecret": ""}, "kuberay-operator": {"enabled": not others},
        "stableDiffusion": {"app": {"routePrefix": "/"}, "apiIngress": {"userConfig": {"default_img_size": 256}}}})
    monkeypatch.setattr(platform_up, "wait_ready", lambda cluster, targets, timeout: seen.update(targets=targets, timeout=timeout))
    return seen


def test_up_on_a_new_kind_cluster(monkeypatch, render, kind_cluster, capsys) -> None:
    seen = patch_cluster_side(monkeypatch, render)
    monkeypatch.setattr(platform_up, "CHART_DIR", REPO / "no-such-chart")  # no dependency archive there
    run = FakeRun({("kind", "get", "clusters"): ("other\n", 0)})
    platform_up.up(kind_cluster, platform_up.UpOptions(timeout=900), run)
    assert run.names() == ["kind get clusters", "kind create cluster", "helm4 repo add", "helm4 dependency build",
                           "helm4 upgrade --install", "helm4 test ray-platform"]
    create, repo_add, _, install, test = run.commands[1:]
    assert install_kind.KIND_NODE_IMAGE in create and "ray-platform" in create
    assert repo_add[3:5] == ["kuberay", "https://ray-project.github.io/kuberay-helm/"]
    assert install[3:5] == ["ray-platform", str(platform_up.CHART_DIR)]
    assert ["--values", str(platform_up.DEV_VALUES)] == install[install.index("--values"):install.index("--values") + 2]
    assert ["--namespace", "ray-platform"] == install[5:7] and "--create-namespace" in install
    assert "--kubeconfig" in install and "--kubeconfig" in test and "--logs" in test
    assert seen["timeout"] == 900
    assert [str(t) for t in seen["targets"]] == ["Deployment/kuberay-operator", "RayCluster/ray-platform",
                                                 "RayService/ray-platform-sd"]
    out = capsys.readouterr().out
    assert "port-forward svc/ray-platform-head-svc 8265:8265" in out
    assert "get secret ray-platform -o jsonpath='{.data.auth_token}'" in out
    assert 'curl -o fox.png "http://localhost:8000/imagine?prompt=a+red+fox+in+the+snow&img_size=256"' in out
    assert "`make down` removes the kind cluster ray-platform." in out


def test_up_reuses_the_cluster_and_dependencies(monkeypatch, render, kind_cluster, tmp_path) -> None:
    patch_cluster_side(monkeypatch, render)
    chart = tmp_path / "chart"
    (chart / "charts").mkdir(parents=True)
    (chart / "charts" / "kuberay-operator-1.7.0.tgz").write_bytes(b"")
    monkeypatch.setattr(platform_up, "CHART_DIR", chart)
    run = FakeRun({("kind", "get", "clusters"): ("ray-platform\n", 0)})
    platform_up.up(kind_cluster, platform_up.UpOptions(tests=False), run)
    assert run.names() == ["kind get clusters", "kind export kubeconfig", "helm4 upgrade --install"]


def test_dependencies_are_not_fetched_twice(tmp_path: Path) -> None:
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "kuberay-operator-1.7.0.tgz").write_bytes(b"")
    run = FakeRun()
    platform_up.build_dependencies(run, tmp_path)
    assert run.commands == []


def test_up_next_to_another_operator_installs_none(monkeypatch, render) -> None:
    seen = patch_cluster_side(monkeypatch, render, others=[("kuberay-system", "kuberay-operator")])
    monkeypatch.setattr(platform_up, "build_dependencies", lambda run: None)
    run = FakeRun()
    platform_up.up(platform_up.Cluster(kind=False, kubeconfig=None), platform_up.UpOptions(tests=False), run)
    (install,) = run.commands
    assert install[install.index("--set") + 1] == "kuberay-operator.enabled=false" and "--kubeconfig" not in install
    assert seen["targets"][0] == Target("Deployment", "kuberay-operator", "kuberay-system")


def test_a_failing_step_stops_up_naming_it(monkeypatch, render, kind_cluster) -> None:
    patch_cluster_side(monkeypatch, render)
    monkeypatch.setattr(platform_up, "build_dependencies", lambda run: None)
    run = FakeRun({("kind", "get", "clusters"): ("ray-platform\n", 0), ("helm4", "upgrade"): ("", 1)})
    with pytest.raises(platform_up.StepFailed) as failed:
        platform_up.up(kind_cluster, platform_up.UpOptions(), run)
    assert str(failed.value) == "helm upgrade --install failed (exit 1): boom"
    assert run.names()[-1] == "helm4 upgrade --install"  # nothing after it


def test_readiness_targets_of_the_rendered_release(render) -> None:
    objects = render(DEV)
    targets = platform_up.readiness_targets(objects, {"kuberay-operator": {"enabled": True}})
    (cluster,), (service,) = of_kind(objects, "RayCluster"), of_kind(objects, "RayService")
    assert targets == [
        Target("Deployment", "kuberay-operator", "ray-platform",
               "app.kubernetes.io/name=kuberay-operator,app.kubernetes.io/instance=ray-platform"),
        Target("RayCluster", cluster["metadata"]["name"], "ray-platform"),
        Target("RayService", service["metadata"]["name"], "ray-platform")]


def test_wait_ready_turns_not_ready_into_a_step_failure(monkeypatch) -> None:
    from harness import readiness

    def never_ready(targets, fetch, timeout, **_):
        raise readiness.TimedOut("not ready after 5s - RayService/x: Ready False (Initializing)", {})

    monkeypatch.setattr(readiness, "KubeFetcher", lambda kubeconfig: None)
    monkeypatch.setattr(readiness, "wait_until_ready", never_ready)
    with pytest.raises(platform_up.StepFailed) as failed:
        platform_up.wait_ready(platform_up.Cluster(kind=False, kubeconfig=None), [], 5)
    assert "did not become ready: not ready after 5s - RayService/x" in str(failed.value)


# --- down -------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_local_cluster(monkeypatch, tmp_path: Path) -> None:
    """A local cluster a developer left running must not change what these tests see."""
    monkeypatch.setattr(platform_up, "LOCAL_STATE_DIR", tmp_path / "no-local-cluster")


def test_down_stops_the_local_cluster_when_one_exists(monkeypatch, tmp_path: Path) -> None:
    from cluster.local import lifecycle
    state = tmp_path / "local"
    state.mkdir()
    monkeypatch.setattr(platform_up, "LOCAL_STATE_DIR", state)
    stopped = []
    monkeypatch.setattr(lifecycle, "down", lambda layout, say: (stopped.append(layout.state_dir), say("stopped")))
    assert platform_up.down({}, FakeRun()) == "stopped"
    assert stopped == [state]


def test_down_on_an_existing_cluster_uninstalls_only_the_release(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("x")
    run = FakeRun()
    assert platform_up.down({"KUBECONFIG": str(config)}, run) == "release ray-platform uninstalled"
    (uninstall,) = run.commands
    assert uninstall[:3] == ["helm4", "uninstall", "ray-platform"] and "--wait" in uninstall


def test_down_deletes_the_kind_cluster(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(platform_up, "TOOLS_BIN", tmp_path)
    (tmp_path / "kind").write_text("")
    monkeypatch.setattr(platform_up, "KIND_KUBECONFIG", tmp_path / "kubeconfig")
    run = FakeRun({("docker", "info"): ("28.2.2", 0), ("kind", "get", "clusters"): ("ray-platform\n", 0)})
    assert platform_up.down({}, run, which=lambda _: "/usr/bin/docker") == "kind cluster ray-platform deleted"
    assert run.names()[-1] == "kind delete cluster"
    run = FakeRun({("docker", "info"): ("28.2.2", 0), ("kind", "get", "clusters"): ("", 0)})
    assert "nothing to remove" in platform_up.down({}, run, which=lambda _: "/usr/bin/docker")
    with pytest.raises(platform_up.Refused) as refused:
        platform_up.down({}, FakeRun({("docker", "info"): ("", 1)}), which=lambda _: "/usr/bin/docker")
    assert str(refused.value).startswith("make down needs a running Docker engine")


# --- kind: built by make tools, version-checked -----------------------------------------------------

def fake_kind(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / "kind"
    binary.write_text(f"#!/bin/sh\necho kind {version} go1.26.8 linux/amd64\n")
    binary.chmod(0o755)
    return binary


def test_kind_is_the_one_make_tools_built(tmp_path: Path) -> None:
    built = fake_kind(tmp_path / "bin", install_kind.KIND_VERSION)
    fake_kind(tmp_path / "path", install_kind.KIND_VERSION)
    assert install_kind.install(tmp_path / "bin", search_path=str(tmp_path / "path")) == built


def test_a_built_kind_of_another_release_is_refused(tmp_path: Path) -> None:
    fake_kind(tmp_path / "bin", "v0.31.0")
    with pytest.raises(install_kind.KindUnavailable) as refused:
        install_kind.install(tmp_path / "bin", search_path=str(tmp_path / "nothing"))
    assert "reports v0.31.0 instead of kind v0.33.0" in str(refused.value)
    assert "run `make tools`" in str(refused.value) and one_sentence(f"{refused.value}.")


def test_without_a_built_kind_one_on_path_of_the_pinned_release_serves(tmp_path: Path) -> None:
    on_path = fake_kind(tmp_path / "path", install_kind.KIND_VERSION)
    assert install_kind.install(tmp_path / "bin", search_path=str(tmp_path / "path")) == on_path
    fake_kind(tmp_path / "path", "v0.20.0")
    with pytest.raises(install_kind.KindUnavailable) as refused:
        install_kind.install(tmp_path / "bin", search_path=str(tmp_path / "path"))
    assert str(refused.value) == (f"kind v0.33.0 is not built yet ({tmp_path / 'bin' / 'kind'} is missing): "
                                  "run `make tools` to build it from tools/go.mod")


def test_kind_unavailable_reads_as_one_sentence_in_make_ups_refusal(tmp_path: Path) -> None:
    with pytest.raises(install_kind.KindUnavailable) as unavailable:
        install_kind.install(tmp_path, search_path=str(tmp_path))
    sentence = platform_up.NO_KIND.format(version=install_kind.KIND_VERSION, reason=unavailable.value)
    assert one_sentence(sentence) and "make tools" in sentence


def test_kind_pin_is_the_one_tools_go_mod_builds() -> None:
    from bootstrap import go_tools

    assert go_tools.module_versions(go_tools.TOOLS_DIR)["sigs.k8s.io/kind"] == install_kind.KIND_VERSION
    assert "kind" in {tool.name for tool in go_tools.all_tools()}


@pytest.mark.skipif(not (install_kind.TOOLS_BIN / "kind").is_file(), reason="kind is not built here: run make tools")
def test_the_built_kind_reports_the_pinned_release() -> None:
    assert install_kind.kind_version(install_kind.TOOLS_BIN / "kind") == install_kind.KIND_VERSION
    assert install_kind.main([]) == 0


def test_node_image_is_pinned_by_digest_to_a_validated_kubernetes() -> None:
    match = re.fullmatch(r"kindest/node:v(\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}", install_kind.KIND_NODE_IMAGE)
    assert match, install_kind.KIND_NODE_IMAGE
    assert match.group(1) in SUPPORTED_KUBE_MINORS


def test_node_image_is_the_default_compiled_into_the_pinned_kind() -> None:
    # `make test` builds kind first (make tools), so its module is in the cache: no skip.
    kind = go_tools.module_source("sigs.k8s.io/kind", go_tools.TOOLS_DIR, "make tools")
    source = (kind / "pkg" / "apis" / "config" / "defaults" / "image.go").read_text()
    assert f'const Image = "{install_kind.KIND_NODE_IMAGE}"' in source
