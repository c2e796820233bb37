"""GCS fault tolerance in the chaos scenarios, offline: the `redis` image's definition
(scripts/images/redis.py), the test's Redis objects (scripts/chaos/redis.py: restricted Pod
Security, valid, the password only in its Secret) and the chaos release with fault tolerance on,
rendered as the real node installs it: the RayService reads the password from the Secret, and
the rendered NetworkPolicies let the head (and KubeRay's Redis cleanup Job, built from the head's
pod) reach the Redis pods and nothing else outside the cluster. The live scenarios are
tests/node/test_chaos_serve.py's gcs-ft-on, gcs-killed and head-deleted-ft."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chaos import redis
from chaos.release import SERVICE_KEY, values
from cluster.node import platform
from harness import kubernetes, netpol, podsecurity
from harness.netpol import Endpoint, Port, allowed
from harness.pods import pod_templates
from harness.render import RenderRequest, of_kind
from harness.tools import NAMESPACE, REPO, VALUES_DIR
from harness.versions import SUPPORTED_KUBE_MINORS
from images import build, rootfs
from images import redis as redis_image

PASSWORD = "not-a-real-password-but-a-marker"
IMAGE = "localhost/ray-platform/redis:test"
# The Kubernetes API's endpoint and the pods' DNS server, as the live test reads them.
OUTSIDE = redis.Outside(api="10.250.0.1", api_port=6443, dns="10.250.0.2")


# --- the image ----------------------------------------------------------------------------

def test_the_redis_image_runs_redis_server_as_the_packages_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nredis:x:100:101::/var/lib/redis:/usr/sbin/nologin\n")
    uid, gid = redis_image.ids_of(tmp_path, redis_image.USER)
    config = redis_image.config(uid, gid)
    # Numeric: the kubelet checks runAsNonRoot against a number, never a name.
    assert config.user == "100:101"
    assert config.entrypoint == ("/usr/bin/redis-server",) and config.workdir == redis.DATA
    assert redis_image.PACKAGES == ("redis-server",)
    with pytest.raises(rootfs.BuildError, match="non-root"):
        redis_image.config(0, 0)
    with pytest.raises(rootfs.BuildError, match="no user nobody"):
        redis_image.ids_of(tmp_path, "nobody")


def test_make_images_builds_and_names_every_image_redis_included() -> None:
    assert "redis" in build.BUILDERS
    help_line = next(line for line in (REPO / "Makefile").read_text().splitlines()
                     if line.startswith("images:"))
    listed = re.search(r"images \(([^)]*)\)", help_line)
    assert listed, help_line
    assert [name.strip() for name in listed.group(1).split(",")] == list(build.BUILDERS)


# --- the test's Redis -----------------------------------------------------------------------

def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def test_the_redis_objects_are_valid_and_restricted() -> None:
    objects = redis.objects("chaos", IMAGE, PASSWORD)
    assert sorted(by_kind(objects)) == ["Deployment", "Secret", "Service"]
    for minor in (SUPPORTED_KUBE_MINORS[0], SUPPORTED_KUBE_MINORS[-1]):
        for obj in objects:
            assert kubernetes.problems(obj, minor) == [], (obj["kind"], minor)
    (pod,) = pod_templates(by_kind(objects)["Deployment"])
    assert podsecurity.violations(pod.template, "restricted", SUPPORTED_KUBE_MINORS[-1]) == []
    (container,) = pod.spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Redis writes only where the emptyDir is mounted.
    assert {m["mountPath"] for m in container["volumeMounts"]} == {redis.DATA}
    assert container["imagePullPolicy"] == "Never"


def test_the_password_is_only_in_the_secret_and_substituted_at_start() -> None:
    kinds = by_kind(redis.objects("chaos", IMAGE, PASSWORD))
    assert kinds["Secret"]["stringData"] == {redis.PASSWORD_KEY: PASSWORD}
    for kind in ("Deployment", "Service"):
        assert PASSWORD not in json.dumps(kinds[kind]), kind
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    (env,) = container["env"]
    assert env == {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": redis.PASSWORD_SECRET, "key": redis.PASSWORD_KEY}}}
    # A fresh password per call when none is given.
    first, second = (by_kind(redis.objects("chaos", IMAGE))["Secret"] for _ in range(2))
    assert first["stringData"] != second["stringData"]


def test_the_service_reaches_the_port_the_head_is_given() -> None:
    kinds = by_kind(redis.objects("chaos", IMAGE))
    (port,) = kinds["Service"]["spec"]["ports"]
    assert redis.address() == f"{redis.NAME}:{port['port']}"
    assert kinds["Service"]["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"][
        "matchLabels"] == redis.LABELS


# --- the chaos release with fault tolerance on, rendered ----------------------------------

def test_fault_tolerance_is_off_unless_asked() -> None:
    plain = values()
    assert "gcsFaultTolerance" not in plain["rayServices"][SERVICE_KEY]["cluster"]
    assert "networkPolicy" not in plain
    on = values(fault_tolerant=OUTSIDE)
    assert on["rayServices"][SERVICE_KEY]["cluster"]["gcsFaultTolerance"]["enabled"] is True
    # Everything else is the same release: the upgrade changes fault tolerance only.
    on["rayServices"][SERVICE_KEY]["cluster"].pop("gcsFaultTolerance")
    on.pop("networkPolicy")
    assert on == plain


@pytest.fixture(scope="module")
def rendered(renderer, values_file) -> list[dict[str, Any]]:
    """The chaos release with fault tolerance on, layered as the real node installs it."""
    files = (VALUES_DIR / "dev.yaml", values_file(values(fault_tolerant=OUTSIDE)),
             platform.REAL_NODE_VALUES)
    return renderer.render(RenderRequest(files))


def test_the_rayservice_reads_the_redis_password_from_the_secret(rendered) -> None:
    (service,) = of_kind(rendered, "RayService")  # Stable Diffusion is off
    options = service["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]
    assert options["redisAddress"] == redis.address()
    assert options["redisPassword"] == {"valueFrom": {"secretKeyRef": {
        "name": redis.PASSWORD_SECRET, "key": redis.PASSWORD_KEY}}}


def test_the_head_and_its_cleanup_job_reach_redis_and_nothing_else_does(rendered) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    pods = netpol.ray_pods(rendered, NAMESPACE)
    heads = [p for p in pods if p.labels.get("ray-platform.io/node-type") == "head"]
    workers = [p for p in pods if p.labels.get("ray.io/node-type") == "worker"]
    assert len(heads) == 1 and workers, [p.name for p in pods]
    store = Endpoint("redis", NAMESPACE, redis.LABELS, (Port(redis.PORT, "redis"),))
    internet = Endpoint("internet", None, ip="93.184.216.34")
    # KubeRay's Redis cleanup Job (when the RayCluster is deleted) runs the head's pod with
    # ray.io/node-type redis-cleanup: the chart's own labels still say head.
    cleanup = Endpoint("redis-cleanup", NAMESPACE,
                       {**heads[0].labels, "ray.io/node-type": "redis-cleanup"})
    assert allowed(policies, heads[0], store, redis.PORT)
    assert allowed(policies, cleanup, store, redis.PORT)
    assert not allowed(policies, heads[0], store, 6380), "only Redis' port"
    for worker in workers:
        assert not allowed(policies, worker, store, redis.PORT), worker.name
    for pod in pods:
        assert not allowed(policies, pod, internet, 443), f"{pod.name}: egress.allowAll is off"
    # The head's autoscaler still reaches the Kubernetes API, on its address and port only,
    # and every Ray pod the DNS server (Redis' and the head's Service names).
    api = Endpoint("kube-apiserver", None, ip=OUTSIDE.api)
    assert allowed(policies, heads[0], api, OUTSIDE.api_port)
    assert not allowed(policies, heads[0], api, 443)
    dns = Endpoint("dns", None, ip=OUTSIDE.dns)
    for pod in pods:
        assert allowed(policies, pod, dns, 53, "UDP"), pod.name
    other = Endpoint("other-redis", NAMESPACE, {"app.kubernetes.io/name": "other"},
                     (Port(redis.PORT, "redis"),))
    assert not allowed(policies, heads[0], other, redis.PORT), "only Redis' pods"
