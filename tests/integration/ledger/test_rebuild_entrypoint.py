"""`python -m coffee_auditor rebuild --from`, the command the operator's history rebuild Jobs run, against the
real Kafka and Postgres of the test stack: configured only by ``AUDITOR_*`` variables, the credentials in
files (as the Job mounts its Secrets). Orders of stores of the test's own are produced to a topic of its own
(one poison record, one resend of a message_id with other lines); Postgres has none of them. The first run
re-inserts exactly those orders, their lines and rollups; a second run nothing; bad input changes nothing.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from coffee_live.days import business_day
from coffee_orders.loadgen import Store, random_order
from coffee_orders.schema import Order, to_wire
from coffee_rt.local.secret_files import write_secret
from coffee_rt.paths import REPO_ROOT

ORDERS = 40


@dataclass
class Sent:
    topic: str
    day: str
    stores: list[str]
    orders: list[Order]  # the first record of each message_id
    env: dict[str, str]

    @property
    def items(self) -> int:
        return sum(len(o.items) for o in self.orders)

    @property
    def revenue(self) -> int:
        return sum(o.total_cents for o in self.orders)


def _counts(dsn: str, stores: list[str]) -> tuple[int, int, int, int, int]:
    """Orders, revenue, order lines, and the hourly rollups' orders and revenue of ``stores``."""
    with psycopg.connect(dsn) as conn:
        orders = conn.execute("SELECT count(*), coalesce(sum(total_cents), 0) FROM orders WHERE store_id = ANY(%s)",
                              (stores,)).fetchone()
        items = conn.execute("SELECT count(*) FROM order_items i JOIN orders o USING (message_id) "
                             "WHERE o.store_id = ANY(%s)", (stores,)).fetchone()
        hours = conn.execute("SELECT coalesce(sum(order_count), 0), coalesce(sum(revenue_cents), 0) "
                             "FROM sales_by_hour WHERE store_id = ANY(%s)", (stores,)).fetchone()
    assert orders is not None and items is not None and hours is not None
    return int(orders[0]), int(orders[1]), int(items[0]), int(hours[0]), int(hours[1])


@pytest.fixture(scope="module")
def sent(kafka_bootstrap: str, postgres_dsn: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Sent]:
    suffix = uuid.uuid4().hex[:6]
    topic = f"orders-rebuild-{suffix}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result(timeout=30)
    stores = [f"rbj{suffix}-{n}" for n in range(1, 4)]
    rng = random.Random(22)
    placed = datetime.now(UTC) - timedelta(seconds=5)
    orders = [random_order(rng, Store(stores[n % 3], "UTC"), placed) for n in range(ORDERS)]
    resend = random_order(rng, Store(stores[0], "UTC"), placed).model_copy(update={"message_id": orders[0].message_id})
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for order in orders:
        producer.produce(topic, key=order.store_id.encode(), value=to_wire(order))
    producer.produce(topic, key=b"x", value=b"{not an order")
    producer.produce(topic, key=resend.store_id.encode(), value=to_wire(resend))
    assert producer.flush(30) == 0
    secrets = tmp_path_factory.mktemp("rebuild-secrets")
    write_secret(secrets / "dsn", postgres_dsn)
    write_secret(secrets / "url", redis_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITOR_")}
    env.update({"AUDITOR_KAFKA_BOOTSTRAP": kafka_bootstrap, "AUDITOR_TOPIC": topic,
                "AUDITOR_POSTGRES_DSN_FILE": str(secrets / "dsn"), "AUDITOR_REDIS_URL_FILE": str(secrets / "url")})
    yield Sent(topic, business_day(int(placed.timestamp() * 1000), "UTC"), stores, orders, env)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM order_items WHERE message_id IN (SELECT message_id FROM orders "
                     "WHERE store_id = ANY(%s))", (stores,))
        for table in ("orders", "sales_by_hour", "sales_by_minute"):
            conn.execute(f"DELETE FROM {table} WHERE store_id = ANY(%s)", (stores,))
    admin.delete_topics([topic])


def rebuild(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coffee_auditor", "rebuild", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_job_command_reinserts_exactly_the_missing_orders_and_then_nothing(sent: Sent, postgres_dsn: str) -> None:
    assert _counts(postgres_dsn, sent.stores) == (0, 0, 0, 0, 0)
    first = rebuild(sent.env, "--from", sent.day)
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(
        rf"rebuild {sent.day}\.\.{sent.day}: {ORDERS + 2} records read, {ORDERS + 1} orders in range, {ORDERS} orders "
        rf"and {sent.items} items re-inserted, rollups recomputed \(\d+\.\d s\)\n", first.stdout), first.stdout
    # the resend of a message_id (other lines) adds nothing; the poison record is not an order
    assert _counts(postgres_dsn, sent.stores) == (ORDERS, sent.revenue, sent.items, ORDERS, sent.revenue)
    second = rebuild(sent.env, "--from", sent.day, "--to", sent.day)
    assert second.returncode == 0, second.stderr
    assert f": {ORDERS + 2} records read, {ORDERS + 1} orders in range, 0 orders and 0 items re-inserted" in \
        second.stdout
    assert _counts(postgres_dsn, sent.stores) == (ORDERS, sent.revenue, sent.items, ORDERS, sent.revenue)


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--from", "2026-02-30"], {}, "coffee_auditor rebuild: '2026-02-30' is not a day"),
    (["--from", "2026-03-05", "--to", "2026-03-01"], {}, "coffee_auditor rebuild: --to 2026-03-01 is before --from "
                                                         "2026-03-05\n"),
    (["--from", "2026-01-01", "--to", "2026-03-31"], {}, "coffee_auditor rebuild: a rebuild covers at most 62 days"),
    ([], {}, "coffee_auditor rebuild: give --from DAY [--to DAY] (history) or --live (live numbers)\n"),
    (["--live", "--day", "2026-03-05"], {},
     "coffee_auditor rebuild: --live needs --day, --replay-from-ms and --group\n"),
    (["--from", "2026-03-05", "--group", "g"], {}, "--day, --replay-from-ms and --group belong to --live\n"),
    (["--from", "2026-03-05"], {"AUDITOR_POSTGRES_DSN_FILE": "/nonexistent/dsn"},
     "AUDITOR_POSTGRES_DSN_FILE: cannot read /nonexistent/dsn: No such file or directory"),
])
def test_bad_input_is_exit_2_and_changes_nothing(sent: Sent, postgres_dsn: str, args: list[str],
                                                 env: dict[str, str], message: str) -> None:
    before = _counts(postgres_dsn, sent.stores)
    done = rebuild({**sent.env, **env}, *args)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert message in done.stderr
    assert _counts(postgres_dsn, sent.stores) == before
