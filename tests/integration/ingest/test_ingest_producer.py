"""The producer's two ways of getting acks back to the event loop, against the real broker.

The io-event path is the default; this test also pins that it is actually in use with the
locked confluent-kafka, so an upgrade that changes its handle layout fails here instead of
quietly falling back to the poll thread.
"""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from coffee_ingest.metrics import Metrics
from coffee_ingest.producer import Delivery, OrderProducer
from coffee_ingest.settings import IngestSettings

TOPIC = "ingest-producer-test"


@pytest.fixture(scope="module")
def topic(kafka_bootstrap: str) -> str:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    if TOPIC not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])[TOPIC].result(timeout=30)
    return TOPIC


def _round(kafka_bootstrap: str, topic: str, io_event: bool) -> tuple[str, list[Delivery | Exception], int]:
    settings = IngestSettings(kafka_bootstrap=kafka_bootstrap, topic=topic, tokens="{}")
    metrics = Metrics()
    producer = OrderProducer(settings, metrics)

    async def run() -> tuple[str, list[Delivery | Exception], int]:
        producer.start(io_event=io_event)
        mode = producer.delivery_mode
        records = [(f"k{i % 2}".encode(), f"v{i}".encode()) for i in range(60)]
        first = await producer.send_many(records[:20], raise_first=False)
        one = await producer.send(*records[20])
        rest = await producer.send_many(records[21:], raise_first=False)
        pending = producer.pending
        await producer.close()
        return mode, [*first, one, *rest], pending

    loop = asyncio.new_event_loop()  # not asyncio.run: it would leave the thread without a loop
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


@pytest.mark.parametrize("io_event, mode", [(True, "io-event"), (False, "poll-thread")])
def test_every_record_is_acked_in_key_order(kafka_bootstrap: str, topic: str, io_event: bool, mode: str) -> None:
    used, results, pending = _round(kafka_bootstrap, topic, io_event)
    assert used == mode
    assert pending == 0
    assert all(isinstance(r, Delivery) for r in results), results
    deliveries = [r for r in results if isinstance(r, Delivery)]
    assert {d.topic for d in deliveries} == {topic}
    for key in (0, 1):  # one key, one partition
        assert len({d.partition for d in deliveries[key::2]}) == 1
    for partition in {d.partition for d in deliveries}:  # consecutive offsets in send order
        offsets = [d.offset for d in deliveries if d.partition == partition]
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
