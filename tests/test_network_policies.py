"""NetworkPolicies: unit tests of the evaluator (harness.netpol), then the reachability matrix of
issue 3 computed from the rendered NetworkPolicies and Ray pod templates of every scenario, and
mutations of the rendered policies that the matrix must catch."""
from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any, Callable

import pytest

from harness import netpol
from harness.netpol import Endpoint, Port, allowed
from harness.render import of_kind
from harness.scenarios import Scenario
from harness.tools import NAMESPACE
from harness.values import merged_values

# --- the evaluator ------------------------------------------------------------------------

NS = "apps"
WEB = Endpoint("web", NS, {"app": "web", "tier": "front"}, (Port(8080, "http"),))
DB = Endpoint("db", NS, {"app": "db", "tier": "back"}, (Port(5432, "pg"), Port(9090, "http"), Port(53, "dns", "UDP")))
FAR_WEB = Endpoint("far-web", "elsewhere", {"app": "web"}, (Port(8080, "http"),),
                   namespace_labels={"kubernetes.io/metadata.name": "elsewhere", "team": "blue"})
INTERNET = Endpoint("internet", None, ip="93.184.216.34")


def policy(name: str, spec: dict[str, Any], namespace: str = NS) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


DENY_ALL = policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
DENY_INGRESS = policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})


def test_without_policies_everything_is_allowed() -> None:
    assert allowed([], WEB, DB, 5432)
    assert allowed([], FAR_WEB, DB, 1)
    assert allowed([], DB, INTERNET, 443)


def test_default_deny_ingress_blocks_incoming_only() -> None:
    assert not allowed([DENY_INGRESS], WEB, DB, 5432)
    assert not allowed([DENY_INGRESS], FAR_WEB, WEB, 8080)
    assert allowed([DENY_INGRESS], DB, INTERNET, 443)  # egress is not isolated


def test_egress_isolation_blocks_even_when_the_destination_admits() -> None:
    deny_egress = policy("deny-egress", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]})
    admit = policy("db-admits-web", {"podSelector": {"matchLabels": {"app": "db"}},
                                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]})
    assert allowed([admit], WEB, DB, 5432)
    assert not allowed([admit, deny_egress], WEB, DB, 5432)
    web_out = policy("web-out", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                                 "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}]})
    assert allowed([admit, deny_egress, web_out], WEB, DB, 5432)
    assert not allowed([admit, deny_egress, web_out], WEB, INTERNET, 443)


def test_policy_types_default_from_the_sections_present() -> None:
    assert netpol.policy_types(policy("a", {"podSelector": {}})) == ["Ingress"]
    assert netpol.policy_types(policy("b", {"podSelector": {}, "egress": []})) == ["Ingress", "Egress"]
    only_egress_section = policy("c", {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]})
    assert not allowed([only_egress_section], WEB, DB, 5432)  # ingress isolated too, no rule
    assert not allowed([only_egress_section], WEB, INTERNET, 443)  # no ipBlock: external denied


@pytest.mark.parametrize("expression, labels, expected", [
    ({"key": "app", "operator": "In", "values": ["web", "api"]}, {"app": "web"}, True),
    ({"key": "app", "operator": "In", "values": ["api"]}, {"app": "web"}, False),
    ({"key": "app", "operator": "In", "values": ["web"]}, {}, False),
    ({"key": "app", "operator": "NotIn", "values": ["db"]}, {"app": "web"}, True),
    ({"key": "app", "operator": "NotIn", "values": ["web"]}, {"app": "web"}, False),
    ({"key": "app", "operator": "NotIn", "values": ["web"]}, {}, True),
    ({"key": "app", "operator": "Exists"}, {"app": ""}, True),
    ({"key": "app", "operator": "Exists"}, {"tier": "x"}, False),
    ({"key": "app", "operator": "DoesNotExist"}, {"tier": "x"}, True),
    ({"key": "app", "operator": "DoesNotExist"}, {"app": "web"}, False),
])
def test_match_expressions(expression: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert netpol.selector_matches({"matchExpressions": [expression]}, labels) is expected


def test_match_labels_and_expressions_all_must_hold() -> None:
    selector = {"matchLabels": {"tier": "front"}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}
    assert netpol.selector_matches(selector, {"app": "web", "tier": "front"})
    assert not netpol.selector_matches(selector, {"app": "web", "tier": "back"})
    assert netpol.selector_matches({}, {"anything": "goes"})
    with pytest.raises(ValueError):
        netpol.selector_matches({"matchExpressions": [{"key": "a", "operator": "Near"}]}, {})


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    admit_web = policy("admit-web", {"podSelector": {"matchLabels": {"app": "db"}},
                                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]})
    assert allowed([admit_web], WEB, DB, 5432)
    assert not allowed([admit_web], FAR_WEB, DB, 5432)


