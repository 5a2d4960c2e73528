"""`pulumi up` runs this: read and validate the stack config once, build everything, export outputs.

Pulumi puts infra/ itself first on sys.path; module names there could shadow installed packages,
so the repository root goes first instead and everything is imported as ``infra.*``.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import pulumi  # noqa: E402

from infra import config, program  # noqa: E402

try:
    settings = config.load()
except config.ConfigError as exc:
    raise SystemExit(f"coffee-rt: {exc}") from None

for key, value in program.build(settings).items():
    pulumi.export(key, value)
