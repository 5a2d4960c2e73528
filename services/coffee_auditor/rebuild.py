"""The rebuilds of the views from the orders topic, against explicit targets: one implementation for
`coffee-rt rebuild` (the local stack) and ``python -m coffee_auditor rebuild`` (the Kubernetes Jobs
the operator runs for a CoffeePipeline's ``spec.rebuild``).

History (:func:`rebuild_history`): every record of the orders topic that can hold an order of a range
of business days (from the range's first instant minus the tolerated clock skew, ``offsets_for_times``,
to the end offsets when the rebuild starts) is parsed by the job's own reference parser
(``coffee_orders.records``) and its ``orders`` and ``order_items`` rows inserted with ``ON CONFLICT DO
NOTHING`` on the job's keys: a row the job wrote stays as it is, a missing one comes back, a second run
inserts nothing. Then the rollups of the range's hours are recomputed from those rows as absolute values
(what the job's upserts write, hours in UTC as its ``table.local-time-zone``). Safe while orders arrive:
the job and the rebuild write the same rows and values.

Live numbers: the job's state is what Redis is written from, so the repair is a replay into a fresh
state. Whoever owns the job (the local stack's job component, or the operator) stops it with a savepoint
and submits it without state from :func:`replay_start` (its Kafka source in ``timestamp`` mode); then
:func:`follow_replay` sets the job's consumer group to the replay's start, follows the offsets the job
commits with every checkpoint up to the end offsets when it starts following, recomputes the rollups of
the hours before the day that the fresh state counted only in part, and audits until the live numbers
agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from coffee_ledger.compare import ZERO
from coffee_ledger.days import business_day, day_bounds, today
from confluent_kafka import Consumer, KafkaException, TopicPartition

from coffee_auditor.engine import AuditError, Auditor, Report, Targets, where
from coffee_orders.records import DeadLetter, ItemRow, OrderRow, parse
from coffee_orders.schema import DEFAULT_HORIZON, MAX_FUTURE

Progress = Callable[[str], None]
BATCH = 500
MAX_DAYS = 62  # a history rebuild's longest range (the orders topic keeps 35 days by default)
HISTORY_GROUP = "coffee-rt-rebuild"  # never joined or committed: partitions are assigned by hand

STALL_TIMEOUT = 300.0  # the replay's committed offsets did not move this long: the job keeps failing
AGREE_TIMEOUT = 120.0  # after the replay, how long the audit may take to see the live numbers agree
POLL_SECONDS = 2.0
PROGRESS_SECONDS = 10.0


class RebuildError(RuntimeError):
    """A server refused or did not answer; the message names which (never a credential)."""


class RebuildInputError(ValueError):
    """A request that cannot be carried out as asked (a bad day or range); nothing was changed."""


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


# ---- the Postgres history of a range of days ---------------------------------------------------------

@dataclass
class Result:
    records: int = 0
    in_range: int = 0
    orders_inserted: int = 0
    items_inserted: int = 0
    seconds: float = 0.0


def days_between(first: str, last: str) -> list[str]:
    """Every day from ``first`` to ``last`` (ISO dates), at most ``MAX_DAYS`` of them."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if end < start:
        raise RebuildInputError(f"--to {last} is before --from {first}")
    if (end - start).days > MAX_DAYS:
        raise RebuildInputError(f"a rebuild covers at most {MAX_DAYS} days (the orders topic keeps 35 by default)")
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def _zones(targets: Targets) -> set[str]:
    return {targets.default_timezone, *targets.store_timezones.values()}


def _consumer(targets: Targets, group_id: str) -> Consumer:
    return Consumer({**targets.consumer_config(), "group.id": group_id})


