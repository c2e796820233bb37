"""The cluster network as the KubeRay operator sees it, on loopback only.

A real cluster gives the operator two things this machine lacks: cluster DNS, which turns a head
Service's name (`<service>.<namespace>.svc.<cluster domain>`, the dashboard URL the operator
builds) into an address, and a network that reaches pod IPs. Here the operator gets
`HTTP_PROXY` pointing at this forward proxy, scoped to the operator's process (nothing on the
machine changes: no hosts entry, no resolver setting). For every request the proxy resolves the
Service through the live API, the way kube-proxy and cluster DNS would (Service port -> ready
EndpointSlice endpoint -> pod IP and target port), and forwards to that address.

The same process writes the EndpointSlices the API server refuses to take from the real
controller for loopback pod IPs (endpoints.py), which the operator counts for a RayService.

Simulated pods get loopback IPs (127.100.x.y), so a request for a head without a real Ray behind
it ends in "connection refused" on loopback and answers 502. Where a real Ray head was started
on the head pod's IP (cluster/local/ray_head.py), the operator's calls land on it. The operator
probes Serve proxies on pod IPs directly: Go's HTTP client never sends loopback addresses to a
proxy, so those probes need no help here.

Only addresses in 127.0.0.0/8 are ever dialled: a name that is not a Service of the cluster, or
an endpoint outside loopback, answers 502 without any connection. Every request is logged (one
line: method, URL, where it went, the answer), which is how tests see what the operator sent.

    python -m cluster.local.network --kubeconfig KUBECONFIG --port PORT [--cluster-domain D]

Hand-written on the standard library's HTTP server: the work is the name resolution through the
API, which no proxy package does; a plugin for one would be as long and add a dependency.
"""
from __future__ import annotations

import argparse
import http.client
import ipaddress
import re
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from cluster.local.endpoints import LoopbackEndpoints

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
# Headers that belong to one hop (RFC 9110 section 7.6.1), never forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
              "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
FORWARD_TIMEOUT_S = 30
CACHE_SECONDS = 2.0


class Unreachable(Exception):
    """Why a request cannot be forwarded (answered 502 with this text)."""


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in LOOPBACK
    except ValueError:
        return False


def service_name_pattern(cluster_domain: str) -> re.Pattern[str]:
    return re.compile(r"^(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\."
                      r"(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc\."
                      + re.escape(cluster_domain) + r"\.?$")


@dataclass(frozen=True)
class Destination:
    address: str
    port: int
    via: str  # how it was found, for the log


# (namespace, service) -> (Service, its EndpointSlices, pod name -> pod IP) as the API's JSON
ServiceLookup = Callable[[str, str], tuple[dict[str, Any] | None, list[dict[str, Any]],
                                           dict[str, str]]]


def endpoint_for(service: dict[str, Any] | None, slices: list[dict[str, Any]], port: int,
                 name: str, pod_ips: Mapping[str, str]) -> Destination:
    """The first ready loopback endpoint behind `port` of the Service, as kube-proxy picks one.
    The slices of the local cluster name pods, not IPs (endpoints.py): a pod's IP is found
    through the endpoint's targetRef."""
    if service is None:
        raise Unreachable(f"{name}: no such Service in the cluster")
    ports = (service.get("spec") or {}).get("ports") or []
    match = next((entry for entry in ports if entry.get("port") == port), None)
    if match is None:
        raise Unreachable(f"{name}: the Service has no port {port}")
    port_name = match.get("name") or ""
    for endpoint_slice in slices:
        target = next((entry.get("port") for entry in endpoint_slice.get("ports") or []
                       if (entry.get("name") or "") == port_name), None)
        if target is None:
            continue
        for endpoint in endpoint_slice.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            pod = (endpoint.get("targetRef") or {}).get("name") or "?"
            address = pod_ips.get(pod)
            if endpoint_slice.get("addressType") != "FQDN":
                address = next(iter(endpoint.get("addresses") or []), address)
            if not address:
                continue
            if not is_loopback(address):
                raise Unreachable(f"{name}: endpoint {address} is outside 127.0.0.0/8; "
                                  "this proxy only ever dials loopback")
            return Destination(address, int(target), f"Service {name} -> pod {pod}")
    raise Unreachable(f"{name}: no ready endpoint for port {port} ({port_name or 'unnamed'})")


