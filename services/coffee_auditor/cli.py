"""``python -m coffee_auditor rebuild``: one rebuild against the auditor's targets (``AUDITOR_*``), then exit.

    python -m coffee_auditor rebuild --from DAY [--to DAY] [--store ID]
    python -m coffee_auditor rebuild --live --day DAY --replay-from-ms MS --group GROUP

``--from``: the Postgres history of business days DAY..DAY (``coffee_auditor.rebuild.rebuild_history``).
``--live``: the second half of a live rebuild, once the job's owner (the operator) has stopped the job and
submitted it without state from ``MS`` (ms since the epoch, its Kafka source's ``timestamp`` start) with
consumer group ``GROUP``: follow its replay, recompute the rollups before the day, audit until the live
numbers agree (``follow_replay``). This is what the operator's rebuild Jobs run; `coffee-rt rebuild` runs
the same functions on the local stack.

Exit codes: 0 done (``--live``: the live numbers agree with the topic); 1 a server refused or did not
answer, or the replay stalled; 2 bad input or settings, before anything is changed; 5 (``--live``) the live
numbers still differ from the topic.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from coffee_ledger.days import parse_day

from coffee_auditor.rebuild import (
    AGREE_TIMEOUT,
    RebuildError,
    RebuildInputError,
    check_live_day,
    days_between,
    follow_replay,
    history_summary,
    rebuild_history,
    utc,
)
from coffee_auditor.settings import AuditorSettings
from coffee_auditor.table import table

DIFFERS_EXIT = 5
REPLAY_FIRST_MOVE_TIMEOUT = 900.0  # the job may still be planned when the Job starts (minutes on a busy node)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise RebuildInputError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m coffee_auditor rebuild",
                     description="Rebuild a view from the orders topic against the AUDITOR_* targets.")
    parser.add_argument("--from", dest="first", metavar="DAY", help="history: first business day YYYY-MM-DD")
    parser.add_argument("--to", dest="last", metavar="DAY", help="history: last business day (default: --from)")
    parser.add_argument("--store", help="history: one store id (default: every store)")
    parser.add_argument("--live", action="store_true", help="follow the live rebuild's replay of --day")
    parser.add_argument("--day", help="live: the business day YYYY-MM-DD")
    parser.add_argument("--replay-from-ms", type=int, help="live: where the job's replay starts (ms since the epoch)")
    parser.add_argument("--group", help="live: the job's Kafka consumer group")
    return parser


def rebuild_main(argv: list[str]) -> int:
    say = _say
    try:
        args = _parser().parse_args(argv)
        live_args = (args.day, args.replay_from_ms, args.group)
        if args.live:
            if args.first or args.last or args.store:
                raise RebuildInputError("--live takes --day, --replay-from-ms and --group, not --from, --to or --store")
            if None in live_args:
                raise RebuildInputError("--live needs --day, --replay-from-ms and --group")
            day = parse_day(args.day)
            if args.replay_from_ms < 0:
                raise RebuildInputError("--replay-from-ms must not be negative")
        else:
            if not args.first:
                raise RebuildInputError("give --from DAY [--to DAY] (history) or --live (live numbers)")
            if any(value is not None for value in live_args):
                raise RebuildInputError("--day, --replay-from-ms and --group belong to --live")
            first = parse_day(args.first)
            last = parse_day(args.last) if args.last else first
            days_between(first, last)
        settings = AuditorSettings.from_env()
        targets = settings.targets()
        if args.live:
            check_live_day(targets, day, datetime.now(UTC))
    except (RebuildInputError, ValueError) as exc:  # parse_day's and the settings' errors are ValueErrors
        print(f"coffee_auditor rebuild: {exc}", file=sys.stderr)
        return 2
    try:
        if not args.live:
            result = rebuild_history(targets, first, last, args.store, progress=say)
            print(history_summary(first, last, result), flush=True)
            return 0
        since = datetime.fromtimestamp(args.replay_from_ms / 1000, tz=UTC)
        replay = follow_replay(targets, args.group, day, since, say, first_move_timeout=REPLAY_FIRST_MOVE_TIMEOUT,
                               where_logs="the Flink JobManager's log and the CoffeePipeline's events")
    except RebuildError as exc:
        print(f"coffee_auditor rebuild: {exc}", file=sys.stderr)
        return 1
    print(f"rebuild --live {day}: {replay.records:,} records replayed from {utc(since)} in {replay.seconds:.1f} s; "
          f"rollups of {replay.rollup_hours} store-hours before the day recomputed", flush=True)
    print(table(replay.report.rows), flush=True)
    if replay.live_agrees:
        print("the live numbers agree with the orders topic", flush=True)
        return 0
    print(f"the live numbers still DIFFER from the orders topic after {AGREE_TIMEOUT:.0f} s", flush=True)
    return DIFFERS_EXIT


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
