"""How long from an order's 202 at the ingest until the dashboard's event stream carries it.

Needs a running local stack with the job and the dashboard (`coffee-rt local up`). Posts orders
one at a time through the ingest, listens on the dashboard's stream for the all-stores summary,
and prints percentiles of: ingest 202 -> job's Redis write (the summary's updated_at) and that
write -> the event at the client. Settings come from COFFEE_RT_* like the CLI.

    uv run python benchmarks/dashboard_latency.py [orders=50] [pause_s=0.5]
"""

from __future__ import annotations

import json
import queue
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime

import httpx

from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import to_wire
from coffee_rt.local.components.dashboard import Dashboard
from coffee_rt.local.components.ingest import Ingest
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import LocalStack


def main(count: int = 50, pause_s: float = 0.5) -> int:
    stack = LocalStack(LocalSettings.from_env())
    ingest, dashboard = stack["ingest"], stack["dashboard"]
    assert isinstance(ingest, Ingest) and isinstance(dashboard, Dashboard)
    tokens, token = ingest.dev_tokens(), dashboard.dev_token()
    events: queue.Queue[tuple[float, dict[str, object]]] = queue.Queue()

    def listen() -> None:
        with httpx.stream("GET", f"{stack.settings.dashboard_url}/api/v1/stream", params={"store": "_all"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(10, read=60)) as r:
            name = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name == "summary":
                    events.put((time.time() * 1000, json.loads(line[6:])))

    threading.Thread(target=listen, daemon=True).start()
    _, first = events.get(timeout=30)
    orders_seen = int(first["orders"])  # type: ignore[call-overload]
    rng = random.Random()  # unseeded: a rerun must not resend the same message_ids (the job drops those)
    to_write, to_client = [], []
    with httpx.Client(base_url=stack.settings.ingest_url, timeout=10) as client:
        for _ in range(count):
            store = rng.choice(DEFAULT_STORES)
            order = random_order(rng, store, datetime.now(UTC))
            response = client.post("/v1/orders", content=to_wire(order), headers={
                "Authorization": f"Bearer {tokens[store.store_id]}", "Content-Type": "application/json"})
            accepted = time.time() * 1000
            assert response.status_code == 202, response.text
            orders_seen += 1
            while True:
                received, summary = events.get(timeout=30)
                if int(summary["orders"]) >= orders_seen:  # type: ignore[call-overload]
                    break
            written = int(summary["updated_at_ms"])  # type: ignore[call-overload]
            to_write.append(written - accepted)
            to_client.append(received - written)
            time.sleep(pause_s)

    def show(name: str, values: list[float]) -> None:
        cuts = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
        print(f"{name:<34} p50 {cuts[49]:7.1f} ms   p95 {cuts[94]:7.1f} ms   max {max(values):7.1f} ms")

    print(f"{count} orders, one at a time")
    show("ingest 202 -> job's Redis write", to_write)
    show("Redis write -> dashboard event", to_client)
    show("ingest 202 -> dashboard event", [a + b for a, b in zip(to_write, to_client, strict=True)])
    return 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) if i == 0 else float(a) for i, a in enumerate(sys.argv[1:]))))
