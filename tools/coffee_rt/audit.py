"""The ledger audit against real servers: the topic tally caught up, Postgres and Redis counted, compared.

One round: take the state file's lock, read the ``orders`` topic from the tally's positions up to the
end offsets of the round's start, save the tally (atomically), count the audited store/days in
Postgres (``orders``, an index range per store) and Redis (each key's ``summary`` hash, only for the
store's current business day: the live view holds no other day), and compare (``coffee_ledger``).
``coffee-rt audit`` runs one round and prints a table; the ``auditor`` component (``serve``) runs a
round every interval and exports the differences as Prometheus metrics.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import redis
from coffee_ledger.compare import VIEWS, ZERO, Count, Row, all_agree, compare
from coffee_ledger.days import day_bounds, today
from coffee_ledger.tally import Tally
from confluent_kafka import Consumer, KafkaException, TopicPartition

from coffee_jobconfig.model import JobConfig, duration_ms
from coffee_live.layout import ALL_STORES, STORES, current_day_key, day_key
from coffee_rt.errors import CoffeeRtError, UsageError
from coffee_rt.local.settings import LocalSettings

DISAGREE_EXIT = 5  # `coffee-rt audit`: a view differs from the topic (README's exit-code list)
RECENT_DAYS = 2  # the continuous audit's days per key: today and yesterday in the key's zone

Progress = Callable[[str], None]
Key = tuple[str, str]


def _quiet(_: str) -> None:
    pass


def state_file(settings: LocalSettings) -> Path:
    return settings.state_dir / "auditor" / "ledger.json"


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


@contextmanager
def locked_tally(path: Path, cfg: JobConfig) -> Iterator[Tally]:
    """The persisted tally under an exclusive lock (the auditor and `coffee-rt audit` share it); saved on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ttl = duration_ms(cfg.dedup_ttl)
        tally = Tally(dedup_ttl_ms=ttl, topic=cfg.orders_topic)
        if path.exists():
            saved = Tally.from_json(json.loads(path.read_text()))
            if saved.topic == cfg.orders_topic:
                saved.dedup_ttl_ms = ttl
                tally = saved
        before = dict(tally.positions)
        yield tally
        if tally.positions != before or not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(tally.to_json(), separators=(",", ":")))
            os.replace(tmp, path)


def catch_up(tally: Tally, bootstrap: str, cfg: JobConfig, progress: Progress = _quiet) -> int:
    """Read every record from the tally's positions to the end offsets as of now; returns how many."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "coffee-rt-ledger", "enable.auto.commit": False,
                         "isolation.level": "read_committed", "enable.partition.eof": False})
    try:
        metadata = consumer.list_topics(cfg.orders_topic, timeout=10).topics[cfg.orders_topic]
        if metadata.error is not None:
            raise CoffeeRtError(f"topic {cfg.orders_topic}: {metadata.error}")
        ends: dict[int, int] = {}
        assign: list[TopicPartition] = []
        gaps: set[int] = set()
        marks = {p: consumer.get_watermark_offsets(TopicPartition(cfg.orders_topic, p), timeout=10)
                 for p in sorted(metadata.partitions)}
        if any(tally.positions.get(p, 0) > high for p, (_, high) in marks.items()):
            progress(f"ledger: topic {cfg.orders_topic} was recreated (a saved position is beyond its end); "
                     "counting it afresh")
            tally.reset()
        for partition, (low, high) in marks.items():
            start = tally.positions.get(partition, 0)
            if start < low:  # retention deleted records we never read
                gaps.add(partition)
                start = low
            tally.positions[partition] = max(start, tally.positions.get(partition, 0))
            if start < high:
                ends[partition] = high
                assign.append(TopicPartition(cfg.orders_topic, partition, start))
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
                tally.add(partition, offset, timestamp, message.value(), cfg.timezone_of)
                read += 1
                if read % 100_000 == 0:
                    progress(f"ledger: {read:,} records read")
                if partition in ends and offset + 1 >= ends[partition]:
                    del ends[partition]
            if not batch:  # the rest up to an end offset may be transaction markers, never delivered
                for tp in consumer.position([TopicPartition(cfg.orders_topic, p) for p in ends]):
                    if tp.offset >= ends[tp.partition]:
                        tally.positions[tp.partition] = ends.pop(tp.partition)
        return read
    except KafkaException as exc:
        raise CoffeeRtError(f"reading topic {cfg.orders_topic} at {bootstrap}: {exc}") from None
    finally:
        consumer.close()


def recent_days(now: datetime, tz: str, n: int = RECENT_DAYS) -> list[str]:
    first = date.fromisoformat(today(now, tz))
    return [(first - timedelta(days=i)).isoformat() for i in range(n)]


def postgres_counts(dsn: str, cfg: JobConfig, stores: set[str], days: set[str]) -> dict[Key, Count]:
    """Orders and revenue per (store, day) and (_all, day), one index range scan per store."""
    counts: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    default = cfg.timezone_of(ALL_STORES)
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        for store in sorted(stores):
            zone = cfg.timezone_of(store)
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


def redis_counts(client: redis.Redis, cfg: JobConfig, keys: set[Key], now: datetime) -> dict[Key, Count]:
    """The live summaries of the keys whose day is their store's current business day (else not audited)."""
    result: dict[Key, Count] = {}
    for store, day in sorted(keys):
        current = client.get(current_day_key(store))
        current_day = current.decode() if isinstance(current, bytes) else today(now, cfg.timezone_of(store))
        if day != current_day:
            continue
        summary: dict[bytes, bytes] = client.hgetall(day_key(store, day, "summary"))  # type: ignore[assignment]
        result[(store, day)] = Count(int(summary.get(b"orders", 0)), int(summary.get(b"revenue_cents", 0)))
    return result


