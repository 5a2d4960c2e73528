"""How fast `coffee-rt rebuild --live` replays a day, in orders/s, beside the job's live throughput.

Produces N orders placed now (stores of its own, ``rebuild-01``...) to the ``orders`` topic as fast
as possible and times the running job counting them into Redis and Postgres: the live throughput.
Then runs the live rebuild of today (``coffee_rt.rebuild.rebuild_live``, what `coffee-rt rebuild
--live` runs): stop with a savepoint, submit without state from today's first instant, replay. It
reports how long the job took to start, and the replay's speed two ways: until Redis showed the
day's full ``_all`` count again (the orders are counted), and until the job had checkpointed past
the last record (the rebuild's own end; its progress is read from the offsets committed with each
checkpoint, every 10 s). The replay reads every record of today, including ones written before.

    uv run python benchmarks/rebuild.py --port-offset 11000                  # 1,000,000 orders
    uv run python benchmarks/rebuild.py --port-offset 11000 --orders 200000
    uv run python benchmarks/rebuild.py --port-offset 11000 --orders 0       # rebuild what today holds

It uses the running local stack (starting what is missing) and its job component.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import redis
from coffee_ledger.days import today
from confluent_kafka import Producer

from coffee_live.layout import ALL_STORES, day_key
from coffee_orders.loadgen import Store, random_order
from coffee_orders.schema import to_wire
from coffee_rt.local.jobconfig import local_job_config
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import LocalStack
from coffee_rt.rebuild import rebuild_live

STORES = [Store(f"rebuild-{n:02d}", "UTC") for n in range(1, 13)]
COUNT_SQL = "SELECT count(*) FROM orders WHERE store_id = ANY(%s) AND placed_at >= %s"


def live_orders(client: redis.Redis, day: str) -> int:
    value = client.hget(day_key(ALL_STORES, day, "summary"), "orders")
    return int(value) if value else 0  # type: ignore[arg-type]


def make_orders(count: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """``count`` orders placed in the last 30 s (made before the clock starts: making them is slower than
    the job on this machine)."""
    now = datetime.now(UTC)
    orders = []
    for n in range(count):
        store = STORES[n % len(STORES)]
        orders.append((store.store_id, to_wire(random_order(rng, store, now - timedelta(seconds=rng.uniform(0, 30))))))
    return orders


def produce(settings: LocalSettings, orders: list[tuple[str, bytes]]) -> float:
    """Returns the seconds producing took."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "queue.buffering.max.messages": 500_000})
    started = time.perf_counter()
    for store, value in orders:
        while True:
            try:
                producer.produce("orders", key=store, value=value)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    return time.perf_counter() - started


def live_throughput(settings: LocalSettings, client: redis.Redis, day: str, count: int,
                    rng: random.Random) -> tuple[float | None, float | None]:
    """Seconds until the running job had ``count`` new orders in Redis and in Postgres (None: not in 30 min)."""
    since = datetime.now(UTC) - timedelta(seconds=31)
    stores = [s.store_id for s in STORES]
    pg = psycopg.connect(settings.postgres_dsn, autocommit=True)

    def in_postgres() -> int:
        row = pg.execute(COUNT_SQL, (stores, since)).fetchone()
        return int(row[0]) if row else 0

    print(f"making {count:,} orders", flush=True)
    orders = make_orders(count, rng)
    base_redis, base_pg = live_orders(client, day), in_postgres()
    t0 = time.perf_counter()
    produced = produce(settings, orders)
    print(f"produced {count:,} orders in {produced:.1f} s ({count / produced:,.0f}/s)", flush=True)
    del orders
    redis_done = pg_done = None
    deadline = t0 + 1800
    while (redis_done is None or pg_done is None) and time.perf_counter() < deadline:
        if redis_done is None and live_orders(client, day) >= base_redis + count:
            redis_done = time.perf_counter() - t0
        if pg_done is None and in_postgres() >= base_pg + count:
            pg_done = time.perf_counter() - t0
        time.sleep(0.25)
    pg.close()
    return redis_done, pg_done


class RedisWatch(threading.Thread):
    """When Redis's ``_all`` count of the day is back at ``target`` after the replay's first write."""

    def __init__(self, client: redis.Redis, day: str, target: int) -> None:
        super().__init__(daemon=True)
        self.client, self.day, self.target = client, day, target
        self.dropped = False
        self.done_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.done_at is None:
            orders = live_orders(self.client, self.day)
            if orders < self.target:
                self.dropped = True
            elif self.dropped:
                self.done_at = time.perf_counter()
            time.sleep(0.1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000,
                        help="orders to add to today before the rebuild (default 1,000,000; 0: none)")
    parser.add_argument("--port-offset", type=int, default=None, help="use the test stack of this port offset")
    args = parser.parse_args(argv)
    if args.orders < 0:
        parser.error("--orders must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.port_offset is not None:
        from coffee_rt.paths import REPO_ROOT

        settings = LocalSettings.shifted(args.port_offset, REPO_ROOT / ".state" / f"test-{args.port_offset}").with_env()
    else:
        settings = LocalSettings.from_env()
    stack = LocalStack(settings, progress=lambda m: print(f"[stack] {m}", flush=True))
    for name in ("flink", "job"):
        stack[name].start_timeout = max(stack[name].start_timeout, 600.0)
    stack.up(["postgres", "redis", "kafka", "flink", "job"])
    cfg = local_job_config(settings)
    day = today(datetime.now(UTC), cfg.default_timezone)
    client = redis.Redis.from_url(settings.redis_url)
    rng = random.Random()  # fresh message_ids: a repeated seed would be deduplicated by the job
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    live_redis = live_pg = None
    if args.orders:
        live_redis, live_pg = live_throughput(settings, client, day, args.orders, rng)
    target = live_orders(client, day)
    watch = RedisWatch(client, day, target)
    running_at: list[float] = []

    def progress(message: str) -> None:
        if " running (" in message and not running_at:
            running_at.append(time.perf_counter())
        print(f"  {message}", flush=True)

    watch.start()
    started = time.perf_counter()
    result = rebuild_live(settings, cfg, day, progress)
    watch.join(60)
    watch.stop.set()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\ntoday ({day}): {target:,} orders in Redis before the rebuild; the replay read {result.records:,} "
          f"records written since {result.since.isoformat()}")
    print(f"{'':44} {'seconds':>9} {'orders/s':>10}")
    if args.orders:
        for name, seconds in (("live: the running job, into Redis", live_redis),
                              ("live: the running job, into Postgres", live_pg)):
            print(f"{name:44} " + (f"{seconds:9.1f} {args.orders / seconds:10,.0f}" if seconds else "  not done"))
    if running_at:
        print(f"{'rebuild: stop, submit, until the job runs':44} {running_at[0] - started:9.1f}")
    if watch.done_at is not None and running_at:
        seconds = watch.done_at - running_at[0]
        print(f"{'rebuild: replay until Redis had every order':44} {seconds:9.1f} {result.records / seconds:10,.0f}")
    else:
        print(f"{'rebuild: replay until Redis had every order':44}  not seen (the day's count never dropped)")
    print(f"{'rebuild: replay until checkpointed past it':44} {result.replay_seconds:9.1f} "
          f"{result.records / result.replay_seconds:10,.0f}")
    print(f"{'rebuild --live, end to end (with the audit)':44} {time.perf_counter() - started:9.1f}")
    print(f"live numbers agree with the topic afterwards: {result.live_agrees}")


if __name__ == "__main__":
    main()
