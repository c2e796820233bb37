"""A real Ray head behind one RayService of the local cluster.

Simulated nodes run no container, so the operator of the local cluster would never find a Ray
behind a RayService. This starts one on this machine, for the head pod the operator created,
shaped by what the operator put into that pod:

- the `ray start` command the operator generated from the chart's rayStartParams
  (KUBERAY_GEN_RAY_START_CMD of the Ray container), with what cannot hold on a host replaced:
  the node and dashboard address are the head pod's IP (a loopback address that kwok assigned)
  instead of 0.0.0.0, the ports are the pod's, `--block` is dropped (it runs detached);
- the pod's token (RAY_AUTH_MODE and RAY_AUTH_TOKEN from the Secret its env names) and its
  other literal environment (HF_HUB_OFFLINE, PYTHONPATH, ...); fieldRef values from the pod;
- the pod's ConfigMap volumes (the Serve app's files) written below a folder of their own, with
  PYTHONPATH entries moved along;
- the tiny Stable Diffusion pipeline (serving/tiny_model.py, no model hub here) built where the
  Serve config's model_id points (a local folder: `weights.source: local`).

It runs in a network namespace of its own with only a loopback interface (netns.py): Ray 2.60
binds several servers on every interface, which there means that namespace's loopback alone.
The dashboard and Serve ports come out on the head pod's IP on the host's loopback through
relays (relay.py); nothing else of this Ray is reachable, and it can reach nothing.

The real Ray's shape is the machine's, not the chart's: one process tree on this machine's cores,
given as logical CPUs (and memory) what the head and the worker pods of that cluster declare in
their `ray start` commands, so that the Serve replicas the chart sizes for worker pods fit.

The operator then reaches this head as it would in a cluster (network.py: the head Service's
name resolves to the head pod's IP; the Serve proxy probe goes to the pod IP), PUTs the Serve
config, reads the applications' status and writes it into the RayService.
"""
from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from cluster.local import netns
from cluster.local.controlplane import Layout
from cluster.local.kubectl import Kubectl
from cluster.local.release import rayservice_cluster_names
from harness.tools import REPO
from serving.local_ray import end_session

# Where `make up` and the tests put the tiny pipeline (weights.local.path): outside the state
# folder, so that `make down` keeps it for the next `make up`.
TINY_MODEL_DIR = REPO / ".tools" / "models" / "tiny-sd"
MODEL_DEPLOYMENT = "StableDiffusionModel"
RAY_CONTAINER = 0  # the operator's RayContainerIndex
# Serve's proxy port is not a `ray start` flag; the Serve config would name it (http_options).
SERVE_PORT = 8000
# Flags whose pod value cannot hold on a host (a cluster-wide address, a wrong shape) or that
# this module sets itself.
REPLACED_FLAGS = {"--head", "--block", "--address", "--node-ip-address", "--dashboard-host",
                  "--num-cpus", "--num-gpus", "--memory", "--temp-dir", "--port",
                  "--dashboard-port", "--ray-client-server-port", "--metrics-export-port"}
# Env that names cluster-wide addresses or is the operator's bookkeeping.
SKIPPED_ENV = {"RAY_ADDRESS", "RAY_IP", "FQ_RAY_IP", "KUBERAY_GEN_RAY_START_CMD"}
Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class HeadRecord:
    """What `stop` needs, kept in the local cluster's state folder."""

    namespace: str
    rayservice: str
    cluster: str
    pod: str
    pod_ip: str
    session_id: int  # of `ray start` and the daemons it leaves behind
    relay_sessions: list[int]
    namespace_name: str  # the network namespace the head runs in
    temp_dir: str
    dashboard_port: int
    serve_port: int
    cpus: float
    memory: int

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.pod_ip}:{self.dashboard_port}"

    @property
    def serve_url(self) -> str:
        return f"http://{self.pod_ip}:{self.serve_port}"


