"""``python -m coffee_auditor``: the continuous ledger audit, configured only by ``AUDITOR_*`` variables."""

from __future__ import annotations

import sys

from coffee_auditor.service import run
from coffee_auditor.settings import AuditorSettings, SettingsError


def main() -> int:
    try:
        settings = AuditorSettings.from_env()
    except SettingsError as exc:
        print(f"coffee_auditor: {exc}", file=sys.stderr)
        return 2
    try:
        run(settings)
    except OSError as exc:  # the port taken, say
        print(f"coffee_auditor: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
