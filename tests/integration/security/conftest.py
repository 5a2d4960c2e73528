"""The security tests reuse the job's and the ledger's test helpers."""

from __future__ import annotations

import sys
from pathlib import Path

for folder in ("job", "ledger"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / folder))
