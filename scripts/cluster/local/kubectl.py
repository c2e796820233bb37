"""kubectl (built from k8s.io/kubernetes at the control plane's version) against one cluster."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterable


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path):
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
                                input=stdin, text=True, capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def apply(self, objects: Iterable[dict[str, Any]], manager: str = "ray-platform-local") -> None:
        """Server-side apply (CRDs are too big for the client-side annotation)."""
        document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.run("apply", "--server-side", "--force-conflicts", f"--field-manager={manager}",
                 "-f", "-", stdin=json.dumps(document))

    def apply_files(self, paths: Iterable[Path]) -> None:
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager=ray-platform-local"]
        for path in paths:
            args += ["-f", str(path)]
        self.run(*args)

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("get", *args, "-o", "json").stdout)
