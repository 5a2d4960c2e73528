"""`coffee-rt rebuild`: the Postgres history of a range of business days, or the Redis live numbers of a
day, brought back in line with the orders topic.

History (``--from``/``--to``): every record of the ``orders`` topic that can hold an order of the
range (from the range's first instant minus the tolerated clock skew, ``offsets_for_times``, to the
end offsets when the rebuild starts) is parsed by the job's own reference parser
(``coffee_job.records``) and its ``orders`` and ``order_items`` rows inserted with ``ON CONFLICT DO
NOTHING`` on the job's keys: a row the job wrote stays as it is, a missing one comes back, a second
run inserts nothing. Then the rollups of the range's hours are recomputed from those rows as
absolute values (what the job's upserts write, hours in UTC as its ``table.local-time-zone``). Safe
while orders arrive: the job and the rebuild write the same rows and values.

Live numbers (``--live``): the job's state is what Redis is written from, so the repair is a replay
into a fresh state. Under the job component's submission lock (the supervisor cannot resubmit in
between): stop the job with a savepoint, set its consumer group's offsets to the replay's start,
submit it without state from the day's first instant minus the tolerated clock skew (its Kafka
source in ``timestamp`` mode: every copy of an order of the day was written after that, so the
fresh dedup sees them all), follow the group's committed offsets up to the end offsets of the
rebuild's start, recompute the rollups of the hours before the day that the fresh state counted
only in part, and run the audit until the live numbers agree. Redis gets absolute values, Postgres
upserts: safe while orders arrive, and a second run gives the same numbers. Later restarts resume
from the new job's checkpoints.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import psycopg
from coffee_ledger.compare import ZERO
from coffee_ledger.days import business_day, day_bounds, parse_day, today
from confluent_kafka import Consumer, KafkaException, TopicPartition

from coffee_flink.rest import FlinkRestError
from coffee_job.records import DeadLetter, ItemRow, OrderRow, parse
from coffee_jobconfig.model import JobConfig
from coffee_orders.schema import DEFAULT_HORIZON, MAX_FUTURE
from coffee_rt.errors import CoffeeRtError, StartupError, UsageError
from coffee_rt.local.settings import LocalSettings

if TYPE_CHECKING:
    from coffee_auditor.engine import Report
    from coffee_rt.local.components.job import FlinkJob

Progress = Callable[[str], None]
BATCH = 500

_ORDER = ("INSERT INTO orders (message_id, store_id, placed_at, channel, currency, total_cents, item_count, "
          "kafka_partition, kafka_offset) VALUES (%s, %s, to_timestamp(%s / 1000.0), %s, %s, %s, %s, %s, %s) "
          "ON CONFLICT (message_id) DO NOTHING")
_ITEM = ("INSERT INTO order_items (message_id, line_no, sku, name, category, origin, quantity, unit_price_cents) "
         "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (message_id, line_no) DO NOTHING")
_HOURS = """INSERT INTO sales_by_hour (store_id, hour, order_count, revenue_cents, quantity)
SELECT o.store_id, date_trunc('hour', o.placed_at), count(*), sum(o.total_cents),
       sum((SELECT sum(i.quantity) FROM order_items i WHERE i.message_id = o.message_id))
FROM orders o WHERE o.store_id = ANY(%(stores)s) AND o.placed_at >= %(low)s AND o.placed_at < %(high)s
GROUP BY 1, 2
ON CONFLICT (store_id, hour) DO UPDATE SET order_count = EXCLUDED.order_count,
  revenue_cents = EXCLUDED.revenue_cents, quantity = EXCLUDED.quantity"""
_MINUTES = """INSERT INTO sales_by_minute (store_id, sku, minute, quantity, revenue_cents, order_count)
SELECT o.store_id, i.sku, date_trunc('minute', o.placed_at), sum(i.quantity), sum(i.quantity * i.unit_price_cents),
       count(DISTINCT o.message_id)
