"""The Go toolchain's environment for our builds: module and build caches inside the project cache.

Keeping GOMODCACHE and GOCACHE under ``coffee_rt.paths.cache_dir()`` lets CI keep one folder
between runs and makes a rebuild after a version bump recompile only what changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from coffee_rt.errors import PrerequisiteError
from coffee_rt.paths import cache_dir


def go_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "go"


def env(cache: Path | None = None) -> dict[str, str]:
    root = go_dir(cache)
    result = dict(os.environ)
    result.update(
        GOMODCACHE=str(root / "mod"),
        GOCACHE=str(root / "build"),
        GOPATH=str(root / "path"),
        # Never fetch another toolchain: it would come from outside the module proxy's modules.
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
    )
    return result


# Where the official toolchain installs itself; a non-login shell (CI) may not have it on PATH.
_USUAL_GO = Path("/usr/local/go/bin/go")


def go_binary() -> str:
    """The ``go`` on PATH, else the one in /usr/local/go; a clear error when there is none."""
    go = shutil.which("go") or (str(_USUAL_GO) if _USUAL_GO.is_file() else None)
    if not go:
        raise PrerequisiteError("Go is needed to build the Kubernetes control plane, but no `go` is on PATH "
                                f"or at {_USUAL_GO}")
    return go


def require_go(minimum: tuple[int, int]) -> str:
    """``go_binary()`` if it is at least ``minimum`` (major, minor); otherwise a clear error."""
    go = go_binary()
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match or (int(match.group(1)), int(match.group(2))) < minimum:
        raise PrerequisiteError(f"Go {minimum[0]}.{minimum[1]}+ is needed to build the Kubernetes control plane; "
                                f"{go} is {out or 'of unknown version'}")
    return go
