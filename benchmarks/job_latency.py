"""End-to-end latency of the job: from producing an order to Kafka until Redis shows it.

Every store's orders go to one partition in order, and the job publishes each store's absolute
order count on ``coffee:updates`` after every Redis write; so the k-th order produced for a store
is visible once a notification for that store says ``orders >= base + k``. Latency = receipt of
that notification - the order's produce time (both on this machine's clock).

Rates are open-loop (order i due at t0 + i/rate). A bulk step then produces N orders as fast as
possible and reports how fast they land in Redis and in Postgres.

    uv run python benchmarks/job_latency.py                       # 100 and 1,000 orders/s, bulk 50,000
    uv run python benchmarks/job_latency.py --rates 100,1000,3000 --duration 30 --bulk 100000
    uv run python benchmarks/job_latency.py --port-offset 13000   # the test stack of that offset

It uses the running local stack (starting it if needed) and its job on the `orders` topic.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import redis
from confluent_kafka import Producer

from coffee_job.live_metrics import business_day
from coffee_live.layout import UPDATES_CHANNEL, day_key
from coffee_orders.loadgen import Store, random_order
from coffee_orders.schema import to_wire
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import LocalStack

STORES = [Store(f"bench-{n:02d}", "UTC") for n in range(1, 13)]
# The bulk step's own stores: its orders are then counted in Postgres through the (store_id,
# placed_at) index. A count(*) of the whole table, polled, once took a quarter of the CPU from
# the job it measured on a benchmark database of 10 million orders.
BULK_STORES = [Store(f"bulk-{n:02d}", "UTC") for n in range(1, 13)]
BULK_COUNT_SQL = "SELECT count(*) FROM orders WHERE store_id = ANY(%s) AND placed_at >= %s"


@dataclass
class Step:
    rate: float
    sent: int
    seen: int
    latencies_ms: list[float]
    achieved: float

    def quantile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


class Watcher(threading.Thread):
    """Follows coffee:updates and records when each store's count first reached each value."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(UPDATES_CHANNEL)
        self.counts: dict[str, int] = defaultdict(int)
        self.reached: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            now = time.time()
            body = json.loads(message["data"])
            with self.lock:
                if body["orders"] > self.counts[body["store"]]:
                    self.counts[body["store"]] = body["orders"]
                    self.reached[body["store"]].append((body["orders"], now))

    def visible_at(self, store: str, count: int) -> float | None:
        with self.lock:
            for value, at in self.reached[store]:
                if value >= count:
                    return at
        return None


def base_counts(client: redis.Redis) -> dict[str, int]:
    day = business_day(int(time.time() * 1000), "UTC")
    counts = {}
    for store in [s.store_id for s in STORES] + ["_all"]:
        value = client.hget(day_key(store, day, "summary"), "orders")
        counts[store] = int(value) if value else 0
    return counts


def make_orders(count: int, rng: random.Random, stores: list[Store] = STORES) -> list[tuple[str, bytes]]:
    """Orders placed in the last 30 s, over ``stores``."""
    now = datetime.now(UTC)
    orders = []
    for _ in range(count):
        store = rng.choice(stores)
        orders.append((store.store_id, to_wire(random_order(rng, store, now - timedelta(seconds=rng.uniform(0, 30))))))
    return orders


def run_rate(producer: Producer, topic: str, watcher: Watcher, rate: float, duration: float,
             rng: random.Random) -> Step:
    orders = make_orders(int(rate * duration), rng)
    with watcher.lock:
        base = dict(watcher.counts)
    client_base = {s.store_id: base.get(s.store_id, 0) for s in STORES}
    sent_at: list[tuple[str, int, float]] = []
    per_store: dict[str, int] = defaultdict(int)
    t0 = time.perf_counter()
    wall0 = time.time()
    for i, (store, value) in enumerate(orders):
        due = t0 + i / rate
        while (delay := due - time.perf_counter()) > 0:
            time.sleep(min(delay, 0.001))
        producer.produce(topic, key=store, value=value)
        producer.poll(0)
        per_store[store] += 1
        sent_at.append((store, client_base[store] + per_store[store], wall0 + (time.perf_counter() - t0)))
    producer.flush(30)
    achieved = len(orders) / (time.perf_counter() - t0)
    deadline = time.time() + 30
    latencies: list[float] = []
    pending = sent_at
    while pending and time.time() < deadline:
        still = []
        for store, count, at in pending:
            seen = watcher.visible_at(store, count)
            if seen is None:
                still.append((store, count, at))
            else:
                latencies.append((seen - at) * 1000)
        pending = still
        if pending:
            time.sleep(0.2)
    return Step(rate, len(orders), len(latencies), latencies, achieved)