FROM orders o JOIN order_items i USING (message_id)
WHERE o.store_id = ANY(%(stores)s) AND o.placed_at >= %(low)s AND o.placed_at < %(high)s
GROUP BY 1, 2, 3
ON CONFLICT (store_id, sku, minute) DO UPDATE SET quantity = EXCLUDED.quantity,
  revenue_cents = EXCLUDED.revenue_cents, order_count = EXCLUDED.order_count"""


@dataclass
class Result:
    records: int = 0
    in_range: int = 0
    orders_inserted: int = 0
    items_inserted: int = 0
    seconds: float = 0.0


def _days(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if end < start:
        raise UsageError(f"--to {last} is before --from {first}")
    if (end - start).days > 62:
        raise UsageError("a rebuild covers at most 62 days (the orders topic keeps 35 by default)")
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def rebuild_postgres(settings: LocalSettings, cfg: JobConfig, first: str, last: str, store: str | None = None,
                     progress: Progress = print) -> Result:
    days = set(_days(first, last))
    zones = {cfg.timezone_of(store)} if store else {cfg.default_timezone, *cfg.store_timezones.values()}
    low = min(day_bounds(first, z)[0] for z in zones)
    high = max(day_bounds(last, z)[1] for z in zones)
    started, result = time.monotonic(), Result()
    stores: set[str] = set()
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "coffee-rt-rebuild",
                         "enable.auto.commit": False})
    try:
        partitions = sorted(consumer.list_topics(cfg.orders_topic, timeout=10).topics[cfg.orders_topic].partitions)
        since_ms = int((low - MAX_FUTURE).timestamp() * 1000)
        starts = consumer.offsets_for_times([TopicPartition(cfg.orders_topic, p, since_ms) for p in partitions],
                                            timeout=10)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(cfg.orders_topic, p), timeout=10)[1]
                for p in partitions}
        todo = {tp.partition: tp.offset for tp in starts if 0 <= tp.offset < ends[tp.partition]}
        consumer.assign([TopicPartition(cfg.orders_topic, p, o) for p, o in todo.items()])
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            batch: list[tuple[OrderRow, list[ItemRow]]] = []
            while todo:
                for message in consumer.consume(1000, 1.0):
                    if message.error() is not None:
                        raise KafkaException(message.error())
                    partition, offset = message.partition() or 0, message.offset() or 0
                    if offset + 1 >= ends[partition]:
                        todo.pop(partition, None)
                    if offset >= ends[partition]:
                        continue
                    result.records += 1
                    parsed = parse(message.value(), partition, offset)
                    if isinstance(parsed, DeadLetter):
                        continue
                    row, items = parsed
                    if (store and row.store_id != store) or \
                            business_day(row.placed_at_ms, cfg.timezone_of(row.store_id)) not in days:
                        continue
                    result.in_range += 1
                    stores.add(row.store_id)
                    batch.append((row, list(items)))
                    if len(batch) >= BATCH:
                        _write(conn, batch, result)
                        batch = []
                    if result.records % 10_000 == 0:
                        progress(f"rebuild: {result.records:,} records read, {result.in_range:,} in range, "
                                 f"{result.orders_inserted:,} orders inserted")
            _write(conn, batch, result)
            if stores:
                bounds = {"stores": sorted(stores), "low": low - timedelta(hours=1), "high": high + timedelta(hours=1)}
                conn.execute(_HOURS, bounds)
                conn.execute(_MINUTES, bounds)
    except KafkaException as exc:
        raise CoffeeRtError(f"reading topic {cfg.orders_topic}: {exc}") from None
    except psycopg.Error as exc:
        raise CoffeeRtError(f"writing Postgres: {exc}") from None
    finally:
        consumer.close()
    result.seconds = time.monotonic() - started
    return result


def _write(conn: psycopg.Connection, batch: list[tuple[OrderRow, list[ItemRow]]], result: Result) -> None:
    """The batch's orders that Postgres lacks, each with its lines. Only the first record of a
    ``message_id`` counts (the job's dedup): a later one with the same id, whether in this batch or
    already in Postgres, adds no order and none of its lines."""
    if not batch:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_ORDER + " RETURNING message_id",
                        [(r.message_id, r.store_id, r.placed_at_ms, r.channel, r.currency, r.total_cents,
                          r.item_count, r.kafka_partition, r.kafka_offset) for r, _ in batch], returning=True)
        inserted: set[str] = set()
        while True:
            inserted.update(str(row[0]) for row in cur.fetchall())
            if not cur.nextset():
                break
        result.orders_inserted += len(inserted)
        seen: set[str] = set()
        lines: list[ItemRow] = []
        for r, items in batch:
            key = str(r.message_id)
            if key in inserted and key not in seen:
                seen.add(key)
                lines.extend(items)
        if lines:
            cur.executemany(_ITEM, [(i.message_id, i.line_no, i.sku, i.name, i.category, i.origin, i.quantity,
                                     i.unit_price_cents) for i in lines])
            result.items_inserted += max(cur.rowcount, 0)


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
    print(f"rebuild {first}..{last}: {result.records:,} records read, {result.in_range:,} orders in range, "
          f"{result.orders_inserted:,} orders and {result.items_inserted:,} items re-inserted, rollups recomputed "
          f"({result.seconds:.1f} s)")
    return 0


# -- the live numbers of a day ------------------------------------------------------------------------

RUNNING_TIMEOUT = 600.0  # PyFlink plans the job on the JobManager: minutes on a busy two-core machine
STALL_TIMEOUT = 300.0  # the replay's committed offsets did not move this long: the job keeps failing
AGREE_TIMEOUT = 120.0  # after the replay, how long the audit may take to see the live numbers agree
POLL_SECONDS = 2.0
PROGRESS_SECONDS = 10.0

# The rollups of the hours the replay's fresh state counted only in part (orders placed before the
# day, read by the replay), recomputed from the Postgres rows as the history rebuild does.
_TOUCHED_HOURS = """SELECT store_id, date_trunc('hour', placed_at) FROM orders
WHERE placed_at >= %(low)s AND placed_at < %(first)s AND ({offsets})
GROUP BY 1, 2"""
_HOURS_OF = """INSERT INTO sales_by_hour (store_id, hour, order_count, revenue_cents, quantity)
SELECT o.store_id, t.hour, count(*), sum(o.total_cents),
       coalesce(sum((SELECT sum(i.quantity) FROM order_items i WHERE i.message_id = o.message_id)), 0)
FROM unnest(%(stores)s::text[], %(hours)s::timestamptz[]) AS t(store_id, hour)
JOIN orders o ON o.store_id = t.store_id AND o.placed_at >= t.hour AND o.placed_at < t.hour + interval '1 hour'
GROUP BY 1, 2
ON CONFLICT (store_id, hour) DO UPDATE SET order_count = EXCLUDED.order_count,
  revenue_cents = EXCLUDED.revenue_cents, quantity = EXCLUDED.quantity"""
_MINUTES_OF = """INSERT INTO sales_by_minute (store_id, sku, minute, quantity, revenue_cents, order_count)
SELECT o.store_id, i.sku, date_trunc('minute', o.placed_at), sum(i.quantity), sum(i.quantity * i.unit_price_cents),
       count(DISTINCT o.message_id)
FROM unnest(%(stores)s::text[], %(hours)s::timestamptz[]) AS t(store_id, hour)
JOIN orders o ON o.store_id = t.store_id AND o.placed_at >= t.hour AND o.placed_at < t.hour + interval '1 hour'
JOIN order_items i ON i.message_id = o.message_id
GROUP BY 1, 2, 3
ON CONFLICT (store_id, sku, minute) DO UPDATE SET quantity = EXCLUDED.quantity,
  revenue_cents = EXCLUDED.revenue_cents, order_count = EXCLUDED.order_count"""


@dataclass
class LiveResult:
    day: str
    since: datetime
    job_id: str
    records: int  # in the topic between the replay's start and the end offsets at the rebuild's start
    submit_seconds: float  # from the submission until every task of the job ran
    replay_seconds: float  # from then until the group's committed offsets reached those end offsets
    rollup_hours: int
    report: Report

    @property
    def live_agrees(self) -> bool:
        return live_agrees(self.report)


def _zones(cfg: JobConfig) -> set[str]:
    return {cfg.default_timezone, *cfg.store_timezones.values()}


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def replay_start(cfg: JobConfig, day: str) -> datetime:
    """Where a replay of ``day`` starts: its first instant in the earliest of the stores' zones, minus the
    clock skew a till may have (an order of the day can be written up to that much before it began)."""
    return min(day_bounds(day, zone)[0] for zone in _zones(cfg)) - MAX_FUTURE


def check_live_day(cfg: JobConfig, day: str, now: datetime) -> None:
    """The live numbers hold each store's current business day; yesterday's keys live on until they expire."""
    todays = sorted(today(now, zone) for zone in _zones(cfg))
    if day > todays[-1]:
        raise UsageError(f"--day {day} has not begun in any store's zone (today is {todays[-1]} at the latest)")
    oldest = (date.fromisoformat(todays[0]) - timedelta(days=1)).isoformat()
    if day < oldest:
        raise UsageError(f"--day {day}: the live numbers hold only the current business day (and yesterday's "
                         f"until its keys expire), so --live takes {oldest} or later; rebuild older history "
                         f"with --from {day}")


def live_agrees(report: Report) -> bool:
    """Whether every audited Redis value equals the topic's (Postgres is the history rebuild's business)."""
    return all(row.difference("redis") in (None, ZERO) for row in report.rows)


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
    return _ms(since)


def _positions(consumer: Consumer, topic: str, since_ms: int) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition: the first offset written at or after ``since_ms`` (its end if none), and its end."""
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        raise CoffeeRtError(f"topic {topic}: {metadata.error}")
    partitions = sorted(metadata.partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=10)
    starts = {tp.partition: tp.offset if 0 <= tp.offset <= ends[tp.partition] else ends[tp.partition] for tp in found}
    return starts, ends