def shape_text(record: HeadRecord) -> str:
    memory = f", {record.memory / 2**30:.0f} GiB of memory" if record.memory else ""
    return (f"{record.cpus:g} logical CPUs{memory} declared by the head and worker pods, on "
            f"{os.cpu_count()} cores")


def records_dir(layout: Layout) -> Path:
    return layout.state_dir / "ray-heads"


def record_path(layout: Layout, namespace: str, cluster: str) -> Path:
    return records_dir(layout) / f"{namespace}.{cluster}.json"


def read_record(layout: Layout, namespace: str, cluster: str) -> HeadRecord | None:
    path = record_path(layout, namespace, cluster)
    try:
        return HeadRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


# --- what the operator put into the pods -----------------------------------------------------

def ray_start_flags(command: str) -> list[tuple[str, str | None]]:
    """(flag, value) pairs of the `ray start` command KubeRay generated (`--k=v` or `--k`)."""
    words = shlex.split(command)
    if words[:2] != ["ray", "start"]:
        raise ValueError(f"not a `ray start` command: {command!r}")
    flags: list[tuple[str, str | None]] = []
    for word in words[2:]:
        if not word.startswith("--"):
            raise ValueError(f"unexpected argument {word!r} in {command!r}")
        key, sep, value = word.partition("=")
        flags.append((key, value if sep else None))
    return flags


def generated_command(pod: Mapping[str, Any]) -> str:
    container = pod["spec"]["containers"][RAY_CONTAINER]
    for entry in container.get("env") or []:
        if entry.get("name") == "KUBERAY_GEN_RAY_START_CMD":
            return entry.get("value") or ""
    raise RuntimeError(f"pod {pod['metadata']['name']}: no KUBERAY_GEN_RAY_START_CMD in its Ray "
                       "container (not created by the KubeRay operator?)")


def declared_resources(pods: Iterable[Mapping[str, Any]]) -> tuple[float, int]:
    """Logical CPUs and memory bytes the pods' `ray start` commands declare, summed."""
    cpus, memory = 0.0, 0
    for pod in pods:
        flags = dict(ray_start_flags(generated_command(pod)))
        cpus += float(flags.get("--num-cpus") or 0)
        memory += int(float(flags.get("--memory") or 0))
    return cpus, memory


def container_ports(pod: Mapping[str, Any]) -> dict[str, int]:
    container = pod["spec"]["containers"][RAY_CONTAINER]
    return {port["name"]: int(port["containerPort"]) for port in container.get("ports") or []
            if port.get("name")}


def field_value(pod: Mapping[str, Any], path: str) -> str | None:
    """The value of a downward-API fieldRef, for the fields a Ray pod uses."""
    metadata = pod.get("metadata") or {}
    if path == "metadata.name":
        return metadata.get("name")
    if path == "metadata.namespace":
        return metadata.get("namespace")
    if path == "status.podIP":
        return (pod.get("status") or {}).get("podIP")
    for key in ("labels", "annotations"):
        prefix = f"metadata.{key}['"
        if path.startswith(prefix) and path.endswith("']"):
            return (metadata.get(key) or {}).get(path[len(prefix):-2])
    return None


def secret_value(kubectl: Kubectl, namespace: str, name: str, key: str) -> str:
    secret = kubectl.get("secret", name, "-n", namespace)
    data = (secret.get("data") or {}).get(key)
    if data is None:
        raise RuntimeError(f"Secret {namespace}/{name} has no key {key!r}")
    return base64.b64decode(data).decode()


