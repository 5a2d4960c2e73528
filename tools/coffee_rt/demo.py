"""The README's first command: bring the stack up, post sample orders, show the live numbers.

Orders go through the real path (HTTP -> ingest -> Kafka -> Flink -> Postgres + Redis), with
the local stack's dev tokens; one order is posted twice to show it is counted once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import redis

from coffee_rt.errors import StartupError
from coffee_rt.local import supervisor
from coffee_rt.local.stack import LocalStack

SAMPLE_ORDERS = 40
WAIT_TOTALS = 120.0  # seconds for the job to count them (a busy machine is slower)


def run_demo(progress: Callable[[str], None]) -> int:
    from coffee_orders.loadgen import DEFAULT_STORES, random_order
    from coffee_orders.schema import to_wire

    stack = LocalStack(progress=progress)
    rows = stack.up()
    settings = stack.settings
    supervisor.watch(settings, [r.name for r in rows])  # as `local up`: what dies is started again
    supervisor.supervisor_process(settings).start()
    tokens = stack["ingest"].dev_tokens()  # type: ignore[attr-defined]
    rng = random.Random()
    now = datetime.now(UTC)
    orders = [random_order(rng, store, now - timedelta(seconds=rng.randint(0, 600)))
              for store in DEFAULT_STORES for _ in range(SAMPLE_ORDERS // len(DEFAULT_STORES))]
    progress(f"demo: posting {len(orders)} orders (+1 resend) to {settings.ingest_url}/v1/orders")
    with httpx.Client(base_url=settings.ingest_url, timeout=10) as http:
        for order in [*orders, orders[0]]:
            response = http.post("/v1/orders", content=to_wire(order), headers={
                "content-type": "application/json", "authorization": f"Bearer {tokens[order.store_id]}"})
            if response.status_code != 202:
                raise StartupError(f"ingest at {settings.ingest_url}/v1/orders answered {response.status_code} "
                                   f"instead of 202: {response.text[:300]}; read its log: "
                                   f"{', '.join(map(str, stack['ingest'].log_files()))}")

    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    store = DEFAULT_STORES[0]
    day = now.astimezone(ZoneInfo("UTC")).date().isoformat()
    deadline = time.monotonic() + WAIT_TOTALS
    summary: dict[str, str] = {}
    while time.monotonic() < deadline:
        summary = client.hgetall(f"coffee:live:_all:{day}:summary")  # type: ignore[assignment]
        if summary and int(summary["orders"]) >= len(orders):
            break
        time.sleep(0.5)
    else:
        raise StartupError(f"job: the live totals in Redis did not reach the {len(orders)} orders posted within "
                           f"{WAIT_TOTALS:.0f} s (they say {summary.get('orders', 0)}); `coffee-rt local status job` "
                           f"shows the job, its log: {settings.state_dir / 'logs' / 'flink-taskmanager.log'}")
    with psycopg.connect(settings.postgres_dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM orders").fetchone()
    print(f"\nPosted {len(orders)} orders and resent one: the resend is counted once.")
    print(f"Live totals today (all stores, Redis): {summary.get('orders', 0)} orders, "
          f"{int(summary.get('revenue_cents', 0)) / 100:.2f} revenue")
    print(f"Order history (Postgres): {stored[0] if stored else 0} orders\n")
    print("Where to look:")
    for row in rows:
        print(f"  {row.name:<9} {row.address}")
    cli = f"REDISCLI_AUTH=$(cat {settings.secrets_dir / 'redis-password'}) redis-cli -p {settings.redis_port}"
    print(f"  {cli} hgetall coffee:live:_all:{day}:summary")
    print(f"  {cli} hgetall coffee:live:{store.store_id}:{now.astimezone(ZoneInfo(store.timezone)).date()}:products")
    print("  logs: coffee-rt local logs COMPONENT    stop: coffee-rt local down")
    return 0
