"""Run the ray-platform Stable Diffusion Serve app on a throw-away local Ray.

Shared by the Serve tests (tests/serve/conftest.py) and scripts/bench_serve.py:

* build_tiny_pipeline(dir)   - writes a tiny, randomly initialised Stable Diffusion
                               pipeline (no download) that diffusers can load offline;
* LocalRay                   - `ray start --head` in its own process session, with its
                               own temp dir and ports, and a stop() that ends exactly
                               the processes of that session (never `ray stop`, which
                               would end every Ray on the machine);
* adapt_for_local(config, d) - points a chart-shaped Serve config at the tiny model on CPU;
* deploy(...) / wait_for_app - PUT the config to the dashboard's Serve REST API, the way
                               KubeRay does, and wait for an application status.

Only the standard library and PyYAML are needed at import time; requests, torch,
diffusers and transformers are imported by the functions that use them.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVE_FILES_DIR = REPO_ROOT / "charts" / "ray-platform" / "files" / "serve"

MODEL_DEPLOYMENT = "StableDiffusionModel"
INGRESS_DEPLOYMENT = "APIIngress"

# Ray hands worker processes ports 10002-19999 by default: keep ours away from them.
_PORT_RANGE = (20000, 32000)


# --------------------------------------------------------------------------- tiny model


def _byte_level_alphabet() -> list:
    """The 256 printable characters that byte-level BPE uses for the 256 byte values."""
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\xa1"), ord("\xac") + 1))
        + list(range(ord("\xae"), ord("\xff") + 1))
    )
    chars = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_tiny_tokenizer(folder: Path) -> Path:
    """A CLIP tokenizer folder: start/end tokens, 256 byte chars and their `</w>` forms."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in _byte_level_alphabet():
        vocab[ch] = len(vocab)
    for ch in _byte_level_alphabet():
        vocab[ch + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


def build_tiny_pipeline(out_dir: os.PathLike, seed: int = 0) -> Path:
    """Write a tiny Stable Diffusion pipeline (about 1 MB) to out_dir and return its path.

    Random weights from fixed seeds: the images are noise, but deterministic, and any
    size that is a multiple of 8 works (VAE scale factor 2, one UNet down-sampling).
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok_dir = write_tiny_tokenizer(out / "_tokenizer_src")
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), model_max_length=77)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            projection_dim=32,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(out))
    return out


# --------------------------------------------------------------------------- ports / ray


def free_port(exclude: Iterable[int] = ()) -> int:
    """A currently free TCP port on 127.0.0.1 in _PORT_RANGE (outside Ray's worker ports)."""
    import random

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


def _session_pids(sid: int) -> list:
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
        # Every port Ray would otherwise take at a fixed default (6379, 8265, 10001,
        # 52365, ...) is set explicitly, so this cluster never collides with another Ray
        # on the same machine.
        # autoscaler_metrics / dashboard_metrics: the head's autoscaler (44217) and dashboard
        # (44227) metrics servers, moved through AUTOSCALER_METRIC_PORT / DASHBOARD_METRIC_PORT.
        names = ("gcs", "dashboard", "client", "http", "agent_listen", "agent_grpc",
                 "metrics", "node_manager", "object_manager", "runtime_env_agent",
                 "autoscaler_metrics", "dashboard_metrics")
        chosen: list = []
        for _ in names:
            chosen.append(free_port(chosen))
        self.ports: Dict[str, int] = dict(zip(names, chosen))
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
                "AUTOSCALER_METRIC_PORT": str(self.ports["autoscaler_metrics"]),
                "DASHBOARD_METRIC_PORT": str(self.ports["dashboard_metrics"]),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout_s: float = 90.0) -> "LocalRay":
        import requests

        ray_bin = str(Path(sys.executable).with_name("ray"))
        cmd = [
            ray_bin if os.path.exists(ray_bin) else "ray",
            "start",
            "--head",
            f"--port={self.gcs_port}",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={self.ports['client']}",
            f"--dashboard-agent-listen-port={self.ports['agent_listen']}",
            f"--dashboard-agent-grpc-port={self.ports['agent_grpc']}",
            f"--metrics-export-port={self.ports['metrics']}",
            f"--node-manager-port={self.ports['node_manager']}",
            f"--object-manager-port={self.ports['object_manager']}",
            f"--runtime-env-agent-port={self.ports['runtime_env_agent']}",
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
        ]
        with open(self.log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.sid = proc.pid
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(remove_temp_dir=False)
            raise RuntimeError(f"ray start timed out; log: {self.log_path}")
        if rc != 0:
            self.stop(remove_temp_dir=False)
            raise RuntimeError(f"ray start failed ({rc}): {self.log_path.read_text()[-3000:]}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                r = requests.get(f"{self.dashboard_url}/api/serve/applications/", timeout=5)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop(remove_temp_dir=False)
        raise RuntimeError(f"Ray dashboard did not answer; logs in {self.temp_dir}")

    def stop(self, grace_s: float = 3.0, remove_temp_dir: bool = True) -> None:
        """End every process of this cluster's session (SIGTERM, then SIGKILL)."""
        if self.sid is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = _session_pids(self.sid)
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5)
            while pids and time.monotonic() < deadline:
                time.sleep(0.2)
                pids = _session_pids(self.sid)
            if not pids:
                break
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


# --------------------------------------------------------------------------- serve config


def find_deployment(app: Dict[str, Any], name: str) -> Dict[str, Any]:
    for dep in app.get("deployments", []):
        if dep.get("name") == name:
            return dep
    raise KeyError(f"deployment {name!r} not in application {app.get('name')!r}")


def adapt_for_local(config: Dict[str, Any], model_dir: os.PathLike) -> Dict[str, Any]:
    """A copy of a chart-shaped Serve config that runs the tiny model on CPU.

    Sets model_id to model_dir (and drops revision/variant, which belong to a hub id),
    device cpu, dtype float32, and num_gpus 0 for every deployment. Nothing else changes.
    """
    cfg = copy.deepcopy(config)
    for app in cfg["applications"]:
        for dep in app.get("deployments", []):
            opts = dep.get("ray_actor_options")
            if opts is not None:
                opts["num_gpus"] = 0
                opts.pop("accelerator_type", None)
        try:
            model = find_deployment(app, MODEL_DEPLOYMENT)
        except KeyError:
            continue
        uc = model.setdefault("user_config", {})
        uc["model_id"] = str(model_dir)
        uc["device"] = "cpu"
        uc["dtype"] = "float32"
        uc.pop("revision", None)
        uc.pop("variant", None)
    return cfg


def deploy(dashboard_url: str, config: Dict[str, Any], http_port: Optional[int] = None) -> None:
    """PUT a full Serve config (all applications) to the dashboard, as KubeRay does."""
    import requests

    body = copy.deepcopy(config)
    if http_port is not None:
        body.setdefault("http_options", {}).update({"host": "127.0.0.1", "port": http_port})
    r = requests.put(f"{dashboard_url}/api/serve/applications/", json=body, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"deploy failed: HTTP {r.status_code}: {r.text[:2000]}")


def serve_status(dashboard_url: str) -> Dict[str, Any]:
    import requests

    r = requests.get(f"{dashboard_url}/api/serve/applications/", timeout=10)
    r.raise_for_status()
    return r.json()


def wait_for_app(
    dashboard_url: str,
    app_name: str,
    want: Iterable[str] = ("RUNNING",),
    timeout_s: float = 120.0,
    fail_on: Iterable[str] = ("DEPLOY_FAILED", "UNHEALTHY"),
) -> Dict[str, Any]:
    """Poll until app_name's status is in want; raise on fail_on statuses or timeout."""
    import requests

    want, fail_on = set(want), set(fail_on) - set(want)
    deadline = time.monotonic() + timeout_s
    last: Dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = serve_status(dashboard_url).get("applications", {}).get(app_name, {})
        except requests.RequestException:
            last = {}
        status = last.get("status")
        if status in want:
            return last
        if status in fail_on:
            raise RuntimeError(f"application {app_name} is {status}: {json.dumps(last)[:4000]}")
        time.sleep(0.5)
    raise TimeoutError(f"application {app_name} not {sorted(want)} after {timeout_s}s: "
                       f"{json.dumps(last)[:4000]}")


def deploy_and_wait(
    ray: LocalRay, config: Dict[str, Any], timeout_s: float = 120.0
) -> Dict[str, Dict[str, Any]]:
    """Deploy config on ray and wait until every application in it is RUNNING."""
    deploy(ray.dashboard_url, config, http_port=ray.http_port)
    return {
        app["name"]: wait_for_app(ray.dashboard_url, app["name"], timeout_s=timeout_s)
        for app in config["applications"]
    }


def wait_http_ready(url: str, timeout_s: float = 60.0) -> None:
    """Wait until url answers 200 (the proxy may lag the RUNNING status a little)."""
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s}s")