def pod_environment(kubectl: Kubectl, pod: Mapping[str, Any], mounts_root: Path
                    ) -> dict[str, str]:
    """The Ray container's environment as the kubelet would build it (literal values, Secret
    keys, fieldRefs), PYTHONPATH entries moved below mounts_root."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for entry in pod["spec"]["containers"][RAY_CONTAINER].get("env") or []:
        name = entry["name"]
        if name in SKIPPED_ENV:
            continue
        source = entry.get("valueFrom") or {}
        if "value" in entry:
            env[name] = entry["value"]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[name] = secret_value(kubectl, namespace, ref["name"], ref["key"])
        elif "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
            if value is not None:
                env[name] = value
    if "PYTHONPATH" in env:
        env["PYTHONPATH"] = os.pathsep.join(
            str(mounts_root / entry.lstrip("/")) for entry in env["PYTHONPATH"].split(os.pathsep)
            if entry)
    return env


def write_configmap_mounts(kubectl: Kubectl, pod: Mapping[str, Any], mounts_root: Path) -> list[Path]:
    """Every ConfigMap volume of the Ray container, written below mounts_root/<mountPath>."""
    namespace = pod["metadata"]["namespace"]
    volumes = {volume["name"]: volume for volume in pod["spec"].get("volumes") or []}
    written = []
    for mount in pod["spec"]["containers"][RAY_CONTAINER].get("volumeMounts") or []:
        config_map = (volumes.get(mount["name"]) or {}).get("configMap")
        if not config_map:
            continue
        data = kubectl.get("configmap", config_map["name"], "-n", namespace).get("data") or {}
        folder = mounts_root / mount["mountPath"].lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        for key, text in data.items():
            (folder / key).write_text(text)
        written.append(folder)
    return written


def model_folder(rayservice: Mapping[str, Any]) -> Path:
    """Where the Serve config's model deployment loads its pipeline from (a local folder)."""
    config = yaml.safe_load(rayservice["spec"].get("serveConfigV2") or "") or {}
    for app in config.get("applications") or []:
        for deployment in app.get("deployments") or []:
            if deployment.get("name") == MODEL_DEPLOYMENT:
                model_id = str((deployment.get("user_config") or {}).get("model_id") or "")
                if not model_id.startswith("/"):
                    raise RuntimeError(
                        f"the Serve config loads the model {model_id!r} from a model hub, which "
                        "the local cluster cannot reach: install with "
                        "stableDiffusion.weights.source=local and weights.local.path set to a "
                        f"folder on this machine (make up uses {TINY_MODEL_DIR})")
                return Path(model_id)
    raise RuntimeError(f"no {MODEL_DEPLOYMENT} deployment in the RayService's serveConfigV2")


def ensure_tiny_model(folder: Path, say: Say = _say) -> Path:
    if (folder / "model_index.json").is_file():
        return folder
    say(f"real Ray: building the tiny Stable Diffusion pipeline (random weights) in {folder} ...")
    result = subprocess.run([sys.executable, "-c",
                             "import sys; from serving.tiny_model import build_tiny_pipeline; "
                             "build_tiny_pipeline(sys.argv[1])", str(folder)],
                            env={**os.environ, "PYTHONPATH": str(REPO / "scripts")},
                            capture_output=True, text=True)
    if result.returncode != 0:  # the libraries' chatter is shown only when it matters
        raise RuntimeError(f"building the tiny pipeline failed:\n{result.stderr[-3000:]}")
    return folder


# --- the head pod of a RayService's cluster --------------------------------------------------

def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:.0f} s")
        time.sleep(interval)


def cluster_pods(kubectl: Kubectl, namespace: str, cluster: str) -> list[dict[str, Any]]:
    return kubectl.get("pods", "-n", namespace, "-l", f"ray.io/cluster={cluster}")["items"]