def _committed(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, int]:
    return {tp.partition: tp.offset
            for tp in consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)}


def _replace_job(job: FlinkJob, consumer: Consumer, cfg: JobConfig, since_ms: int,
                 progress: Progress) -> tuple[str, dict[int, int], dict[int, int]]:
    """Stop the job (savepoint), point its group at the replay's start, submit it without state."""
    with job.submit_lock():
        try:
            active = job.active_job()
        except (httpx.HTTPError, FlinkRestError) as exc:
            raise CoffeeRtError(f"Flink REST at {job.settings.flink_rest_url} did not answer ({exc}); start it "
                                "with `coffee-rt local up flink job`") from None
        if active is not None:
            progress(f"rebuild: stopping job {active['jid']} ({active['state']}) with a savepoint")
            job.stop(progress)
        starts, ends = _positions(consumer, cfg.orders_topic, since_ms)
        # The job commits its offsets to this group on every checkpoint: starting them at the
        # replay's start makes them the replay's progress, and a later start from group offsets
        # continues the replay rather than skip it.
        consumer.commit(offsets=[TopicPartition(cfg.orders_topic, p, o) for p, o in starts.items()],
                        asynchronous=False)
        job_id = job.submit(progress, replay_from_ms=since_ms)
    if job_id is None:
        raise CoffeeRtError("job: it was still active after the stop, so the rebuild did not replace it; "
                            "see `coffee-rt local status job` and run the rebuild again")
    return job_id, starts, ends


