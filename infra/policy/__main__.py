"""The PulumiPolicy pack: each rule of infra/policy/rules.py as a mandatory resource policy."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent.parent))

from infra.policy.pack import build_pack  # noqa: E402

build_pack()
