"""Where the Pulumi program finds the repository's own files (CRDs, alert rules, migrations)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
