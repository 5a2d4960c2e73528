"""``python -m coffee_auditor``: the continuous ledger audit, configured only by ``AUDITOR_*`` variables.

``python -m coffee_auditor rebuild ...`` runs one rebuild against the same targets and exits
(``coffee_auditor.cli``): what the operator's rebuild Jobs run.
"""

from __future__ import annotations

import sys

from coffee_auditor.service import run
from coffee_auditor.settings import AuditorSettings, SettingsError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["rebuild"]:
        from coffee_auditor.cli import rebuild_main

        return rebuild_main(argv[1:])
    if argv:
        print(f"coffee_auditor: unknown arguments {' '.join(argv)}; the service takes none, "
              "or `rebuild --help`", file=sys.stderr)
        return 2
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
