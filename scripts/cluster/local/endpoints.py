"""EndpointSlices for Services whose pods have loopback IPs (every pod of the local cluster).

The API server refuses loopback addresses in EndpointSlices ("may not be in the loopback
range"), so kube-controller-manager's EndpointSlice controller writes no endpoint for any pod
of the local cluster, and every Service looks empty. The KubeRay operator counts the ready
endpoints of a RayService's serve Service to decide that it is Ready; without endpoints it never
is. This controller, part of the local cluster's simulated network (it runs in the network
proxy's process, network.py), mirrors what the real controller would write, with the one
difference the API forces: addressType FQDN (`<pod>.<namespace>.pod.<cluster domain>`) instead
of the pod's IPv4 address. Readiness, serving/terminating, targetRef and ports are as the real
controller computes them from the pods the Service selects, and the network proxy finds the
pod's IP through the targetRef.

Its slices carry `endpointslice.kubernetes.io/managed-by: ray-platform-local-network`, so the
real controller leaves them alone (it only manages its own).
"""
from __future__ import annotations

import ipaddress
import threading
import time
from typing import Any, Callable, Iterable, Mapping

MANAGED_BY = "ray-platform-local-network"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
SYNC_SECONDS = 1.0


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address) in LOOPBACK
    except ValueError:
        return False


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _selects(selector: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _target_port(service_port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def slice_name(service: str) -> str:
    return f"{service[:54].rstrip('-')}-loopback"


def desired_slices(services: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]],
                   cluster_domain: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, slice name) -> the EndpointSlice the real controller would write."""
    by_namespace: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        if _is_loopback((pod.get("status") or {}).get("podIP")):
            by_namespace.setdefault(pod["metadata"]["namespace"], []).append(pod)
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for service in services:
        spec, metadata = service.get("spec") or {}, service["metadata"]
        selector = spec.get("selector")
        if not selector or spec.get("type") == "ExternalName":
            continue
        namespace = metadata["namespace"]
        selected = sorted((pod for pod in by_namespace.get(namespace, ())
                           if _selects(selector, pod)), key=lambda pod: pod["metadata"]["name"])
        if not selected:
            continue
        publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
        endpoints = []
        for pod in selected:
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            ready = _ready(pod)
            endpoint = {
                "addresses": [f"{pod['metadata']['name']}.{namespace}.pod.{cluster_domain}"],
                "conditions": {"ready": (ready or publish_not_ready) and not terminating,
                               "serving": ready, "terminating": terminating},
                "targetRef": {"kind": "Pod", "namespace": namespace,
                              "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
            }
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                endpoint["nodeName"] = node
            endpoints.append(endpoint)
        ports = []
        for port in spec.get("ports") or []:
            target = _target_port(port, selected[0])
            if target is not None:
                entry = {"port": target, "protocol": port.get("protocol", "TCP")}
                if port.get("name"):
                    entry["name"] = port["name"]
                ports.append(entry)
        name = slice_name(metadata["name"])
        wanted[(namespace, name)] = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {SERVICE_NAME_LABEL: metadata["name"],
                                    MANAGED_BY_LABEL: MANAGED_BY},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                              "name": metadata["name"], "uid": metadata["uid"],
                                              "controller": True,
                                              "blockOwnerDeletion": True}]},
            "addressType": "FQDN", "endpoints": endpoints, "ports": ports,
        }
    return wanted


def _content(body: Mapping[str, Any]) -> tuple[Any, ...]:
    return (body.get("endpoints") or [], body.get("ports") or [],
            (body.get("metadata") or {}).get("labels") or {})


class LoopbackEndpoints:
    """Keeps the slices in step with Services and pods: list, compare, write what changed."""

    def __init__(self, kubeconfig: str, cluster_domain: str, log: Callable[[str], None]):
        from kubernetes import client, config

        self._api = config.new_client_from_config(config_file=kubeconfig)
        self._core = client.CoreV1Api(self._api)
        self._discovery = client.DiscoveryV1Api(self._api)
        self._domain = cluster_domain
        self._log = log

    def _json(self, items: Iterable[Any]) -> list[dict[str, Any]]:
        return [self._api.sanitize_for_serialization(item) for item in items]

    def sync_once(self) -> int:
        from kubernetes.client.exceptions import ApiException

        services = self._json(self._core.list_service_for_all_namespaces().items)
        pods = self._json(self._core.list_pod_for_all_namespaces().items)
        existing = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in self._json(
            self._discovery.list_endpoint_slice_for_all_namespaces(
                label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}").items)}
        wanted = desired_slices(services, pods, self._domain)
        writes = 0
        for key, body in wanted.items():
            current = existing.get(key)
            try:
                if current is None:
                    self._discovery.create_namespaced_endpoint_slice(key[0], body)
                elif _content(current) != _content(self._json([body])[0]):
                    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    self._discovery.replace_namespaced_endpoint_slice(key[1], key[0], body)
                else:
                    continue
                writes += 1
            except ApiException as error:
                if error.status not in (404, 409):  # namespace going away, a race: next round
                    self._log(f"endpoints: cannot write {key[0]}/{key[1]}: {error.reason}")
        for key in existing.keys() - wanted.keys():
            try:
                self._discovery.delete_namespaced_endpoint_slice(key[1], key[0])
                writes += 1
            except ApiException as error:
                if error.status != 404:
                    self._log(f"endpoints: cannot delete {key[0]}/{key[1]}: {error.reason}")
        return writes

    def run_forever(self) -> None:
        while True:
            try:
                self.sync_once()
            except Exception as error:  # keep the loop alive; say why a round failed
                self._log(f"endpoints: sync failed: {type(error).__name__}: {error}")
            time.sleep(SYNC_SECONDS)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="loopback-endpoints",
                                  daemon=True)
        thread.start()
        return thread
