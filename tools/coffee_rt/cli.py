"""The ``coffee-rt`` command: the local stack, database migrations and the demo.

Exit codes: 0 success; 1 failure (or, for ``status``, a component not running); 2 bad usage;
3 a missing prerequisite (Java, a package); 4 a component that did not start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from coffee_rt.errors import CoffeeRtError, UsageError

if TYPE_CHECKING:
    from coffee_rt.local.stack import ComponentStatus

_T0 = time.monotonic()


def _progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from coffee_rt.local.stack import COMPONENTS

    names = ", ".join(COMPONENTS)
    parser = _Parser(prog="coffee-rt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    local = commands.add_parser(
        "local", help="run the whole pipeline on this machine with real servers",
        description="The local stack: real Kafka (KRaft), a Flink session cluster, Postgres and Redis on "
                    "loopback. Ports and folders come from COFFEE_RT_* variables, e.g. COFFEE_RT_KAFKA_PORT, "
                    "COFFEE_RT_STATE (data, logs), COFFEE_RT_CACHE (downloaded jars).",
    )
    local_cmds = local.add_subparsers(dest="action", required=True, parser_class=_Parser)
    up = local_cmds.add_parser("up", help="install what is missing, start components, wait until healthy")
    up.add_argument("components", nargs="*", metavar="COMPONENT", help=f"default: all ({names})")
    down = local_cmds.add_parser("down", help="stop the processes `up` started (by pid)")
    down.add_argument("components", nargs="*", metavar="COMPONENT", help=f"default: all ({names})")
    status = local_cmds.add_parser("status", help="health of each component; exit 1 if one is not running")
    status.add_argument("components", nargs="*", metavar="COMPONENT")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    logs = local_cmds.add_parser("logs", help="show a component's log")
    logs.add_argument("component", metavar="COMPONENT", help=names)
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many lines from the end (default 50)")

    db = commands.add_parser("db", help="Postgres schema")
    db_cmds = db.add_subparsers(dest="action", required=True, parser_class=_Parser)
    migrate = db_cmds.add_parser("migrate", help="apply pending SQL migrations (idempotent)")
    migrate.add_argument("--dsn", help="Postgres DSN (default: the local stack's)")

    commands.add_parser("demo", help="bring the local stack up, send sample orders, print where to look")
    return parser


def _print_status(rows: list[ComponentStatus], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    table = [["COMPONENT", "STATE", "ADDRESS", "PIDS", "DETAIL"]]
    for r in rows:
        table.append([r.name, r.state, r.address, ",".join(map(str, r.pids)) or "-", r.detail])
    print(_table(table))


def _local(args: argparse.Namespace) -> int:
    from coffee_rt.local.stack import LocalStack

    stack = LocalStack(progress=_progress)
    if args.action == "up":
        rows = stack.up(args.components)
        _print_status(rows, as_json=False)
        return 0
    if args.action == "down":
        stopped = stack.down(args.components)
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    if args.action == "status":
        from coffee_rt.local.stack import OPTIONAL

        rows = stack.status(args.components)
        _print_status(rows, args.json)
        # An optional component that was never started is not a failure unless asked for by name.
        relevant = [r for r in rows if r.name in args.components or r.name not in OPTIONAL or r.pids]
        return 0 if all(r.state == "running" for r in relevant) else 1
    if args.action == "logs":
        component = stack[args.component]
        if args.lines < 1:
            raise UsageError("--lines must be at least 1")
        found = False
        for process in component.processes():
            if process.log_file.exists():
                found = True
                print(f"==> {process.log_file} <==")
                print(process.tail(args.lines))
        if not found:
            print(f"{args.component} has no log yet (it has not been started)", file=sys.stderr)
            return 1
        return 0
    raise UsageError(f"unknown action {args.action}")


def _db(args: argparse.Namespace) -> int:
    from coffee_rt.db.migrate import migrate
    from coffee_rt.local.settings import LocalSettings

    dsn = args.dsn or LocalSettings.from_env().postgres_dsn
    applied = migrate(dsn)
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "local":
            return _local(args)
        if args.command == "db":
            return _db(args)
        if args.command == "demo":
            from coffee_rt.demo import run_demo

            return run_demo(_progress)
        raise UsageError(f"unknown command {args.command}")
    except CoffeeRtError as exc:
        print(f"coffee-rt: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("coffee-rt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
