"""librdkafka's queue IO event through ctypes: it wakes a pipe, and refuses a handle it can't vouch for.

No broker is needed: a record to an unreachable broker fails by its message timeout, and that
failure report is exactly the kind of event the pipe must announce.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, Message, Producer

from coffee_ingest import rdkafka_io


def _producer(client_id: str) -> Producer:
    return Producer({"bootstrap.servers": "127.0.0.1:1", "client.id": client_id, "message.timeout.ms": 200,
                     "logger": _quiet})


class _Quiet:
    def log(self, *args: object, **kwargs: object) -> None:
        pass


_quiet = _Quiet()


@pytest.fixture()
def pipe() -> Iterator[tuple[int, int]]:
    read, write = rdkafka_io.wakeup_pipe()
    yield read, write
    os.close(read)
    os.close(write)


def test_the_pipe_becomes_readable_when_a_delivery_report_waits(pipe: tuple[int, int]) -> None:
    read, write = pipe
    producer = _producer("io-event-test")
    assert rdkafka_io.enable_io_event(producer, "io-event-test", write) is True
    reports: list[KafkaError | None] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        reports.append(err)

    producer.poll(0)  # connection errors queued before the event was enabled never write
    producer.produce("t", b"v", on_delivery=on_delivery)
    deadline = time.monotonic() + 10
    wakeups = 0
    try:
        while not reports and time.monotonic() < deadline:
            readable, _, _ = select.select([read], [], [], 1)
            if readable:  # the report, or an error event (the broker is unreachable)
                wakeups += 1
                assert os.read(read, 100)
                producer.poll(0)
    finally:
        rdkafka_io.disable_io_event(producer, "io-event-test")  # before the fixture closes the pipe
    assert wakeups >= 1, "librdkafka never wrote to the pipe"
    assert len(reports) == 1
    assert reports[0] is not None and reports[0].code() == KafkaError._MSG_TIMED_OUT


def test_disabled_event_writes_nothing_more(pipe: tuple[int, int]) -> None:
    read, write = pipe
    producer = _producer("io-event-off")
    assert rdkafka_io.enable_io_event(producer, "io-event-off", write)
    rdkafka_io.disable_io_event(producer, "io-event-off")
    reports: list[KafkaError | None] = []
    producer.produce("t", b"v", on_delivery=lambda err, msg: reports.append(err))
    deadline = time.monotonic() + 10
    while not reports and time.monotonic() < deadline:  # timeouts are scanned about once a second
        assert select.select([read], [], [], 0.2)[0] == []
        producer.poll(0)
    assert len(reports) == 1  # the report came, and the pipe stayed quiet


def test_a_handle_that_does_not_name_itself_as_expected_is_refused(pipe: tuple[int, int]) -> None:
    assert rdkafka_io.enable_io_event(_producer("someone-else"), "coffee-ingest", pipe[1]) is False


def test_a_producer_subclass_is_refused_without_reading_its_memory(pipe: tuple[int, int]) -> None:
    class Wrapped(Producer):  # a layout we did not check
        pass

    producer = Wrapped({"bootstrap.servers": "127.0.0.1:1", "client.id": "wrapped", "logger": _quiet})
    assert rdkafka_io.enable_io_event(producer, "wrapped", pipe[1]) is False


def test_the_pipe_never_blocks_its_writer(pipe: tuple[int, int]) -> None:
    assert os.get_blocking(pipe[0]) is False and os.get_blocking(pipe[1]) is False
