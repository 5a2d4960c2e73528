"""Helpers for the ingest service tests: fresh orders, the topic's end offsets, problem checks."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition

from coffee_orders import topics
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import Order

_rng = random.Random()  # fresh message_ids on every run: the test stack may be kept between runs


def fresh_order(store_id: str = "store-01", channel: str = "counter") -> Order:
    """A realistic order placed now, with a new message_id."""
    store = next(s for s in DEFAULT_STORES if s.store_id == store_id)
    return random_order(_rng, store, datetime.now(UTC), channel)  # type: ignore[arg-type]


class Offsets:
    """End offsets (high watermarks) of every partition of the orders topic."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ingest-tests",
                                  "enable.auto.commit": False})

    def __call__(self) -> list[int]:
        return [self.consumer.get_watermark_offsets(TopicPartition(topics.ORDERS.name, p), timeout=10)[1]
                for p in range(topics.ORDERS.partitions)]

    def read(self, partition: int, offset: int) -> tuple[bytes | None, bytes | None]:
        """(key, value) of one record."""
        self.consumer.assign([TopicPartition(topics.ORDERS.name, partition, offset)])
        try:
            for _ in range(30):
                message = self.consumer.poll(1.0)
                if message is not None:
                    assert message.error() is None, message.error()
                    assert (message.partition(), message.offset()) == (partition, offset)
                    return message.key(), message.value()
        finally:
            self.consumer.unassign()
        raise AssertionError(f"no record at {partition}/{offset}")

    def read_range(self, partition: int, first: int, last: int) -> dict[int, tuple[bytes | None, bytes | None]]:
        """offset -> (key, value) of every record from ``first`` to ``last`` inclusive."""
        self.consumer.assign([TopicPartition(topics.ORDERS.name, partition, first)])
        records: dict[int, tuple[bytes | None, bytes | None]] = {}
        try:
            for _ in range(600):
                for message in self.consumer.consume(500, 1.0):
                    assert message.error() is None, message.error()
                    records[message.offset() or 0] = (message.key(), message.value())
                if max(records, default=-1) >= last:
                    return {o: r for o, r in records.items() if o <= last}
        finally:
            self.consumer.unassign()
        raise AssertionError(f"records {first}..{last} of partition {partition} not all read")


def auth(token: str, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type}


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["type"].startswith("urn:coffee-rt:problem:")
    return body
