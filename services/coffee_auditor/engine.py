"""One audit round against explicit targets: the topic tally caught up, Postgres and Redis counted, compared.

A round, under the topic's tally lock in Postgres (``state``): read the ``orders`` topic from the
tally's positions up to the end offsets of the round's start, save what changed, count the audited
store/days in Postgres (``orders``, an index range per store) and Redis (each key's ``summary`` hash,
only for the store's current business day: the live view holds no other day), and compare
(``coffee_ledger``). An ``Auditor`` keeps its tally in memory between rounds and loads it again only
when another process saved a newer one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import redis
from coffee_ledger.compare import ZERO, Count, Row, all_agree, compare
from coffee_ledger.days import day_bounds, today
from coffee_ledger.tally import Tally
from confluent_kafka import Consumer, KafkaException, TopicPartition
from psycopg.rows import TupleRow

from coffee_auditor import state
from coffee_live.layout import ALL_STORES, STORES, current_day_key, day_key

RECENT_DAYS = 2  # the continuous audit's days per key: today and yesterday in the key's zone
PROGRESS_EVERY = 100_000  # records

Progress = Callable[[str], None]
Key = tuple[str, str]
KafkaValue = str | int | float | bool


def _quiet(_: str) -> None:
    pass


class AuditError(RuntimeError):
    """A round could not finish: a server refused or did not answer; the message names which."""


class UnknownStore(ValueError):
    """A store was asked for that neither the topic nor Redis knows."""


@dataclass(frozen=True)
class Targets:
    """What one auditor audits, and how it files orders under days (the job's own settings)."""

    kafka_bootstrap: str
    topic: str
    postgres_dsn: str
    redis_url: str
    default_timezone: str
    store_timezones: Mapping[str, str]
    dedup_ttl_ms: int  # the job's dedup window (JobConfig.dedup_ttl)
    # The consumer: extra librdkafka settings (e.g. security.protocol); ours below win on conflict.
    kafka_config: Mapping[str, KafkaValue] = field(default_factory=dict)
    group_id: str = "coffee-rt-ledger"  # never joined or committed: partitions are assigned by hand

    def timezone_of(self, store: str) -> str:
        return self.store_timezones.get(store, self.default_timezone)

    def consumer_config(self) -> dict[str, KafkaValue]:
        return {**self.kafka_config, "bootstrap.servers": self.kafka_bootstrap, "group.id": self.group_id,
                "enable.auto.commit": False, "isolation.level": "read_committed", "enable.partition.eof": False}


@dataclass
class Report:
    rows: list[Row]
    records_read: int
    seconds: float
    remembered_ids: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return all_agree(self.rows)


def where(url: str) -> str:
    """A server's address for a message: scheme, host and port, never the credentials in the URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def catch_up(tally: Tally, targets: Targets, progress: Progress = _quiet) -> int:
    """Read every record from the tally's positions to the end offsets as of now; returns how many."""
    topic = targets.topic
    consumer = Consumer(targets.consumer_config())
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise AuditError(f"topic {topic}: {metadata.error}")
        ends: dict[int, int] = {}
        assign: list[TopicPartition] = []
        gaps: set[int] = set()
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                 for p in sorted(metadata.partitions)}
        if any(tally.positions.get(p, 0) > high for p, (_, high) in marks.items()):
            progress(f"ledger: topic {topic} was recreated (a saved position is beyond its end); counting it afresh")
            tally.reset()
        for partition, (low, high) in marks.items():
            start = tally.positions.get(partition, 0)
            if start < low:  # retention deleted records we never read
                gaps.add(partition)
                start = low
            tally.positions[partition] = max(start, tally.positions.get(partition, 0))
            if start < high:
                ends[partition] = high
                assign.append(TopicPartition(topic, partition, start))
        read = 0
        if assign:
            consumer.assign(assign)
        while ends:
            batch = consumer.consume(1000, 1.0)
            for message in batch:
                if message.error() is not None:
                    raise KafkaException(message.error())
                partition, offset = message.partition(), message.offset() or 0
                timestamp = message.timestamp()[1]
                if partition in gaps:
                    tally.mark_gap(timestamp)
                    gaps.discard(partition)
                tally.add(partition, offset, timestamp, message.value(), targets.timezone_of)
                read += 1
                if read % PROGRESS_EVERY == 0:
                    progress(f"ledger: {read:,} records read")
                if partition in ends and offset + 1 >= ends[partition]:
                    del ends[partition]
            if not batch:  # the rest up to an end offset may be transaction markers, never delivered
                for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                    if tp.offset >= ends[tp.partition]:
                        tally.positions[tp.partition] = ends.pop(tp.partition)
        return read
    except KafkaException as exc:
        raise AuditError(f"reading topic {topic} at {targets.kafka_bootstrap}: {exc}") from None
    finally:
        consumer.close()


def recent_days(now: datetime, tz: str, n: int = RECENT_DAYS) -> list[str]:
    first = date.fromisoformat(today(now, tz))
    return [(first - timedelta(days=i)).isoformat() for i in range(n)]