def bulk(producer: Producer, topic: str, client: redis.Redis, dsn: str, count: int, rng: random.Random) -> None:
    since = datetime.now(UTC) - timedelta(seconds=31)
    orders = make_orders(count, rng, BULK_STORES)
    stores = [store.store_id for store in BULK_STORES]
    base_redis = base_counts(client)["_all"]
    pg = psycopg.connect(dsn, autocommit=True)

    def in_postgres() -> int:
        row = pg.execute(BULK_COUNT_SQL, (stores, since)).fetchone()
        return int(row[0]) if row else 0

    base_pg = in_postgres()
    # Each upsert's cost grows with the table's indexes (random message_ids): say what we ran against.
    # (Counted once, before the clock starts.)
    rows = pg.execute("SELECT count(*) FROM orders").fetchone()
    print(f"orders table before the bulk step: {rows[0] if rows else 0:,} rows", flush=True)
    t0 = time.perf_counter()
    for store, value in orders:
        while True:
            try:
                producer.produce(topic, key=store, value=value)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    produced = time.perf_counter() - t0
    redis_done = pg_done = None
    deadline = time.perf_counter() + 600
    while (redis_done is None or pg_done is None) and time.perf_counter() < deadline:
        if redis_done is None and base_counts(client)["_all"] >= base_redis + count:
            redis_done = time.perf_counter() - t0
        if pg_done is None and in_postgres() >= base_pg + count:
            pg_done = time.perf_counter() - t0
        time.sleep(0.25)
    pg.close()
    print(f"bulk {count} orders: produced in {produced:.1f} s ({count / produced:,.0f}/s)")
    for name, done in (("redis", redis_done), ("postgres", pg_done)):
        if done is None:
            print(f"  {name}: not complete after 600 s")
        else:
            print(f"  all in {name} after {done:.1f} s: {count / done:,.0f} orders/s sustained")


def rates(text: str) -> list[float]:
    """``--rates``: comma-separated positive orders/s; empty for none (a bulk-only run)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if any(not value > 0 or value == float("inf") for value in values):
        raise argparse.ArgumentTypeError(f"every rate must be a positive number of orders/s: {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=rates, default=[100.0, 1000.0],
                        help="comma-separated orders/s (default 100,1000; empty: only the bulk step)")
    parser.add_argument("--duration", type=float, default=20, help="seconds per rate step (default 20)")
    parser.add_argument("--bulk", type=int, default=50_000, help="orders for the throughput step (0: skip)")
    parser.add_argument("--port-offset", type=int, default=None, help="use the test stack of this port offset")
    parser.add_argument("--warmup", type=float, default=10,
                        help="seconds at 500 orders/s before measuring, unreported (default 10; a just-submitted "
                             "job is still compiling its hot paths)")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()

    if args.port_offset is not None:
        from coffee_rt.paths import REPO_ROOT

        settings = LocalSettings.shifted(args.port_offset, REPO_ROOT / ".state" / f"test-{args.port_offset}").with_env()
    else:
        settings = LocalSettings.from_env()
    stack = LocalStack(settings, progress=lambda m: print(f"[stack] {m}"))
    stack.up(["postgres", "redis", "kafka", "flink", "job"])
    client = redis.Redis.from_url(settings.redis_url)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 1, "queue.buffering.max.messages": 500_000})
    watcher = Watcher(client)
    with watcher.lock:
        watcher.counts.update({k: v for k, v in base_counts(client).items()})
    watcher.start()
    rng = random.Random()  # fresh message_ids: a repeated seed would be deduplicated by the job
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"{'rate/s':>8} {'achieved':>9} {'seen':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    if args.warmup > 0:
        run_rate(producer, "orders", watcher, 500, args.warmup, rng)
    for rate in args.rates:
        step = run_rate(producer, "orders", watcher, rate, args.duration, rng)
        print(f"{rate:8.0f} {step.achieved:9.0f} {step.seen:>5}/{step.sent:<5} {step.quantile(0.5):8.1f} "
              f"{step.quantile(0.99):8.1f} {max(step.latencies_ms, default=float('nan')):8.1f}", flush=True)
    if args.bulk:
        bulk(producer, "orders", client, settings.postgres_dsn, args.bulk, rng)
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    watcher.stop.set()
    watcher.join(2)


if __name__ == "__main__":
    main()