def head_pod(pods: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if labels.get("ray.io/node-type") == "head" and (pod.get("status") or {}).get("podIP") \
                and not pod["metadata"].get("deletionTimestamp"):
            return pod
    return None


def ray_start_argv(pod: Mapping[str, Any], cpus: float, memory: int, temp_dir: str
                   ) -> list[str]:
    """`ray start` as the operator generated it for the pod, on the pod's IP and ports; what a
    pod does not name stays at Ray's defaults (the head's network namespace is its own)."""
    pod_ip = pod["status"]["podIP"]
    ports = container_ports(pod)
    kept = [f"{key}={value}" if value is not None else key
            for key, value in ray_start_flags(generated_command(pod)) if key not in REPLACED_FLAGS]
    argv = [str(Path(sys.executable).with_name("ray")), "start", "--head",
            f"--node-ip-address={pod_ip}", f"--dashboard-host={pod_ip}",
            f"--port={ports.get('gcs-server', 6379)}",
            f"--dashboard-port={ports.get('dashboard', 8265)}",
            f"--ray-client-server-port={ports.get('client', 10001)}",
            f"--metrics-export-port={ports.get('metrics', 8080)}",
            f"--num-cpus={cpus:g}", "--num-gpus=0", f"--temp-dir={temp_dir}"]
    if memory:
        argv.append(f"--memory={memory}")
    return argv + kept


def dashboard_answers(url: str, token: str | None) -> bool:
    request = urllib.request.Request(f"{url}/api/version")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(layout: Layout, kubectl: Kubectl, namespace: str, rayservice: str,
          cluster: str | None = None, timeout: float = 300, say: Say = _say) -> HeadRecord:
    """Start the real Ray head for one of the RayService's clusters (default: the newest, the
    pending one during an upgrade); idempotent."""
    service = wait_for(f"RayService {namespace}/{rayservice} has no RayCluster",
                       lambda: (lambda rs: rs if rayservice_cluster_names(rs) else None)(
                           kubectl.get("rayservice", rayservice, "-n", namespace)), timeout)
    cluster = cluster or rayservice_cluster_names(service)[-1]
    pods = wait_for(f"no head pod with an IP in RayCluster {cluster}",
                    lambda: (lambda found: found if head_pod(found) else None)(
                        cluster_pods(kubectl, namespace, cluster)), timeout)
    head = head_pod(pods)
    existing = read_record(layout, namespace, cluster)
    if existing and existing.pod == head["metadata"]["name"] and _session_alive(existing):
        return existing
    if existing:
        stop(layout, namespace, cluster)
    model = ensure_tiny_model(model_folder(service), say)
    temp_dir = tempfile.mkdtemp(prefix="rphead-", dir="/tmp")  # short: Ray's socket paths
    mounts_root = Path(temp_dir) / "pod-mounts"
    write_configmap_mounts(kubectl, head, mounts_root)
    env = {**os.environ, **pod_environment(kubectl, head, mounts_root)}
    pod_ip = head["status"]["podIP"]
    env.update({
        # Serve's HTTP proxy on the head pod's IP, where the operator probes it.
        "RAY_SERVE_DEFAULT_HTTP_HOST": pod_ip,
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",  # no model hub is reachable from here
        "HF_HOME": str(Path(temp_dir) / "hf"),
        "PYTHONDONTWRITEBYTECODE": "1",
        # The head's autoscaler and dashboard metrics servers on the pod's ports for them.
        "AUTOSCALER_METRIC_PORT": str(container_ports(head).get("as-metrics", 44217)),
        "DASHBOARD_METRIC_PORT": str(container_ports(head).get("dash-metrics", 44227)),
    })
    cpus, memory = declared_resources(pods)
    argv = ray_start_argv(head, cpus, memory, temp_dir)
    log_path = Path(temp_dir) / "ray-start.log"
    dashboard_port = container_ports(head).get("dashboard", 8265)
    serve_port = container_ports(head).get("serve", SERVE_PORT)
    sandbox = netns.name_for(str(layout.state_dir), namespace, cluster)
    netns.create(sandbox)
    say(f"real Ray: starting a Ray head for RayService {namespace}/{rayservice} on its head pod's "
        f"IP {pod_ip} (network namespace {sandbox}, loopback only; {cpus:g} logical CPUs on "
        f"this machine's {os.cpu_count()} cores; model {model}) ...")
    with log_path.open("wb") as log:
        process = subprocess.Popen(netns.exec_prefix(sandbox) + argv, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    sockets = Path(temp_dir) / "relay"
    sockets.mkdir()
    relays = [start_relay(side, sockets, pod_ip, [dashboard_port, serve_port], temp_dir,
                          netns.exec_prefix(sandbox) if side == "inside" else [])
              for side in ("inside", "outside")]
    record = HeadRecord(namespace, rayservice, cluster, head["metadata"]["name"], pod_ip,
                        process.pid, relays, sandbox, temp_dir, dashboard_port, serve_port,
                        cpus, memory)
    path = record_path(layout, namespace, cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record), indent=2))
    try:
        rc = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
    if rc != 0:
        text = log_path.read_text(errors="replace")[-3000:]
        stop(layout, namespace, cluster, keep_logs=True)
        raise RuntimeError(f"ray start for {namespace}/{rayservice} failed ({rc}): {text}")
    token = env.get("RAY_AUTH_TOKEN") if env.get("RAY_AUTH_MODE") == "token" else None
    wait_for(f"the real Ray head's dashboard at {record.dashboard_url} did not answer",
             lambda: dashboard_answers(record.dashboard_url, token), 120, interval=0.5)
    return record