def audit(settings: LocalSettings, cfg: JobConfig, day: str | None = None, store: str | None = None,
          now: datetime | None = None, progress: Progress = _quiet) -> Report:
    """One round: catch the tally up, count the views, compare. ``day``/``store`` narrow what is compared."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    with locked_tally(state_file(settings), cfg) as tally:
        read = catch_up(tally, settings.kafka_bootstrap, cfg, progress)
        try:
            live_stores = {s.decode() for s in client.smembers(STORES)}  # type: ignore[union-attr]
        except redis.RedisError as exc:
            raise CoffeeRtError(f"redis at {settings.redis_url}: {exc}") from None
        stores = tally.stores() | live_stores
        if store is not None and store not in stores:
            known = ", ".join(sorted(stores)) or "none yet"
            raise UsageError(f"unknown store {store!r}: the orders topic and Redis know {known}")
        keys: set[Key] = set()
        for key in ([store] if store else [*sorted(stores), ALL_STORES]):
            for d in [day] if day else recent_days(now, cfg.timezone_of(key)):
                keys.add((key, d))
        days = {d for _, d in keys}
        try:
            pg = postgres_counts(settings.postgres_dsn, cfg, stores if store is None else {store}, days)
            live = redis_counts(client, cfg, keys, now)
        except (psycopg.Error, redis.RedisError) as exc:
            raise CoffeeRtError(f"counting the views: {exc}") from None
        topic = {(s, d): Count(o, r) for (s, d), (o, r) in tally.totals.items() if (s, d) in keys}
        complete = {k: tally.complete(k[1], cfg.timezone_of(k[0])) for k in keys}
        # A store/day no source has anything for is left out, unless it was asked for.
        shown = {k for k in keys if day or k in topic or pg.get(k, ZERO) != ZERO or live.get(k, ZERO) != ZERO}
        rows = compare(shown, topic, pg, live, complete)
        return Report(rows, read, time.monotonic() - started, tally.remembered(), dict(tally.counts))


def _cell(count: Count | None) -> str:
    return "-" if count is None else f"{count.orders} / {count.revenue_cents}"


def differences(row: Row) -> str:
    if not row.complete:
        return "topic incomplete (beyond retention)"
    parts = []
    for view in VIEWS:
        diff = row.difference(view)
        if diff is not None and diff != ZERO:
            parts.append(f"{view} {diff.orders:+d} orders {diff.revenue_cents:+d} cents")
    return "; ".join(parts) or "ok"


def table(rows: Sequence[Row]) -> str:
    lines = [["STORE", "DAY", "TOPIC", "POSTGRES", "REDIS", "DIFFERENCES"]]
    lines += [[r.store, r.day, _cell(r.topic), _cell(r.postgres), _cell(r.redis), differences(r)] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)
    return text + "\n(orders / revenue cents; a difference is the view minus the topic; '-': not audited)"


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


def serve(argv: Sequence[str] | None = None) -> int:
    """The continuous auditor: a round every ``--interval`` seconds, metrics on the settings' ``auditor_port``."""
    from prometheus_client import start_http_server

    from coffee_rt.audit_metrics import LedgerMetrics
    from coffee_rt.local.components.auditor import SETTINGS_ENV
    from coffee_rt.local.jobconfig import local_job_config

    parser = argparse.ArgumentParser(prog="python -m coffee_rt.audit")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between rounds")
    args = parser.parse_args(argv)
    settings = LocalSettings.model_validate_json(os.environ[SETTINGS_ENV])
    cfg = local_job_config(settings)
    metrics = LedgerMetrics()
    start_http_server(settings.auditor_port, settings.host, registry=metrics.registry)
    print(f"auditor: serving metrics on {settings.host}:{settings.auditor_port}, a round every {args.interval} s",
          flush=True)
    while True:
        try:
            report = audit(settings, cfg, progress=lambda m: print(m, flush=True))
        except CoffeeRtError as exc:
            metrics.errors.inc()
            print(f"auditor: round failed: {exc}", flush=True)
        else:
            metrics.update(report, time.time())
            verdict = "all agree" if report.agrees else "DIFFERENCES"
            print(f"auditor: {report.records_read} records read in {report.seconds:.2f} s, "
                  f"{report.remembered_ids} ids remembered: {verdict}", flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(serve())