def rebuild_history(targets: Targets, first: str, last: str, store: str | None = None,
                    progress: Progress = print) -> Result:
    """Re-insert the orders of business days ``first``..``last`` (of ``store``, or all) that Postgres lacks,
    then recompute the rollups of their hours; see the module docstring."""
    days = set(days_between(first, last))
    zones = {targets.timezone_of(store)} if store else _zones(targets)
    low = min(day_bounds(first, z)[0] for z in zones)
    high = max(day_bounds(last, z)[1] for z in zones)
    started, result = time.monotonic(), Result()
    stores: set[str] = set()
    topic = targets.topic
    consumer = _consumer(targets, HISTORY_GROUP)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise RebuildError(f"topic {topic}: {metadata.error}")
        partitions = sorted(metadata.partitions)
        since_ms = int((low - MAX_FUTURE).timestamp() * 1000)
        starts = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=10)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        todo = {tp.partition: tp.offset for tp in starts if 0 <= tp.offset < ends[tp.partition]}
        consumer.assign([TopicPartition(topic, p, o) for p, o in todo.items()])
        with psycopg.connect(targets.postgres_dsn, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            batch: list[tuple[OrderRow, list[ItemRow]]] = []
            while todo:
                messages = consumer.consume(1000, 1.0)
                for message in messages:
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
                            business_day(row.placed_at_ms, targets.timezone_of(row.store_id)) not in days:
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
                if not messages and todo:  # the rest up to an end offset may be transaction markers
                    for tp in consumer.position([TopicPartition(topic, p) for p in todo]):
                        if tp.offset >= ends[tp.partition]:
                            todo.pop(tp.partition, None)
            _write(conn, batch, result)
            if stores:
                bounds = {"stores": sorted(stores), "low": low - timedelta(hours=1), "high": high + timedelta(hours=1)}
                conn.execute(_HOURS, bounds)
                conn.execute(_MINUTES, bounds)
    except KafkaException as exc:
        raise RebuildError(f"reading topic {topic} at {targets.kafka_bootstrap}: {exc}") from None
    except psycopg.Error as exc:
        raise RebuildError(f"writing Postgres at {where(targets.postgres_dsn)}: {str(exc).strip()}") from None
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


def history_summary(first: str, last: str, result: Result) -> str:
    return (f"rebuild {first}..{last}: {result.records:,} records read, {result.in_range:,} orders in range, "
            f"{result.orders_inserted:,} orders and {result.items_inserted:,} items re-inserted, rollups recomputed "
            f"({result.seconds:.1f} s)")


# ---- the live numbers of a day -------------------------------------------------------------------------

def ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def replay_start(targets: Targets, day: str) -> datetime:
    """Where a replay of ``day`` starts: its first instant in the earliest of the stores' zones, minus the
    clock skew a till may have (an order of the day can be written up to that much before it began)."""
    return min(day_bounds(day, zone)[0] for zone in _zones(targets)) - MAX_FUTURE


def check_live_day(targets: Targets, day: str, now: datetime) -> None:
    """The live numbers hold each store's current business day; yesterday's keys live on until they expire."""
    todays = sorted(today(now, zone) for zone in _zones(targets))
    if day > todays[-1]:
        raise RebuildInputError(f"--day {day} has not begun in any store's zone (today is {todays[-1]} at the latest)")
    oldest = (date.fromisoformat(todays[0]) - timedelta(days=1)).isoformat()
    if day < oldest:
        raise RebuildInputError(
            f"--day {day}: the live numbers hold only the current business day (and yesterday's until its keys "
            f"expire), so --live takes {oldest} or later; rebuild older history with --from {day}")


def live_agrees(report: Report) -> bool:
    """Whether every audited Redis value equals the topic's (Postgres is the history rebuild's business)."""
    return all(row.difference("redis") in (None, ZERO) for row in report.rows)


def positions(consumer: Consumer, topic: str, since_ms: int) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition: the first offset written at or after ``since_ms`` (its end if none), and its end."""
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        raise RebuildError(f"topic {topic}: {metadata.error}")
    partitions = sorted(metadata.partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=10)
    starts = {tp.partition: tp.offset if 0 <= tp.offset <= ends[tp.partition] else ends[tp.partition] for tp in found}
    return starts, ends


def reset_group(consumer: Consumer, topic: str, starts: dict[int, int]) -> None:
    """Point the job's consumer group at the replay's start. The job commits its position to this group
    with every checkpoint: that makes them the replay's progress, and a later start from the group's
    offsets continues the replay rather than skip it."""
    consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in starts.items()], asynchronous=False)


def committed(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, int]:
    return {tp.partition: tp.offset
            for tp in consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)}


def wait_replayed(consumer: Consumer, topic: str, starts: dict[int, int], ends: dict[int, int],
                  progress: Progress, first_move_timeout: float = STALL_TIMEOUT, where_logs: str = "the job's log"
                  ) -> None:
    """Until the group's committed offsets (the job's checkpointed position) reach ``ends``. No movement for
    ``first_move_timeout`` at first (the job is still being planned), then for ``STALL_TIMEOUT``, fails."""
    total = sum(ends[p] - starts[p] for p in starts)
    began = changed = shown = time.monotonic()
    last, moved = -1, False
    while True:
        now_committed = committed(consumer, topic, sorted(starts))
        if all(now_committed.get(p, -1) >= ends[p] for p in starts):
            return
        done = sum(max(0, min(now_committed.get(p, -1), ends[p]) - starts[p]) for p in starts)
        now = time.monotonic()
        if done != last:
            moved = moved or last >= 0
            changed, last = now, done
        if now - shown >= PROGRESS_SECONDS:
            shown = now
            rate = done / (now - began) if now > began else 0.0
            progress(f"rebuild: {done:,} of {total:,} records replayed ({100 * done / max(total, 1):.0f} %, "
                     f"{rate:,.0f} records/s; the job commits its position every checkpoint)")
        limit = STALL_TIMEOUT if moved else max(first_move_timeout, STALL_TIMEOUT)
        if now - changed > limit:
            raise RebuildError(f"rebuild: the job's position has not moved for {limit:.0f} s ({done:,} of "
                               f"{total:,} records); see {where_logs}")
        time.sleep(POLL_SECONDS)


def recompute_rollups_before(postgres_dsn: str, first: datetime, starts: dict[int, int]) -> int:
    """The rollups of the hours before ``first`` that the replay counted orders of (the fresh state held
    only those), recomputed from the Postgres rows. Returns how many (store, hour)s."""
    offsets = " OR ".join(f"(kafka_partition = {int(p)} AND kafka_offset >= {int(o)})" for p, o in starts.items())
    try:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            touched = conn.execute(_TOUCHED_HOURS.format(offsets=offsets or "false"),
                                   {"low": first - DEFAULT_HORIZON, "first": first}).fetchall()
            if touched:
                pairs = {"stores": [s for s, _ in touched], "hours": [h for _, h in touched]}
                with conn.transaction():
                    conn.execute(_HOURS_OF, pairs)
                    conn.execute(_MINUTES_OF, pairs)
    except psycopg.Error as exc:
        raise RebuildError(f"recomputing the rollups before the day in Postgres at {where(postgres_dsn)}: "
                           f"{str(exc).strip()}") from None
    return len(touched)


def audit_until_live_agrees(targets: Targets, day: str, progress: Progress) -> Report:
    """Audit ``day`` until Redis agrees with the topic, or ``AGREE_TIMEOUT`` passed: the last report."""
    auditor = Auditor(targets)
    deadline = time.monotonic() + AGREE_TIMEOUT
    while True:
        try:
            report = auditor.round(day=day)
        except AuditError as exc:
            raise RebuildError(str(exc)) from None
        if live_agrees(report) or time.monotonic() > deadline:
            return report
        progress("rebuild: the live numbers do not agree with the topic yet (the job writes Redis every 10 ms; "
                 "orders may be arriving); auditing again")
        time.sleep(POLL_SECONDS)


@dataclass
class Replay:
    """What following a replay found: the records between its start and the end offsets when it was
    followed, how long the job took to commit past them, the store-hours recomputed, the audit."""

    day: str
    since: datetime
    records: int
    seconds: float
    rollup_hours: int
    report: Report

    @property
    def live_agrees(self) -> bool:
        return live_agrees(self.report)


def follow_replay(targets: Targets, group_id: str, day: str, since: datetime, progress: Progress,
                  first_move_timeout: float = STALL_TIMEOUT, reset: bool = True,
                  where_logs: str = "the job's log") -> Replay:
    """The live rebuild once the job runs without state from ``since`` (the owner of the job stopped and
    resubmitted it): point its group at the replay's start (``reset``; the caller that set it before the
    submission passes False), follow the offsets it commits, recompute the rollups of the hours before the
    day, audit until the live numbers agree."""
    consumer = _consumer(targets, group_id)
    try:
        starts, ends = positions(consumer, targets.topic, ms(since))
        if reset:
            reset_group(consumer, targets.topic, starts)
        records = sum(ends[p] - starts[p] for p in starts)
        progress(f"rebuild: replaying {records:,} records written since {utc(since)}")
        began = time.monotonic()
        wait_replayed(consumer, targets.topic, starts, ends, progress, first_move_timeout, where_logs)
        seconds = time.monotonic() - began
    except KafkaException as exc:
        raise RebuildError(f"orders topic {targets.topic} at {targets.kafka_bootstrap}: {exc}") from None
    finally:
        consumer.close()
    hours = recompute_rollups_before(targets.postgres_dsn, since + MAX_FUTURE, starts)
    report = audit_until_live_agrees(targets, day, progress)
    return Replay(day, since, records, seconds, hours, report)
