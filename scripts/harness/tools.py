"""Where the project's files and pinned tools are."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "ray-platform"
VALUES_DIR = REPO / "values"
CI_VALUES_DIR = CHART_DIR / "ci"
TOOLS_BIN = REPO / ".tools" / "bin"
# CRDs used for validation; CI points this at ../shared/crds (see README, "Checking an overlay").
DEFAULT_CRD_DIR = REPO.parent / "shared" / "crds"


class ToolMissing(RuntimeError):
    """A pinned tool is not installed; the message says how to install it."""


def helm_binary(major: int) -> Path:
    path = TOOLS_BIN / f"helm{major}"
    if not path.is_file():
        raise ToolMissing(f"helm {major} is not installed at {path}: run `make setup`")
    return path


def crd_dir() -> Path:
    """The CRD folder: $RAY_PLATFORM_CRD_DIR, else ../shared/crds beside the repository."""
    configured = os.environ.get("RAY_PLATFORM_CRD_DIR")
    return Path(configured) if configured else DEFAULT_CRD_DIR