def test_namespace_and_pod_selector_in_one_peer_are_and_in_two_peers_or() -> None:
    both = policy("and", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "blue"}}, "podSelector": {"matchLabels": {"app": "api"}}}]}]})
    assert not allowed([both], FAR_WEB, DB, 5432)  # right namespace, wrong pod
    either = policy("or", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "blue"}}}, {"podSelector": {"matchLabels": {"app": "api"}}}]}]})
    assert allowed([either], FAR_WEB, DB, 5432)  # namespace alone suffices
    assert not allowed([either], WEB, DB, 5432)  # same namespace, not api


def test_named_ports_resolve_against_the_destination_pod() -> None:
    by_name = policy("http-only", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})
    assert allowed([by_name], WEB, DB, 9090)  # db's http is 9090
    assert not allowed([by_name], WEB, DB, 8080)  # ... not web's 8080
    assert not allowed([by_name], WEB, DB, 5432)
    assert allowed([by_name], DB, WEB, 8080)  # web's http is 8080
    missing = policy("nope", {"podSelector": {}, "ingress": [{"ports": [{"port": "grpc"}]}]})
    assert not allowed([missing], WEB, DB, 9090)


def test_port_numbers_ranges_and_protocols() -> None:
    ranged = policy("range", {"podSelector": {}, "ingress": [{"ports": [{"port": 5000, "endPort": 6000}]}]})
    assert allowed([ranged], WEB, DB, 5432)
    assert not allowed([ranged], WEB, DB, 9090)
    udp = policy("udp", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "UDP", "port": 53}]}]})
    assert allowed([udp], WEB, DB, 53, "UDP")
    assert not allowed([udp], WEB, DB, 53, "TCP")
    any_tcp = policy("tcp", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "TCP"}]}]})
    assert allowed([any_tcp], WEB, DB, 12345)
    assert not allowed([any_tcp], WEB, DB, 53, "UDP")