def postgres_counts(conn: psycopg.Connection[TupleRow], targets: Targets, stores: set[str],
                    days: set[str]) -> dict[Key, Count]:
    """Orders and revenue per (store, day) and (_all, day), one index range scan per store."""
    counts: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    default = targets.timezone_of(ALL_STORES)
    for store in sorted(stores):
        zone = targets.timezone_of(store)
        bounds = [day_bounds(d, tz) for d in days for tz in (zone, default)]
        rows = conn.execute(
            "SELECT (placed_at AT TIME ZONE %(zone)s)::date, (placed_at AT TIME ZONE %(default)s)::date, "
            "count(*), coalesce(sum(total_cents), 0) FROM orders "
            "WHERE store_id = %(store)s AND placed_at >= %(low)s AND placed_at < %(high)s GROUP BY 1, 2",
            {"zone": zone, "default": default, "store": store,
             "low": min(b[0] for b in bounds), "high": max(b[1] for b in bounds)},
        ).fetchall()
        for store_day, all_day, n, cents in rows:
            for key in ((store, store_day.isoformat()), (ALL_STORES, all_day.isoformat())):
                counts[key][0] += int(n)
                counts[key][1] += int(cents)
    return {k: Count(o, r) for k, (o, r) in counts.items()}


def redis_counts(client: redis.Redis, targets: Targets, keys: set[Key], now: datetime) -> dict[Key, Count]:
    """The live summaries of the keys whose day is their store's current business day (else not audited)."""
    result: dict[Key, Count] = {}
    for store, day in sorted(keys):
        current = client.get(current_day_key(store))
        current_day = current.decode() if isinstance(current, bytes) else today(now, targets.timezone_of(store))
        if day != current_day:
            continue
        summary: dict[bytes, bytes] = client.hgetall(day_key(store, day, "summary"))  # type: ignore[assignment]
        result[(store, day)] = Count(int(summary.get(b"orders", 0)), int(summary.get(b"revenue_cents", 0)))
    return result


class Auditor:
    """Rounds against one set of targets; the tally stays in memory between them, saved in Postgres."""

    def __init__(self, targets: Targets) -> None:
        self.targets = targets
        self._tally: Tally | None = None
        self._revision = 0

    def round(self, day: str | None = None, store: str | None = None, now: datetime | None = None,
              progress: Progress | None = None) -> Report:
        """Catch the tally up, count the views, compare. ``day``/``store`` narrow what is compared."""
        try:
            return self._round(day, store, now or datetime.now(UTC), progress or _quiet)
        except BaseException:
            self._tally = None  # what was saved is unknown: the next round loads it again
            raise

    def _round(self, day: str | None, store: str | None, now: datetime, progress: Progress) -> Report:
        started = time.monotonic()
        t = self.targets
        client = redis.Redis.from_url(t.redis_url, socket_timeout=10, socket_connect_timeout=10)
        try:
            with psycopg.connect(t.postgres_dsn, autocommit=True, connect_timeout=10) as conn, \
                    state.locked(conn, t.topic):
                tally = self._current(conn)
                before = dict(tally.positions)
                read = catch_up(tally, t, progress)
                if tally.positions != before or self._revision == 0:
                    self._revision = state.save(conn, tally)
                live_stores = {s.decode() for s in client.smembers(STORES)}  # type: ignore[union-attr]
                stores = tally.stores() | live_stores
                if store is not None and store not in stores:
                    known = ", ".join(sorted(stores)) or "none yet"
                    raise UnknownStore(f"unknown store {store!r}: the orders topic and Redis know {known}")
                keys: set[Key] = set()
                for key in ([store] if store else [*sorted(stores), ALL_STORES]):
                    for d in [day] if day else recent_days(now, t.timezone_of(key)):
                        keys.add((key, d))
                pg = postgres_counts(conn, t, stores if store is None else {store}, {d for _, d in keys})
                live = redis_counts(client, t, keys, now)
                topic = {(s, d): Count(o, r) for (s, d), (o, r) in tally.totals.items() if (s, d) in keys}
                complete = {k: tally.complete(k[1], t.timezone_of(k[0])) for k in keys}
                remembered, counts = tally.remembered(), dict(tally.counts)
        except psycopg.errors.UndefinedTable as exc:
            raise AuditError(f"postgres: {exc}".strip() + "; apply the migrations (`coffee-rt db migrate`, on "
                             "Kubernetes the migrations Job of `pulumi up`)") from None
        except psycopg.Error as exc:
            raise AuditError(f"postgres: {exc}".strip()) from None
        except redis.RedisError as exc:
            raise AuditError(f"redis at {where(t.redis_url)}: {exc}") from None
        finally:
            client.close()
        # A store/day no source has anything for is left out, unless it was asked for.
        shown = {k for k in keys if day or k in topic or pg.get(k, ZERO) != ZERO or live.get(k, ZERO) != ZERO}
        return Report(compare(shown, topic, pg, live, complete), read, time.monotonic() - started, remembered, counts)

    def _current(self, conn: psycopg.Connection[TupleRow]) -> Tally:
        """The tally in memory, unless another process saved a newer one (then that one)."""
        if self._tally is None or state.revision(conn, self.targets.topic) != self._revision:
            self._tally, self._revision = state.load(conn, self.targets.topic, self.targets.dedup_ttl_ms)
        return self._tally