def start_relay(side: str, sockets: Path, address: str, ports: list[int], temp_dir: str,
                prefix: list[str]) -> int:
    """One side of the relay (relay.py) in a session of its own; its session id."""
    argv = prefix + [sys.executable, "-m", "cluster.local.relay", side, f"--dir={sockets}",
                     f"--address={address}", *[f"--port={port}" for port in ports]]
    with (Path(temp_dir) / f"relay-{side}.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, "PYTHONPATH": str(REPO / "scripts")})
    return process.pid


def _session_alive(record: HeadRecord) -> bool:
    try:
        os.kill(record.session_id, 0)
    except ProcessLookupError:
        # `ray start` exits once the head runs; its daemons keep the session.
        return any(_in_session(pid, record.session_id) for pid in _pids())
    return True


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _in_session(pid: int, sid: int) -> bool:
    try:
        return os.getsid(pid) == sid
    except OSError:
        return False


def session_listeners(session_id: int) -> list[str]:
    """host:port of every TCP socket listening in a process session, as its own network
    namespace sees them (for checks)."""
    inodes: set[str] = set()
    members = [pid for pid in _pids() if _in_session(pid, session_id)]
    for pid in members:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for pid in members[:1]:  # one member's view: the session shares one network namespace
        for table, family in (("tcp", 4), ("tcp6", 6)):
            try:
                lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                    continue
                address, port = fields[1].split(":")
                found.append(f"{_decode_address(address, family)}:{int(port, 16)}")
    return sorted(set(found))


def _decode_address(hex_address: str, family: int) -> str:
    import ipaddress

    raw = bytes.fromhex(hex_address)
    if family == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return f"[{ipaddress.IPv6Address(words)}]"


def stop(layout: Layout, namespace: str, cluster: str, keep_logs: bool = False) -> bool:
    record = read_record(layout, namespace, cluster)
    record_path(layout, namespace, cluster).unlink(missing_ok=True)
    if record is None:
        return False
    for session in (record.session_id, *record.relay_sessions):
        end_session(session)
    netns.delete(record.namespace_name)
    if not keep_logs:
        shutil.rmtree(record.temp_dir, ignore_errors=True)
    return True


def stop_all(layout: Layout) -> int:
    """Stop every real Ray head of this local cluster (`make down`)."""
    stopped = 0
    for path in sorted(records_dir(layout).glob("*.json")):
        namespace, cluster = path.stem.split(".", 1)
        stopped += stop(layout, namespace, cluster)
    return stopped


def stop_orphans(layout: Layout, kubectl: Kubectl) -> list[str]:
    """Stop the real heads whose head pod is gone (deleted with its RayCluster, as the kubelet
    would stop the container); the clusters they served."""
    stopped = []
    for path in sorted(records_dir(layout).glob("*.json")):
        namespace, cluster = path.stem.split(".", 1)
        record = read_record(layout, namespace, cluster)
        pods = kubectl.run("get", "pod", record.pod if record else "-", "-n", namespace,
                           "--ignore-not-found", "-o", "name", check=False).stdout.strip()
        if record is None or not pods:
            stop(layout, namespace, cluster)
            stopped.append(f"{namespace}/{cluster}")
    return stopped
