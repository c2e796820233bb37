"""A private single-node Ray cluster: `ray start --head` in its own process session, on ports of
its own, ended process by process (never `ray stop`, which would end every Ray on the machine)."""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterable, Optional

from harness.tools import CHART_DIR
from serving.serve_api import wait_http_ready

SERVE_FILES_DIR = CHART_DIR / "files" / "serve"

# Ray hands worker processes ports 10002-19999 by default: keep ours away from them.
_PORT_RANGE = (20000, 32000)
# Every port Ray would otherwise take at a fixed default (6379, 8265, 10001, 52365, ...) is set,
# so this cluster never collides with another Ray on the same machine. autoscaler_metrics and
# dashboard_metrics: the head's autoscaler (44217) and dashboard (44227) metrics servers, moved
# through AUTOSCALER_METRIC_PORT / DASHBOARD_METRIC_PORT.
PORT_NAMES = ("gcs", "dashboard", "client", "http", "agent_listen", "agent_grpc", "metrics", "node_manager",
              "object_manager", "runtime_env_agent", "autoscaler_metrics", "dashboard_metrics")


def free_port(exclude: Iterable[int] = ()) -> int:
    """A currently free TCP port on 127.0.0.1 in _PORT_RANGE (outside Ray's worker ports)."""
    excluded = set(exclude)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(500):
        port = rng.randint(*_PORT_RANGE)
        if port in excluded:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port found")


def free_ports(names: Iterable[str] = PORT_NAMES) -> Dict[str, int]:
    chosen: list = []
    for _ in names:
        chosen.append(free_port(chosen))
    return dict(zip(names, chosen))


def session_pids(sid: int) -> list:
    """The live (not zombie) processes of process session sid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state, fields[3] the session id; zombies need no killing.
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


_session_pids = session_pids  # the name other modules used first


def end_session(sid: int, grace_s: float = 3.0) -> None:
    """SIGTERM every process of the session, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = session_pids(sid)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5)
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = session_pids(sid)
        if not pids:
            return


def ray_start_command(ports: Dict[str, int], num_cpus: int, temp_dir: str) -> list:
    ray_bin = str(Path(sys.executable).with_name("ray"))
    return [
        ray_bin if os.path.exists(ray_bin) else "ray",
        "start",
        "--head",
        f"--port={ports['gcs']}",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={ports['dashboard']}",
        f"--ray-client-server-port={ports['client']}",
        f"--dashboard-agent-listen-port={ports['agent_listen']}",
        f"--dashboard-agent-grpc-port={ports['agent_grpc']}",
        f"--metrics-export-port={ports['metrics']}",
        f"--node-manager-port={ports['node_manager']}",
        f"--object-manager-port={ports['object_manager']}",
        f"--runtime-env-agent-port={ports['runtime_env_agent']}",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
    ]


class LocalRay:
    """A private single-node Ray cluster started with `ray start --head`.

    It runs in its own process session (setsid), so stop() ends exactly its processes.
    Token auth is switched off explicitly (Ray 2.60 turns it on for local clusters).
    """

    def __init__(
        self,
        pythonpath: Iterable[os.PathLike] = (SERVE_FILES_DIR,),
        num_cpus: int = 2,
        extra_env: Optional[Dict[str, str]] = None,
        temp_root: str = "/tmp",
    ):
        self.pythonpath = [str(p) for p in pythonpath]
        self.num_cpus = num_cpus
        self.extra_env = dict(extra_env or {})
        # Short path: Ray's unix sockets live below it (limit about 107 characters).
        self.temp_dir = tempfile.mkdtemp(prefix="rpsd-", dir=temp_root)
        self.ports = free_ports()
        self.gcs_port = self.ports["gcs"]
        self.dashboard_port = self.ports["dashboard"]
        self.http_port = self.ports["http"]
        self.sid: Optional[int] = None
        self.log_path = Path(self.temp_dir) / "ray-start.log"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_urls(self) -> Dict[str, str]:
        """Prometheus endpoints: node metrics (metrics-export-port), autoscaler, dashboard."""
        return {name: f"http://127.0.0.1:{self.ports[port]}/metrics" for name, port in
                (("metrics", "metrics"), ("as-metrics", "autoscaler_metrics"),
                 ("dash-metrics", "dashboard_metrics"))}

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "RAY_AUTH_MODE": "disabled",
                "RAY_USAGE_STATS_ENABLED": "0",
                "PYTHONPATH": os.pathsep.join(
                    self.pythonpath + [p for p in [env.get("PYTHONPATH")] if p]
                ),
                "HF_HUB_OFFLINE": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HOME": str(Path(self.temp_dir) / "hf"),
                "TOKENIZERS_PARALLELISM": "false",
                # Keep __pycache__ out of the chart's files/serve (shipped as a ConfigMap).
                "PYTHONDONTWRITEBYTECODE": "1",
                # A single-node cluster: Ray then keeps 127.0.0.1 as the node's address (otherwise
                # `ray start` swaps --node-ip-address=127.0.0.1 for the host's own address, and
                # every Ray process would talk to that address instead of loopback).
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                "AUTOSCALER_METRIC_PORT": str(self.ports["autoscaler_metrics"]),
                "DASHBOARD_METRIC_PORT": str(self.ports["dashboard_metrics"]),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout_s: float = 90.0) -> "LocalRay":
        """Start the cluster; on any failure or interruption (Ctrl-C, a signal handler's
        exception) stop what was started before passing it on: `with LocalRay()` calls no
        __exit__ when __enter__ raises. A failure keeps the temporary folder (its logs)."""
        try:
            return self._start(timeout_s)
        except Exception:
            self.stop(remove_temp_dir=False)
            raise
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout_s: float) -> "LocalRay":
        with open(self.log_path, "wb") as log:
            proc = subprocess.Popen(ray_start_command(self.ports, self.num_cpus, self.temp_dir), env=self.env(),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.sid = proc.pid
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(remove_temp_dir=False)
            raise RuntimeError(f"ray start timed out; log: {self.log_path}")
        if rc != 0:
            self.stop(remove_temp_dir=False)
            raise RuntimeError(f"ray start failed ({rc}): {self.log_path.read_text()[-3000:]}")
        try:
            wait_http_ready(f"{self.dashboard_url}/api/serve/applications/", timeout_s, poll_s=0.5)
        except TimeoutError:
            self.stop(remove_temp_dir=False)
            raise RuntimeError(f"Ray dashboard did not answer; logs in {self.temp_dir}") from None
        return self

    def stop(self, grace_s: float = 3.0, remove_temp_dir: bool = True) -> None:
        """End every process of this cluster's session (SIGTERM, then SIGKILL)."""
        if self.sid is not None:
            end_session(self.sid, grace_s)
            self.sid = None
        if remove_temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def logs(self, pattern: str = "*", tail_chars: int = 4000) -> str:
        """The ends of the session's log files matching pattern (for failure messages)."""
        out = []
        for path in sorted(Path(self.temp_dir).glob(f"session_latest/logs/**/{pattern}")):
            if path.is_file():
                out.append(f"== {path.name}\n{path.read_text(errors='replace')[-tail_chars:]}")
        return "\n".join(out)

    def __enter__(self) -> "LocalRay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
