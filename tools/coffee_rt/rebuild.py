"""`coffee-rt rebuild`: the Postgres history of a range of business days, or the Redis live numbers of a
day, brought back in line with the orders topic, on the local stack.

The rebuilds themselves are ``coffee_auditor.rebuild`` (the same code the Kubernetes Jobs of a
CoffeePipeline's ``spec.rebuild`` run); this module gives them the local stack's servers and the job's
config as targets (``coffee_rt.audit.targets``) and, for ``--live``, owns the local job: under the job
component's submission lock (the supervisor cannot resubmit in between) it stops the job with a
savepoint, points its consumer group at the replay's start, submits it without state from there (its
Kafka source in ``timestamp`` mode), then follows the replay (``coffee_auditor.rebuild.follow_replay``).
Later restarts resume from the new job's checkpoints.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import psycopg
from coffee_ledger.days import parse_day, today
from confluent_kafka import Consumer, KafkaException

from coffee_auditor import rebuild as shared
from coffee_auditor.engine import Targets
from coffee_auditor.rebuild import Progress, RebuildError, RebuildInputError, Result
from coffee_flink.rest import FlinkRestError
from coffee_jobconfig.model import JobConfig
from coffee_orders.schema import MAX_FUTURE
from coffee_rt.audit import targets
from coffee_rt.errors import CoffeeRtError, StartupError, UsageError
from coffee_rt.local.settings import LocalSettings

if TYPE_CHECKING:
    from coffee_auditor.engine import Report
    from coffee_rt.local.components.job import FlinkJob

__all__ = ["Result", "check_live_day", "live_agrees", "rebuild_live", "rebuild_postgres", "replay_start"]


def rebuild_postgres(settings: LocalSettings, cfg: JobConfig, first: str, last: str, store: str | None = None,
                     progress: Progress = print) -> Result:
    try:
        return shared.rebuild_history(targets(settings, cfg), first, last, store, progress)
    except RebuildInputError as exc:
        raise UsageError(str(exc)) from None
    except RebuildError as exc:
        raise CoffeeRtError(str(exc)) from None


def run_cli(first: str, last: str | None, store: str | None, settings: LocalSettings | None = None) -> int:
    from coffee_rt.local.jobconfig import local_job_config

    try:
        first = parse_day(first)
        last = parse_day(last) if last else first
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    settings = settings or LocalSettings.from_env()
    result = rebuild_postgres(settings, local_job_config(settings), first, last, store,
                              progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(shared.history_summary(first, last, result))
    return 0


# -- the live numbers of a day ------------------------------------------------------------------------

RUNNING_TIMEOUT = 600.0  # PyFlink plans the job on the JobManager: minutes on a busy two-core machine
POLL_SECONDS = shared.POLL_SECONDS
AGREE_TIMEOUT = shared.AGREE_TIMEOUT


@dataclass
class LiveResult:
    day: str
    since: datetime
    job_id: str
    records: int  # in the topic between the replay's start and the end offsets when it was followed
    submit_seconds: float  # from the submission until every task of the job ran
    replay_seconds: float  # from then until the group's committed offsets reached those end offsets
    rollup_hours: int
    report: Report

    @property
    def live_agrees(self) -> bool:
        return live_agrees(self.report)


def replay_start(cfg: JobConfig, day: str) -> datetime:
    """Where a replay of ``day`` starts (``coffee_auditor.rebuild.replay_start`` for the job's zones)."""
    return shared.replay_start(_calendar(cfg), day)


def check_live_day(cfg: JobConfig, day: str, now: datetime) -> None:
    try:
        shared.check_live_day(_calendar(cfg), day, now)
    except RebuildInputError as exc:
        raise UsageError(str(exc)) from None


live_agrees = shared.live_agrees


def _calendar(cfg: JobConfig) -> Targets:
    """Targets carrying only the job's zones (what the day rules read); no server is asked through them."""
    return Targets(kafka_bootstrap="-", topic=cfg.orders_topic, postgres_dsn="-", redis_url="-",
                          default_timezone=cfg.default_timezone, store_timezones=cfg.store_timezones,
                          dedup_ttl_ms=0)


def _zones(cfg: JobConfig) -> set[str]:
    return {cfg.default_timezone, *cfg.store_timezones.values()}


def no_state_replay_from(settings: LocalSettings, cfg: JobConfig, progress: Progress) -> int | None:
    """For a job about to start with no state at all: the replay start (ms) of today when Postgres
    already holds orders of today (else None: nothing to overwrite, start from the group's offsets)."""
    now = datetime.now(UTC)
    day = min(today(now, zone) for zone in _zones(cfg))
    since = replay_start(cfg, day)
    try:
        with psycopg.connect(settings.postgres_dsn, connect_timeout=10) as conn:
            row = conn.execute("SELECT count(*) FROM orders WHERE placed_at >= %s", (since + MAX_FUTURE,)).fetchone()
    except psycopg.Error as exc:
        raise StartupError(
            f"job: no savepoint or checkpoint exists, and Postgres at {settings.host}:{settings.postgres_port} did "
            f"not say whether it holds orders of today ({str(exc).strip()}); starting from the committed offsets "
            "could overwrite today's live numbers with partial counts, so start Postgres first "
            "(`coffee-rt local up postgres job`)") from None
    orders = int(row[0]) if row else 0
    if not orders:
        return None
    progress(f"job: no savepoint or checkpoint exists and Postgres holds {orders:,} orders of {day}: replaying "
             f"{day} from the orders topic so that its live numbers are rebuilt, not overwritten with partial counts")
    return shared.ms(since)


def _replace_job(job: FlinkJob, cfg: JobConfig, since_ms: int, progress: Progress) -> str:
    """Stop the job (savepoint), point its group at the replay's start, submit it without state."""
    consumer = Consumer({"bootstrap.servers": job.settings.kafka_bootstrap, "group.id": cfg.group_id,
                         "enable.auto.commit": False})
    try:
        with job.submit_lock():
            try:
                active = job.active_job()
            except (httpx.HTTPError, FlinkRestError) as exc:
                raise CoffeeRtError(f"Flink REST at {job.settings.flink_rest_url} did not answer ({exc}); start it "
                                    "with `coffee-rt local up flink job`") from None
            if active is not None:
                progress(f"rebuild: stopping job {active['jid']} ({active['state']}) with a savepoint")
                job.stop(progress)
            starts, _ = shared.positions(consumer, cfg.orders_topic, since_ms)
            shared.reset_group(consumer, cfg.orders_topic, starts)
            job_id = job.submit(progress, replay_from_ms=since_ms)
    except KafkaException as exc:
        raise CoffeeRtError(f"orders topic {cfg.orders_topic} at {job.settings.kafka_bootstrap}: {exc}") from None
    except RebuildError as exc:
        raise CoffeeRtError(str(exc)) from None
    finally:
        consumer.close()
    if job_id is None:
        raise CoffeeRtError("job: it was still active after the stop, so the rebuild did not replace it; "
                            "see `coffee-rt local status job` and run the rebuild again")
    return job_id


def _wait_running(job: FlinkJob, job_id: str) -> None:
    deadline = time.monotonic() + RUNNING_TIMEOUT
    while True:
        health = job.health()
        if health.ok and health.detail.startswith(job_id):
            return
        if time.monotonic() > deadline:
            log = job.settings.state_dir / "logs" / "flink-jobmanager.log"
            raise StartupError(f"job: {job_id} was not running after {RUNNING_TIMEOUT:.0f} s ({health.detail}); "
                               f"read {log}")
        time.sleep(POLL_SECONDS)


def recompute_rollups_before(settings: LocalSettings, first: datetime, starts: dict[int, int]) -> int:
    """``coffee_auditor.rebuild.recompute_rollups_before`` on the local stack's Postgres."""
    try:
        return shared.recompute_rollups_before(settings.postgres_dsn, first, starts)
    except RebuildError as exc:
        raise CoffeeRtError(str(exc)) from None


def rebuild_live(settings: LocalSettings, cfg: JobConfig, day: str, progress: Progress = print) -> LiveResult:
    """Replay ``day`` (and what follows it) into a fresh job state; see the module docstring."""
    from coffee_rt.local.components.job import FlinkJob

    job = FlinkJob(settings)
    since = replay_start(cfg, day)
    submitted = time.monotonic()
    job_id = _replace_job(job, cfg, shared.ms(since), progress)
    _wait_running(job, job_id)
    running = time.monotonic()
    progress(f"rebuild: job {job_id} running ({running - submitted:.0f} s)")
    try:
        replay = shared.follow_replay(targets(settings, cfg), cfg.group_id, day, since, progress, reset=False,
                                      where_logs="`coffee-rt local logs flink`")
    except RebuildError as exc:
        raise CoffeeRtError(str(exc)) from None
    return LiveResult(day, since, job_id, replay.records, running - submitted, replay.seconds, replay.rollup_hours,
                      replay.report)


def run_live_cli(day: str | None, settings: LocalSettings | None = None, progress: Progress | None = None) -> int:
    """`coffee-rt rebuild --live`: exit 0 when the live numbers agree with the topic afterwards, else 5."""
    from coffee_rt.audit import DISAGREE_EXIT, table
    from coffee_rt.local.jobconfig import local_job_config

    settings = settings or LocalSettings.from_env()
    cfg = local_job_config(settings)
    now = datetime.now(UTC)
    try:
        day = parse_day(day) if day is not None else today(now, cfg.default_timezone)
    except ValueError as exc:
        raise UsageError(f"--day: {exc}") from None
    check_live_day(cfg, day, now)
    say = progress or (lambda m: print(m, file=sys.stderr, flush=True))
    result = rebuild_live(settings, cfg, day, say)
    rate = result.records / result.replay_seconds if result.replay_seconds > 0 else 0.0
    print(f"rebuild --live {day}: {result.records:,} records replayed from {shared.utc(result.since)} by job "
          f"{result.job_id} in {result.replay_seconds:.1f} s ({rate:,.0f} records/s; the job took "
          f"{result.submit_seconds:.1f} s to start); rollups of {result.rollup_hours} store-hours before the day "
          "recomputed")
    print(table(result.report.rows))
    if result.live_agrees:
        print("the live numbers agree with the orders topic")
        return 0
    print(f"the live numbers still DIFFER from the orders topic after {AGREE_TIMEOUT:.0f} s "
          "(see docs/ledger.md and runbooks/CoffeeRtLedgerMismatch.md)")
    return DISAGREE_EXIT
