"""The README's first command: bring the stack up, send sample orders, say where to look."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka import Producer

from coffee_rt import topics
from coffee_rt.local.stack import LocalStack


def run_demo(progress: Callable[[str], None]) -> int:
    stack = LocalStack(progress=progress)
    rows = stack.up()
    settings = stack.settings
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    sent = 0
    for i in range(20):
        order = {
            "message_id": str(uuid.uuid4()),
            "store_id": f"store-{i % 3 + 1}",
            "placed_at": datetime.now(UTC).isoformat(),
            "channel": "counter",
            "currency": "USD",
            "items": [{"sku": "GUA-HONEY-12", "name": "Guatemala Honey 12oz", "category": "beans",
                       "origin": "Guatemala Honey", "quantity": 1, "unit_price_cents": 1800}],
            "total_cents": 1800,
        }
        producer.produce(topics.ORDERS.name, key=str(order["store_id"]), value=json.dumps(order))
        sent += 1
    producer.flush(10)
    print(f"\nSent {sent} sample orders to Kafka topic {topics.ORDERS.name!r}.\n")
    print("Where to look:")
    for row in rows:
        print(f"  {row.name:<9} {row.address}")
    print(f"  Flink UI  {settings.flink_rest_url}")
    print("  logs      coffee-rt local logs COMPONENT;  stop: coffee-rt local down")
    return 0
