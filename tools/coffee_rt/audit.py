"""`coffee-rt audit`: one round of the ledger audit (``coffee_auditor.engine``) on the local stack, a table.

The stack's servers and the job's config become the engine's targets (``targets``); the round shares
the tally the stack's ``auditor`` component keeps in Postgres, under the same lock.
"""

from __future__ import annotations

import sys
from datetime import datetime

from coffee_auditor.engine import AuditError, Auditor, Progress, Report, Targets, UnknownStore
from coffee_auditor.table import differences as differences
from coffee_auditor.table import table as table
from coffee_jobconfig.model import JobConfig, duration_ms
from coffee_rt.errors import CoffeeRtError, UsageError
from coffee_rt.local.settings import LocalSettings

DISAGREE_EXIT = 5  # `coffee-rt audit`: a view differs from the topic (README's exit-code list)


def targets(settings: LocalSettings, cfg: JobConfig) -> Targets:
    """What the local stack's auditor audits: its servers, with the job's topic, zones and dedup window."""
    return Targets(kafka_bootstrap=settings.kafka_bootstrap, topic=cfg.orders_topic,
                   postgres_dsn=settings.postgres_dsn, redis_url=settings.redis_url,
                   default_timezone=cfg.default_timezone, store_timezones=cfg.store_timezones,
                   dedup_ttl_ms=duration_ms(cfg.dedup_ttl))


def audit(settings: LocalSettings, cfg: JobConfig, day: str | None = None, store: str | None = None,
          now: datetime | None = None, progress: Progress | None = None) -> Report:
    """One round on the local stack; a server that fails is a CoffeeRtError, an unknown store a UsageError."""
    try:
        return Auditor(targets(settings, cfg)).round(day, store, now, progress)
    except UnknownStore as exc:
        raise UsageError(str(exc)) from None
    except AuditError as exc:
        raise CoffeeRtError(str(exc)) from None


def run_cli(day: str | None, store: str | None, settings: LocalSettings | None = None) -> int:
    """`coffee-rt audit`: one round on the local stack, a table, exit 0 (all agree) or DISAGREE_EXIT."""
    from coffee_ledger.days import parse_day

    from coffee_rt.local.jobconfig import local_job_config

    if day is not None:
        try:
            day = parse_day(day)
        except ValueError as exc:
            raise UsageError(f"--day: {exc}") from None
    settings = settings or LocalSettings.from_env()
    report = audit(settings, local_job_config(settings), day, store,
                   progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(table(report.rows))
    verdict = "all views agree with the orders topic" if report.agrees else "a view DIFFERS from the orders topic"
    print(f"{verdict} ({report.records_read} new records read in {report.seconds:.2f} s)")
    return 0 if report.agrees else DISAGREE_EXIT
