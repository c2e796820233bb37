"""Where the project's files and pinned tools are, and the release every command installs or renders.

The one place for these names. Standard library only: bootstrap/ imports it with the system
python3, before the virtualenv exists.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "ray-platform"
VALUES_DIR = REPO / "values"
CI_VALUES_DIR = CHART_DIR / "ci"
SCHEMA_SOURCE = REPO / "schemas" / "values.schema.yaml"
TEST_DATA_DIR = REPO / "tests" / "data"
TOOLS_DIR = REPO / ".tools"
TOOLS_BIN = TOOLS_DIR / "bin"
# CRDs used for validation; CI points this at ../shared/crds (see README, "Checking an overlay").
DEFAULT_CRD_DIR = REPO.parent / "shared" / "crds"

# The release name and namespace of `helm template` in the harness and of `make up`.
RELEASE = "ray-platform"
NAMESPACE = "ray-platform"


class ToolMissing(RuntimeError):
    """A pinned tool is not installed; the message says how to install it."""


def crd_dir() -> Path:
    """The CRD folder: $RAY_PLATFORM_CRD_DIR, else ../shared/crds beside the repository."""
    configured = os.environ.get("RAY_PLATFORM_CRD_DIR")
    return Path(configured) if configured else DEFAULT_CRD_DIR