def test_ip_blocks_with_exceptions() -> None:
    out = policy("out", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                         "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]})
    assert allowed([out], WEB, Endpoint("mirror", None, ip="10.2.3.4"), 443)
    assert not allowed([out], WEB, Endpoint("excepted", None, ip="10.1.2.3"), 443)
    assert not allowed([out], WEB, INTERNET, 443)
    assert not allowed([out], WEB, DB, 5432)  # a pod without an IP does not match an ipBlock


def test_rules_of_all_policies_add_up_and_other_namespaces_do_not_apply() -> None:
    a = policy("a", {"podSelector": {}, "ingress": [{"ports": [{"port": 5432}]}]})
    b = policy("b", {"podSelector": {}, "ingress": [{"ports": [{"port": 9090}]}]})
    assert allowed([a, b], WEB, DB, 5432) and allowed([a, b], WEB, DB, 9090)
    assert not allowed([a, b], WEB, DB, 1234)
    elsewhere = policy("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, namespace="elsewhere")
    assert allowed([elsewhere], WEB, DB, 5432)
    assert not allowed([elsewhere], FAR_WEB, DB, 5432)  # FAR_WEB's egress is denied there


def test_empty_rule_and_empty_peer_list_allow_everyone() -> None:
    for spec in ({"podSelector": {}, "ingress": [{}]}, {"podSelector": {}, "ingress": [{"from": []}]}):
        assert allowed([DENY_ALL, policy("open", spec)], WEB, DB, 5432) is False  # web's egress
        assert allowed([DENY_INGRESS, policy("open", spec)], FAR_WEB, DB, 5432)


# --- the matrix over every scenario ------------------------------------------------------

def peer_pod(name: str, peer: dict[str, Any]) -> Endpoint:
    return Endpoint(name, peer.get("namespace") or NAMESPACE, dict(peer.get("podLabels") or {}))


def first_address(cidr: str) -> str:
    network = ipaddress.ip_network(cidr, strict=False)
    return str(network.network_address + (1 if network.num_addresses > 1 else 0))


def redis_port(address: str) -> int:
    """The port of host:port or redis[s]://[user@]host:port[/db]; 6379 without one."""
    match = re.search(r":(\d+)(/\d*)?$", address)
    return int(match.group(1)) if match else 6379


def matrix_violations(objects: list[dict[str, Any]], values: dict[str, Any]) -> list[str]:
    """Every way the rendered policies differ from the reachability matrix of issue 3."""
    policies = of_kind(objects, "NetworkPolicy")
    pods = netpol.ray_pods(objects, NAMESPACE)
    np = values["networkPolicy"]
    operator = peer_pod("kuberay-operator", np["operator"])
    prometheus = peer_pod("prometheus", np["prometheus"])
    controller = peer_pod("ingress-controller", np["ingressController"])
    client = peer_pod("client", np["clients"])
    intruder = Endpoint("intruder", "unrelated", {"app": "curl", "ray-platform.io/client": "true"})
    neighbour = Endpoint("neighbour", NAMESPACE, {"app": "something-else"})
    dns = peer_pod("coredns", np["dns"])
    internet = Endpoint("internet", None, ip="93.184.216.34")
    api_server = Endpoint("kube-apiserver", None, ip=first_address((np["kubernetesApi"]["cidrs"] or ["10.96.0.1/32"])[0]))
    exposures = values["ingress"]
    problems: list[str] = []

    def expect(source: Endpoint, destination: Endpoint, port: int, want: bool, why: str, protocol: str = "TCP") -> None:
        if allowed(policies, source, destination, port, protocol) != want:
            problems.append(f"{source.name} -> {destination.name}:{port}/{protocol} should be "
                            f"{'allowed' if want else 'denied'} ({why})")

    def component(pod: Endpoint) -> str:
        return pod.labels.get("app.kubernetes.io/component", "")

    def is_head(pod: Endpoint) -> bool:
        return pod.labels.get("ray-platform.io/node-type") == "head"

    cluster_key = {"raycluster": "rayCluster", "stable-diffusion": "stableDiffusion"}

    def cluster_of(pod: Endpoint) -> tuple[str, dict[str, Any], bool]:
        """(values key, effective cluster values, Serve port exposed) of a pod's cluster: a
        RayService of yours (component rayservice-<name>) takes rayCluster.autoscaler's keys it
        leaves out."""
        if component(pod) in cluster_key:
            key = cluster_key[component(pod)]
            return key, values[key], bool(exposures["stableDiffusion"]["enabled"] and key == "stableDiffusion")
        if component(pod).startswith("rayjob-"):
            # A RayJob's own cluster: rayCluster.autoscaler's keys under its own, no Serve port.
            name = component(pod).removeprefix("rayjob-")
            given = values["rayJobs"][name].get("cluster") or {}
            cluster = {"autoscaler": {**values["rayCluster"]["autoscaler"], **(given.get("autoscaler") or {})}}
            return f"rayJobs.{name}", cluster, False
        name = component(pod).removeprefix("rayservice-")
        service = values["rayServices"][name]
        given = service.get("cluster") or {}
        cluster = {"autoscaler": {**values["rayCluster"]["autoscaler"], **(given.get("autoscaler") or {})},
                   "gcsFaultTolerance": given.get("gcsFaultTolerance") or {}}
        return f"rayServices.{name}", cluster, bool((service.get("ingress") or {}).get("enabled"))

    for pod in pods:
        key, cluster, serve_exposed = cluster_of(pod)
        head = is_head(pod)
        # Prometheus -> metrics.
        for port in [8080] + ([44217, 44227] if head else []):
            expect(prometheus, pod, port, bool(np["prometheus"]["enabled"]), "Prometheus scrapes metrics")
        expect(prometheus, pod, 6379, False, "Prometheus needs metrics ports only")
        # The ingress controller -> serve only with the service's own ingress; dashboard only with its own.
        expect(controller, pod, 8000, serve_exposed, "the service's ingress is enabled")
        if head:
            dash = exposures["dashboard"]
            expect(controller, pod, 8265, bool(dash["enabled"] and dash["cluster"] == key), "ingress.dashboard.enabled")
        for port in (6379, 10001, 52365):
            expect(controller, pod, port, False, "never GCS, Ray Client or agent through the ingress")
        # Strangers: another namespace (even with the client label), a neighbour without it.
        for port in (8265, 6379, 10001, 8000, 8080, 52365):
            expect(intruder, pod, port, False, "a pod in an unrelated namespace")
        for port in (8265, 6379, 10001):
            expect(neighbour, pod, port, False, "an unlabelled pod of the release namespace")
        # The operator -> dashboard and agent (and Serve health of a RayService).
        if head:
            expect(operator, pod, 8265, True, "operator -> dashboard")
            expect(operator, pod, 52365, True, "operator -> dashboard agent")
            if key != "rayCluster" and not key.startswith("rayJobs."):
                expect(operator, pod, 8000, True, "operator -> Serve proxy health")
        expect(operator, pod, 6379, False, "the operator needs no GCS")
        # Clients.
        if head:
            expect(client, pod, 8265, bool(np["clients"]["enabled"]), "networkPolicy.clients -> dashboard")
            expect(client, pod, 10001, bool(np["clients"]["enabled"]), "networkPolicy.clients -> Ray Client")
        expect(client, pod, 6379, False, "clients never reach GCS")
        # Egress: DNS, downloads, the Kubernetes API, Redis.
        expect(pod, dns, 53, True, "DNS", "UDP")
        expect(pod, internet, 443, bool(np["egress"]["allowAll"]), "networkPolicy.egress.allowAll")
        if not np["egress"]["allowAll"] and np["egress"]["cidrs"]:
            mirror = Endpoint("mirror", None, ip=first_address(np["egress"]["cidrs"][0]))
            expect(pod, mirror, (np["egress"]["ports"] or [443])[0], True, "networkPolicy.egress.cidrs")
        autoscaler = cluster.get("autoscaler", {}).get("enabled")
        if head and autoscaler:
            expect(pod, api_server, np["kubernetesApi"]["ports"][0], True, "autoscaler -> Kubernetes API")
        if not head and not np["egress"]["allowAll"]:
            expect(pod, api_server, 443, False, "workers have no business with the Kubernetes API")
        ft = cluster.get("gcsFaultTolerance") or {}
        if head and ft.get("enabled"):
            redis = Endpoint("redis", None, ip=first_address((np["redis"]["cidrs"] or ["10.30.0.5/32"])[0]))
            expect(pod, redis, redis_port(ft["redisAddress"]), True, "GCS fault tolerance -> Redis")
    # A RayJob's submitter pods (K8sJobMode) -> the dashboard of the cluster they submit to, only.
    for name, job in (values.get("rayJobs") or {}).items():
        if job.get("enabled", True) is False or job.get("submissionMode", "K8sJobMode") != "K8sJobMode":
            continue
        submitter = Endpoint(f"submitter of rayJobs.{name}", NAMESPACE, {
            "app.kubernetes.io/name": "ray-platform", "app.kubernetes.io/instance": "ray-platform",
            "app.kubernetes.io/component": "rayjob-submitter", "ray-platform.io/rayjob": name})
        target = f"rayjob-{name}" if isinstance(job.get("cluster"), dict) else "raycluster"
        for pod in pods:
            if is_head(pod):
                expect(submitter, pod, 8265, component(pod) == target, "submitter -> its cluster's dashboard")
            expect(submitter, pod, 6379, False, "a submitter needs no GCS")
    # Within a cluster everything; across clusters nothing.
    for source in pods:
        for destination in pods:
            same = component(source) == component(destination)
            if is_head(destination):
                expect(source, destination, 6379, same, "worker -> head GCS within one cluster only")
            expect(source, destination, 10002, same, "Ray worker ports within one cluster only")
    return problems


@pytest.fixture
def scenario_objects(render, scenario: Scenario) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    values = merged_values(scenario.values_files)
    if not values["networkPolicy"]["enabled"]:
        pytest.skip(f"{scenario} turns networkPolicy off")
    return render(scenario), values


def test_reachability_matrix(scenario_objects) -> None:
    objects, values = scenario_objects
    assert netpol.ray_pods(objects, NAMESPACE), "no Ray pods rendered"
    problems = matrix_violations(objects, values)
    assert not problems, "\n".join(problems)


def test_every_ray_pod_is_isolated_and_nothing_else_is(scenario_objects) -> None:
    objects, _ = scenario_objects
    policies = of_kind(objects, "NetworkPolicy")
    for pod in netpol.ray_pods(objects, NAMESPACE):
        types = {t for p in policies if netpol.selects(p, pod) for t in netpol.policy_types(p)}
        assert types == {"Ingress", "Egress"}, f"{pod.name} is not isolated in both directions: {types}"
    stranger = Endpoint("operator", NAMESPACE, {"app.kubernetes.io/name": "kuberay-operator",
                                               "app.kubernetes.io/instance": "ray-platform"})
    assert not [p["metadata"]["name"] for p in policies if netpol.selects(p, stranger)]


def test_named_ports_of_policies_exist_on_the_pods_they_target(scenario_objects) -> None:
    """A port name no selected pod declares silently matches nothing: catch typos."""
    objects, _ = scenario_objects
    pods = netpol.ray_pods(objects, NAMESPACE)
    for policy_obj in of_kind(objects, "NetworkPolicy"):
        selected = [pod for pod in pods if netpol.selects(policy_obj, pod)]
        for rule in policy_obj["spec"].get("ingress") or []:
            for port in rule.get("ports") or []:
                if isinstance(port.get("port"), str):
                    assert any(pod.resolve(port["port"], port.get("protocol", "TCP")) for pod in selected), (
                        f"{policy_obj['metadata']['name']}: no selected pod declares port {port['port']!r}")


# --- the matrix catches broken policies --------------------------------------------------

def _drop(name_suffix: str) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(objects: list[dict[str, Any]]) -> None:
        objects[:] = [o for o in objects if not (o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith(name_suffix))]
    return mutate


def _edit(name_suffix: str, change: Callable[[dict[str, Any]], None]) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"].endswith(name_suffix):
                change(obj["spec"])
    return mutate


def _add_open_policy(objects: list[dict[str, Any]]) -> None:
    objects.append({"kind": "NetworkPolicy", "metadata": {"name": "oops", "namespace": NAMESPACE},
                    "spec": {"podSelector": {}, "ingress": [{}]}})


MUTATIONS: dict[str, tuple[Callable[[list[dict[str, Any]]], None], str]] = {
    "no within-cluster policy": (_drop("-sd-within-cluster"), "-> "),
    "operator peer mislabelled": (_edit("-from-operator", lambda s: s["ingress"][0]["from"][0].update(
        podSelector={"matchLabels": {"app": "kuberay"}})), "kuberay-operator ->"),
    "prometheus on the wrong port": (_edit("-from-prometheus", lambda s: s["ingress"][0].update(
        ports=[{"port": 9999}])), "prometheus ->"),
    "dashboard port name typo": (_edit("-from-operator", lambda s: s["ingress"][0]["ports"][0].update(
        port="dashbaord")), ":8265"),
    "an allow-all ingress policy": (_add_open_policy, "intruder ->"),
    "egress without any rule": (_edit("-egress", lambda s: s.update(egress=[])), "coredns:53/UDP"),
    "intra-cluster policy too wide": (_edit("-within-cluster", lambda s: s["ingress"][0].update({"from": [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "ray-platform"}}}]})), "should be denied"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_matrix_catches_broken_policies(default_objects, name: str) -> None:
    mutate, expected = MUTATIONS[name]
    objects = copy.deepcopy(default_objects)
    values = merged_values(())
    assert not matrix_violations(objects, values)
    mutate(objects)
    problems = matrix_violations(objects, values)
    assert any(expected in problem for problem in problems), f"{name}: not caught; found {problems[:5]}"
