"""The ``coffee-rt`` command: the local stack, database migrations and the demo.

Exit codes: 0 success; 1 failure (or, for ``status``, a component not running); 2 bad usage;
3 a missing prerequisite (Java, a package, a running stack); 4 a component that did not start or
answer in time; 5 (``audit``, ``rebuild --live``) a view differs from the orders topic; 6
(``drill``) a drill ended with wrong totals, a wrong dead-letter topic or no recovery.
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
    local_cmds.add_parser("supervise", help="restart a server of the stack that dies, with back-off "
                                            "(`up` starts this in the background; `down` stops it)")
    logs = local_cmds.add_parser("logs", help="show a component's log")
    logs.add_argument("component", metavar="COMPONENT", help=names)
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many lines from the end (default 50)")

    db = commands.add_parser("db", help="Postgres schema")
    db_cmds = db.add_subparsers(dest="action", required=True, parser_class=_Parser)
    migrate = db_cmds.add_parser("migrate", help="apply pending SQL migrations (idempotent)")
    migrate.add_argument("--dsn", help="Postgres DSN (default: the local stack's)")

    commands.add_parser("demo", help="bring the local stack up, send sample orders, print where to look")

    audit = commands.add_parser(
        "audit", help="compare orders and revenue per store and day: orders topic vs Postgres vs Redis",
        description="Count distinct valid orders per store and business day in the orders topic (incrementally, "
                    "from the auditor's saved position) and compare them with Postgres history and the Redis "
                    "live numbers. Exit 0: all agree; 5: a view differs (docs/ledger.md).")
    audit.add_argument("--day", help="business day YYYY-MM-DD (default: today and yesterday in each store's zone)")
    audit.add_argument("--store", help="one store id (default: every store, and _all)")

    drill = commands.add_parser(
        "drill", help="kill or hang one server mid-rush and check that every accepted order is counted once",
        description="Against the running local stack (with its supervisor): a rush of orders from retrying "
                    "clients; a third of the way in, each named server gets SIGKILL (kill) or SIGSTOP for "
                    "--hang seconds then SIGCONT (stop); one poison record goes to the orders topic. Prints "
                    "a table; exit 0 when Postgres and Redis hold exactly the accepted orders and the "
                    "dead-letter topic gained exactly the poison record, 6 when a drill did not.")
    drill.add_argument("components", nargs="*", metavar="COMPONENT",
                       help="kafka, jobmanager, taskmanager, flink (both), postgres, redis, ingest, dashboard "
                            "(default: all but flink)")
    drill.add_argument("--signal", choices=["kill", "stop", "both"], default="kill", help="default: kill")
    drill.add_argument("--orders", type=int, default=3000, help="orders per drill (default 3000, at 250/s)")
    drill.add_argument("--hang", type=float, default=40.0, help="seconds a stopped server stays stopped (default 40)")
    drill.add_argument("--timeout", type=float, default=300.0,
                       help="seconds to wait for exact totals after the rush (default 300)")

    rebuild = commands.add_parser(
        "rebuild", help="bring the Postgres history of some days, or the Redis live numbers of a day, back in line "
                        "with the orders topic",
        description="--from DAY [--to DAY] [--store ID]: re-insert the orders and order_items rows of those business "
                    "days that Postgres lacks, from the orders topic (idempotent: existing rows stay), then recompute "
                    "those hours' rollups. --live [--day DAY]: stop the job with a savepoint, submit it without state "
                    "reading the orders topic from the day's first instant (minus 5 minutes of tolerated clock skew), "
                    "follow its progress, then audit: exit 0 when the live numbers agree with the topic, 5 when they "
                    "still differ. Both are safe while orders arrive (docs/ledger.md).")
    what = rebuild.add_mutually_exclusive_group(required=True)
    what.add_argument("--from", dest="first", metavar="DAY", help="history: first business day YYYY-MM-DD")
    what.add_argument("--live", action="store_true",
                      help="the Redis live numbers: replay the day into a fresh job state")
    rebuild.add_argument("--to", dest="last", metavar="DAY", help="history: last business day (default: --from)")
    rebuild.add_argument("--store", help="history: one store id (default: every store)")
    rebuild.add_argument("--day", help="live: the business day YYYY-MM-DD, today or yesterday (default: today in "
                                       "the default zone)")

    deploy = commands.add_parser(
        "deploy", help="pulumi up of the dev stack onto the running local cluster (`coffee-rt local up cluster`)",
        description="Build the Pulumi CLI and Kubernetes provider if missing (cached; cold about 50 min on 2 "
                    "cores), build and import the images into the local cluster, then `pulumi up` of infra/'s "
                    "stack through the Automation API, printing each resource step. Exit 0: done; 1: pulumi "
                    "failed; 3: no running cluster or a missing tool (docs/deployment.md).")
    deploy.add_argument("--destroy", action="store_true",
                        help="pulumi destroy instead: remove everything the stack made")
    deploy.add_argument("--preview", action="store_true", help="pulumi preview only: show what up would change")
    deploy.add_argument("--stack", default="dev",
                        help="the stack (Pulumi.<stack>.yaml at the repository root; default dev)")
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
    from coffee_rt.local import supervisor
    from coffee_rt.local.stack import LocalStack

    stack = LocalStack(progress=_progress)
    if args.action == "up":
        rows = stack.up(args.components)
        supervisor.watch(stack.settings, [r.name for r in rows])
        supervisor.supervisor_process(stack.settings).start()
        _print_status(supervisor.annotate(stack.settings, rows), as_json=False)
        return 0
    if args.action == "down":
        # First: nothing that down stops may be started again.
        supervisor.unwatch(stack.settings, args.components or None)
        if not args.components or not supervisor.watched(stack.settings):
            supervisor.supervisor_process(stack.settings).stop()
        stopped = stack.down(args.components)
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    if args.action == "supervise":
        supervisor.Supervisor(stack).run()
        return 0
    if args.action == "status":
        from coffee_rt.local.stack import OPTIONAL

        rows = supervisor.annotate(stack.settings, stack.status(args.components))
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
    from coffee_db.migrate import MigrationError, migrate
    from coffee_rt.local.settings import LocalSettings

    dsn = args.dsn or LocalSettings.from_env().postgres_dsn
    try:
        applied = migrate(dsn)
    except MigrationError as exc:
        raise CoffeeRtError(str(exc)) from None
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "local":
            return _local(args)
        if args.command == "db":
            return _db(args)
        if args.command == "audit":
            from coffee_rt.audit import run_cli

            return run_cli(args.day, args.store)
        if args.command == "rebuild":
            from coffee_rt.rebuild import run_cli as rebuild_cli
            from coffee_rt.rebuild import run_live_cli

            if args.live:
                if args.last is not None or args.store is not None:
                    raise UsageError("rebuild: --to and --store go with --from (--live rebuilds every store's "
                                     "live numbers of one --day)")
                return run_live_cli(args.day, progress=_progress)
            if args.day is not None:
                raise UsageError("rebuild: --day goes with --live (the history's days are --from and --to)")
            return rebuild_cli(args.first, args.last, args.store)
        if args.command == "drill":
            from coffee_rt.drill import run_cli as drill_cli

            signals = ["kill", "stop"] if args.signal == "both" else [args.signal]
            return drill_cli(args.components, signals, args.orders, args.hang, args.timeout, _progress)
        if args.command == "deploy":
            from coffee_rt import deploy as deploy_

            if args.destroy and args.preview:
                raise UsageError("--destroy and --preview exclude each other")
            action = "destroy" if args.destroy else "preview" if args.preview else "up"
            print(deploy_.describe(deploy_.run(action, _progress, args.stack)))
            return 0
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
    except Exception as exc:
        if not _unanswered(exc):
            raise
        from coffee_rt.errors import StartupError
        from coffee_rt.local.settings import LocalSettings
        from coffee_rt.local.stack import unanswered

        print(f"coffee-rt: error: {unanswered(exc, LocalSettings.from_env())}", file=sys.stderr)
        return StartupError.exit_code


def _unanswered(exc: Exception) -> bool:
    """A server that timed out or refused the connection: a message and exit code 4, not a traceback."""
    import httpx
    import psycopg
    import redis

    return isinstance(exc, httpx.TransportError | psycopg.OperationalError | redis.ConnectionError
                      | redis.TimeoutError | TimeoutError | ConnectionError)


if __name__ == "__main__":
    sys.exit(main())
