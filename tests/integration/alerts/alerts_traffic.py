"""Orders through the real ingest API and a poison record straight into Kafka, to make metrics move."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
from confluent_kafka import Producer

from coffee_orders import topics
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_rt.local.components.base import port_is_free
from coffee_rt.local.stack import LocalStack


def post_orders(ingest_url: str, tokens: dict[str, str], count: int, seed: int | None = None) -> int:
    """POST ``count`` new orders (202 each, asserted; fresh message ids unless ``seed``); returns the count."""
    rng = random.Random(seed)
    accepted = 0
    with httpx.Client(base_url=ingest_url, timeout=10) as client:
        for i in range(count):
            store = DEFAULT_STORES[i % len(DEFAULT_STORES)]
            order = random_order(rng, store, datetime.now(UTC).astimezone(ZoneInfo(store.timezone)))
            response = client.post("/v1/orders", content=order.model_dump_json(),
                                   headers={"Authorization": f"Bearer {tokens[store.store_id]}",
                                            "Content-Type": "application/json"})
            assert response.status_code == 202, response.text
            accepted += 1
    return accepted


def send_poison(kafka_bootstrap: str, value: bytes = b"not an order") -> None:
    """A record some other producer might write: the job sends it to the dead-letter topic."""
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topics.ORDERS.name, key=b"poison", value=value)
    assert producer.flush(30) == 0


def wait_port_free(stack: LocalStack, port: int, timeout: float = 15) -> None:
    """A stopped server's listening socket can outlive its pid by a moment."""
    deadline = time.monotonic() + timeout
    while not port_is_free(stack.settings.host, port) and time.monotonic() < deadline:
        time.sleep(0.2)
