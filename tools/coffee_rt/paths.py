"""Where things live: the repository, the downloads cache and the local stack's state."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools"


def cache_dir() -> Path:
    """Downloads and builds (Maven jars, Go binaries). Shared between stacks; safe to delete."""
    return Path(os.environ.get("COFFEE_RT_CACHE", REPO_ROOT / ".cache")).resolve()


def default_state_dir() -> Path:
    """Data, logs and pid files of the local stack's servers."""
    return Path(os.environ.get("COFFEE_RT_STATE", REPO_ROOT / ".state" / "local")).resolve()
