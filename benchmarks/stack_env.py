"""The benchmarks' stack at a port offset, shared by the scripts that run `coffee-rt` itself.

A script that times or measures the CLI (``local up`` with its supervisor) runs it as a child
process; these are the ``COFFEE_RT_*`` variables that point that child at the same stack the
script's own :class:`LocalSettings` describe.
"""

from __future__ import annotations

import os
import sys

from coffee_rt.local.settings import ENV_PREFIX, LocalSettings
from coffee_rt.paths import REPO_ROOT


def stack_settings(offset: int | None) -> LocalSettings:
    """The developer's stack (no offset), or the one of ``.state/test-<offset>``."""
    if offset is None:
        return LocalSettings.from_env()
    return LocalSettings.shifted(offset, REPO_ROOT / ".state" / f"test-{offset}").with_env()


def cli_env(settings: LocalSettings) -> dict[str, str]:
    """This process's environment plus the variables naming ``settings``' ports and folders."""
    env = dict(os.environ)
    for name in type(settings).model_fields:
        if name.endswith(("_port", "_port_base")) or name in ("cluster_bridge", "cluster_pod_cidr"):
            env[f"{ENV_PREFIX}{name.upper()}"] = str(getattr(settings, name))
    env["COFFEE_RT_STATE"] = str(settings.state_dir)
    return env


def cli(*args: str) -> list[str]:
    """argv of ``coffee-rt`` in this interpreter."""
    return [sys.executable, "-m", "coffee_rt.cli", *args]
