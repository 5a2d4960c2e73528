"""A running coffee-rt job on the test stack, fed with generated orders, with exact expectations.

Each module gets its own topics, consumer group and a clean Postgres/Redis, so the job's
totals can be compared exactly with totals this code computes from what it sent.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from coffee_flink.rest import FlinkRest
from coffee_jobconfig.model import JobConfig
from coffee_orders.loadgen import Store, random_order
from coffee_orders.schema import Order, to_wire
from coffee_rt.local.stack import LocalStack


def fresh_topics_and_sinks(kafka_bootstrap: str, postgres_dsn: str, redis_url: str, prefix: str) -> tuple[str, str]:
    """New orders and dead-letter topics named ``{prefix}-{random}``, empty history tables, empty Redis."""
    suffix = uuid.uuid4().hex[:8]
    orders_topic, dlq_topic = f"{prefix}-{suffix}", f"{prefix}-dlq-{suffix}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(orders_topic, 3, 1), NewTopic(dlq_topic, 1, 1)]).values():
        future.result(timeout=30)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE orders, order_items, sales_by_minute, sales_by_hour")
    redis.Redis.from_url(redis_url).flushdb()
    return orders_topic, dlq_topic


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is around noon now, so a test run never straddles midnight."""
    offset = (12 - now.hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-5 is UTC+5


@dataclass
class Expected:
    """Totals computed independently of the job, from the orders the test sent."""

    orders: dict[str, Order] = field(default_factory=dict)

    def add(self, orders: Iterable[Order]) -> None:
        for order in orders:
            self.orders.setdefault(str(order.message_id), order)

    def by_store(self) -> dict[str, tuple[int, int, int]]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for order in self.orders.values():
            for key in (order.store_id, "_all"):
                totals[key][0] += 1
                totals[key][1] += order.total_cents
                totals[key][2] += sum(i.quantity for i in order.items)
        return {k: (v[0], v[1], v[2]) for k, v in totals.items()}

    def products(self, store: str = "_all") -> Counter[str]:
        counts: Counter[str] = Counter()
        for order in self.orders.values():
            if store in ("_all", order.store_id):
                for item in order.items:
                    counts[item.sku] += item.quantity
        return counts

    def origins(self, store: str = "_all") -> Counter[str]:
        counts: Counter[str] = Counter()
        for order in self.orders.values():
            if store in ("_all", order.store_id):
                for item in order.items:
                    if item.origin:
                        counts[item.origin] += item.quantity
        return counts

    def item_rows(self) -> int:
        return sum(len(o.items) for o in self.orders.values())


@dataclass
class RunningJob:
    stack: LocalStack
    rest: FlinkRest
    cfg: JobConfig
    job_id: str
    zone: str
    day: str
    stores: list[Store]
    expected: Expected = field(default_factory=Expected)
    poison: list[bytes] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        self.producer = Producer({"bootstrap.servers": self.cfg.kafka_bootstrap, "enable.idempotence": True,
                                  "acks": "all", "linger.ms": 5})

    def make_orders(self, count: int) -> list[Order]:
        """Orders placed in the last two hours (all today in the chosen zone)."""
        now = datetime.now(UTC)
        return [random_order(self.rng, self.rng.choice(self.stores),
                             now - timedelta(seconds=self.rng.uniform(60, 7200))) for _ in range(count)]

    def send(self, orders: Iterable[Order], poison_every: int = 0) -> int:
        sent = 0
        for n, order in enumerate(orders):
            self.producer.produce(self.cfg.orders_topic, key=order.store_id, value=to_wire(order))
            self.expected.add([order])
            sent += 1
            if poison_every and n % poison_every == poison_every - 1:
                self.send_poison()
            if n % 1000 == 0:
                self.producer.poll(0)
        assert self.producer.flush(30) == 0
        return sent

    def send_poison(self) -> None:
        """Records some other producer might write: not JSON, not UTF-8, JSON but not an order."""
        n = len(self.poison)
        kinds = [
            f"not json at all #{n}".encode(),
            b'{"message_id": "' + str(uuid.UUID(int=self.rng.getrandbits(128))).encode() + b'"}',
            b"\xff\xfe\x00 binary #" + str(n).encode(),
            f"[{n}, 2, 3]".encode(),
        ]
        value = kinds[n % len(kinds)]
        self.poison.append(value)
        self.producer.produce(self.cfg.orders_topic, key=b"poison", value=value)

    def pg_totals(self) -> dict[str, tuple[int, int, int]]:
        with psycopg.connect(self.stack.settings.postgres_dsn) as conn:
            rows = conn.execute(
                "SELECT o.store_id, count(*), sum(o.total_cents), sum(q.quantity) FROM orders o "
                "JOIN (SELECT message_id, sum(quantity) AS quantity FROM order_items GROUP BY 1) q "
                "USING (message_id) GROUP BY o.store_id"
            ).fetchall()
        totals = {store: (int(n), int(rev), int(qty)) for store, n, rev, qty in rows}
        if totals:
            totals["_all"] = tuple(sum(v[i] for v in totals.values()) for i in range(3))  # type: ignore[assignment]
        return totals

    def rollups_match(self, want: dict[str, tuple[int, int, int]]) -> bool:
        """Orders per store in sales_by_hour and all revenue in sales_by_minute equal ``want``."""
        with psycopg.connect(self.stack.settings.postgres_dsn) as conn:
            by_hour = dict(conn.execute("SELECT store_id, sum(order_count) FROM sales_by_hour GROUP BY 1").fetchall())
            revenue = conn.execute("SELECT sum(revenue_cents) FROM sales_by_minute").fetchone()
        stores = {s: v[0] for s, v in want.items() if s != "_all"}
        return {s: int(n) for s, n in by_hour.items()} == stores and revenue == (want.get("_all", (0, None))[1],)

    def redis_totals(self) -> dict[str, tuple[int, int, int]]:
        client = redis.Redis.from_url(self.stack.settings.redis_url, decode_responses=True)
        totals = {}
        for store in [s.store_id for s in self.stores] + ["_all"]:
            summary = client.hgetall(f"coffee:live:{store}:{self.day}:summary")
            if summary:
                totals[store] = (int(summary["orders"]), int(summary["revenue_cents"]), int(summary["quantity"]))
        return totals

    def wait_until_exact(self, timeout: float = 300) -> None:
        """Wait until Postgres (orders and rollups) and Redis show exactly the expected totals."""
        want = self.expected.by_store()
        deadline = time.monotonic() + timeout
        pg, live = {}, {}
        while time.monotonic() < deadline:
            pg, live = self.pg_totals(), self.redis_totals()
            # The rollups trail the orders table by a mini-batch (rollup_batch_interval).
            if pg == want and live == want and self.rollups_match(want):
                return
            time.sleep(1)
        raise AssertionError(f"not exact after {timeout:.0f} s:\nwant  {want}\npg    {pg}\nredis {live}")