def _wait_running(job: FlinkJob, job_id: str, progress: Progress) -> None:
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


def _wait_replayed(consumer: Consumer, topic: str, starts: dict[int, int], ends: dict[int, int],
                   progress: Progress) -> None:
    """Until the group's committed offsets (the job's checkpointed position) reach ``ends``."""
    total = sum(ends[p] - starts[p] for p in starts)
    began = changed = shown = time.monotonic()
    last = -1
    while True:
        committed = _committed(consumer, topic, sorted(starts))
        if all(committed.get(p, -1) >= ends[p] for p in starts):
            return
        done = sum(max(0, min(committed.get(p, -1), ends[p]) - starts[p]) for p in starts)
        now = time.monotonic()
        if done != last:
            changed, last = now, done
        if now - shown >= PROGRESS_SECONDS:
            shown = now
            rate = done / (now - began) if now > began else 0.0
            progress(f"rebuild: {done:,} of {total:,} records replayed ({100 * done / max(total, 1):.0f} %, "
                     f"{rate:,.0f} records/s; the job commits its position every checkpoint)")
        if now - changed > STALL_TIMEOUT:
            raise CoffeeRtError(f"rebuild: the job's position has not moved for {STALL_TIMEOUT:.0f} s ({done:,} of "
                                f"{total:,} records); see `coffee-rt local logs flink`")
        time.sleep(POLL_SECONDS)