class Resolver:
    """Host:port -> loopback destination, through the API; answers kept for CACHE_SECONDS."""

    def __init__(self, lookup: ServiceLookup, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN):
        self._lookup = lookup
        self._pattern = service_name_pattern(cluster_domain)
        self._cache: dict[tuple[str, int], tuple[float, Destination | Unreachable]] = {}
        self._lock = threading.Lock()

    def resolve(self, host: str, port: int) -> Destination:
        if is_loopback(host):
            return Destination(host, port, "loopback address")
        key = (host.lower(), port)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached and now - cached[0] < CACHE_SECONDS:
            answer = cached[1]
        else:
            answer = self._resolve(*key)
            with self._lock:
                self._cache[key] = (now, answer)
        if isinstance(answer, Unreachable):
            raise answer
        return answer

    def _resolve(self, host: str, port: int) -> Destination | Unreachable:
        found = self._pattern.match(host)
        if not found:
            return Unreachable(f"{host}: not a Service name of this cluster "
                               "(<service>.<namespace>.svc.<cluster domain>); nothing else is "
                               "reachable from the local cluster")
        name = f"{found['namespace']}/{found['service']}"
        try:
            service, slices, pod_ips = self._lookup(found["namespace"], found["service"])
            return endpoint_for(service, slices, port, name, pod_ips)
        except Unreachable as error:
            return error
        except Exception as error:  # the API answered with an error: say which
            return Unreachable(f"{name}: cannot read it from the API: {error}")


def kubernetes_lookup(kubeconfig: str) -> ServiceLookup:
    from kubernetes import client, config  # the test requirements carry the client

    api_client = config.new_client_from_config(config_file=kubeconfig)
    core, discovery = client.CoreV1Api(api_client), client.DiscoveryV1Api(api_client)

    def lookup(namespace: str, service: str) -> tuple[dict[str, Any] | None,
                                                      list[dict[str, Any]], dict[str, str]]:
        from kubernetes.client.exceptions import ApiException

        try:
            found = core.read_namespaced_service(service, namespace)
        except ApiException as error:
            if error.status == 404:
                return None, [], {}
            raise
        slices = [api_client.sanitize_for_serialization(item) for item in
                  discovery.list_namespaced_endpoint_slice(
                      namespace, label_selector=f"kubernetes.io/service-name={service}").items]
        pod_ips: dict[str, str] = {}
        for endpoint_slice in slices:
            for endpoint in endpoint_slice.get("endpoints") or []:
                pod = (endpoint.get("targetRef") or {}).get("name")
                if pod and pod not in pod_ips:
                    try:
                        ip = core.read_namespaced_pod(pod, namespace).status.pod_ip
                    except ApiException:
                        continue
                    if ip:
                        pod_ips[pod] = ip
        return api_client.sanitize_for_serialization(found), slices, pod_ips

    return lookup


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    resolver: Resolver  # set on the subclass that serve() builds
    log_line: Callable[[str], None]

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if url.scheme != "http" or not url.hostname:
            self._answer(400, b"only absolute http:// URLs are proxied\n")
            self.log_line(f"{self.command} {self.path} -> 400 (not an absolute http URL)")
            return
        try:
            destination = self.resolver.resolve(url.hostname, url.port or 80)
        except Unreachable as error:
            self._answer(502, f"{error}\n".encode())
            self.log_line(f"{self.command} {self.path} -> 502 ({error})")
            return
        target = url.path or "/"
        if url.query:
            target += f"?{url.query}"
        headers = {key: value for key, value in self.headers.items()
                   if key.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(destination.address, destination.port,
                                                timeout=FORWARD_TIMEOUT_S)
        try:
            connection.request(self.command, target, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
        except OSError as error:
            text = (f"{destination.via}: {destination.address}:{destination.port} {error} "
                    "(a simulated pod: nothing listens there unless a real Ray head was started "
                    "on it)")
            self._answer(502, f"{text}\n".encode())
            self.log_line(f"{self.command} {self.path} -> 502 ({text})")
            return
        finally:
            connection.close()
        forwarded = [(key, value) for key, value in answer.getheaders()
                     if key.lower() not in HOP_BY_HOP | {"content-length"}]
        self._answer(answer.status, payload, forwarded)
        self.log_line(f"{self.command} {self.path} -> {destination.address}:{destination.port} "
                      f"({destination.via}) {answer.status} in "
                      f"{(time.monotonic() - started) * 1000:.0f} ms")

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _forward

    def do_CONNECT(self) -> None:  # noqa: N802 - http.server's naming
        # The operator speaks plain HTTP to Ray; tunnels would hide what it sends.
        self._answer(405, b"CONNECT is not supported by the local cluster's network\n")
        self.log_line(f"CONNECT {self.path} -> 405")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass  # one line per request comes from log_line instead


def serve(resolver: Resolver, port: int, log_line: Callable[[str], None]) -> ThreadingHTTPServer:
    handler = type("Handler", (ProxyHandler,), {"resolver": resolver,
                                                "log_line": staticmethod(log_line)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cluster-domain", default=DEFAULT_CLUSTER_DOMAIN)
    args = parser.parse_args(argv)

    def log_line(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    server = serve(Resolver(kubernetes_lookup(args.kubeconfig), args.cluster_domain),
                   args.port, log_line)
    LoopbackEndpoints(args.kubeconfig, args.cluster_domain, log_line).start()
    log_line(f"cluster network proxy on 127.0.0.1:{args.port} (cluster domain "
             f"{args.cluster_domain}); dials 127.0.0.0/8 only; EndpointSlices for loopback pods")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
