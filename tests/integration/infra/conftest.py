"""Integration fixtures for the Pulumi program: the repository root on sys.path (infra/ is not installed)."""

from __future__ import annotations

import sys

from coffee_rt.paths import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