def recompute_rollups_before(settings: LocalSettings, first: datetime, starts: dict[int, int]) -> int:
    """The rollups of the hours before ``first`` that the replay counted orders of (the fresh state held
    only those), recomputed from the Postgres rows. Returns how many (store, hour)s."""
    offsets = " OR ".join(f"(kafka_partition = {int(p)} AND kafka_offset >= {int(o)})" for p, o in starts.items())
    try:
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            touched = conn.execute(_TOUCHED_HOURS.format(offsets=offsets or "false"),
                                   {"low": first - DEFAULT_HORIZON, "first": first}).fetchall()
            if touched:
                pairs = {"stores": [s for s, _ in touched], "hours": [h for _, h in touched]}
                with conn.transaction():
                    conn.execute(_HOURS_OF, pairs)
                    conn.execute(_MINUTES_OF, pairs)
    except psycopg.Error as exc:
        raise CoffeeRtError(f"recomputing the rollups before the day in Postgres: {exc}") from None
    return len(touched)


def _audit_until_live_agrees(settings: LocalSettings, cfg: JobConfig, day: str, progress: Progress) -> Report:
    from coffee_rt.audit import audit

    deadline = time.monotonic() + AGREE_TIMEOUT
    while True:
        report = audit(settings, cfg, day=day)
        if live_agrees(report) or time.monotonic() > deadline:
            return report
        progress("rebuild: the live numbers do not agree with the topic yet (the job writes Redis every 10 ms; "
                 "orders may be arriving); auditing again")
        time.sleep(POLL_SECONDS)


def rebuild_live(settings: LocalSettings, cfg: JobConfig, day: str, progress: Progress = print) -> LiveResult:
    """Replay ``day`` (and what follows it) into a fresh job state; see the module docstring."""
    from coffee_rt.local.components.job import FlinkJob

    job = FlinkJob(settings)
    since = replay_start(cfg, day)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": cfg.group_id,
                         "enable.auto.commit": False})
    try:
        submitted = time.monotonic()
        job_id, starts, ends = _replace_job(job, consumer, cfg, _ms(since), progress)
        records = sum(ends[p] - starts[p] for p in starts)
        _wait_running(job, job_id, progress)
        running = time.monotonic()
        progress(f"rebuild: job {job_id} running ({running - submitted:.0f} s); replaying {records:,} records "
                 f"written since {_utc(since)}")
        _wait_replayed(consumer, cfg.orders_topic, starts, ends, progress)
        replayed = time.monotonic()
    except KafkaException as exc:
        raise CoffeeRtError(f"orders topic {cfg.orders_topic} at {settings.kafka_bootstrap}: {exc}") from None
    finally:
        consumer.close()
    hours = recompute_rollups_before(settings, since + MAX_FUTURE, starts)
    report = _audit_until_live_agrees(settings, cfg, day, progress)
    return LiveResult(day, since, job_id, records, running - submitted, replayed - running, hours, report)


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
    print(f"rebuild --live {day}: {result.records:,} records replayed from {_utc(result.since)} by job "
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
