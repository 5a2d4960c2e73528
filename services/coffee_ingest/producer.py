"""An asyncio face on ``confluent_kafka.Producer``: a record in, a future of its broker ack out.

How acks reach the loop: librdkafka reports deliveries only from ``poll()``. Where it can
(:mod:`coffee_ingest.rdkafka_io`), librdkafka writes to a pipe the event loop watches and the
loop serves ``poll(0)`` itself, so an ack settles its request with no thread in between. Else a
dedicated thread blocks in ``poll()`` (the GIL is released there) and hands each poll's
deliveries to the loop in one wake-up. Both answer within microseconds; the pipe saves a thread
hop and a GIL hand-over per order, which on two busy cores was most of the ack's tail.

Guarantees the API relies on:
* idempotent producer, ``acks=all``: an ack means the record is in the partition's log, once;
* a future resolves to a :class:`Delivery` only for an acknowledged record; callers wait a
  bounded time and answer 503 otherwise (the record may still land later: the client's retry
  with the same message_id is then a duplicate, which the Flink job drops);
* when the broker goes away librdkafka reconnects by itself (backoff capped at 1 s); a fatal
  producer error (idempotence state lost) replaces the producer instead of failing forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from coffee_ingest import rdkafka_io
from coffee_ingest.metrics import Metrics
from coffee_ingest.settings import IngestSettings

log = logging.getLogger("coffee_ingest.producer")


@dataclass(frozen=True)
class Delivery:
    topic: str
    partition: int
    offset: int


class ProduceError(Exception):
    """The record is not known to be in Kafka; ``detail`` is safe to show the client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def producer_config(settings: IngestSettings) -> dict[str, Any]:
    return {
        **settings.kafka_config,
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": CLIENT_ID,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.linger_ms,
        "delivery.timeout.ms": settings.delivery_timeout_ms,
        # Same key -> same partition as Java clients (Flink, kafka-console tools) would choose.
        "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 100_000,
        "socket.nagle.disable": True,  # a lone order must not wait for the previous segment's ACK
        # Find a returning broker within a second instead of librdkafka's default 10 s backoff cap.
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 1000,
        # librdkafka's own log repeats every failed connect; _on_error reports state changes instead.
        "logger": _LIBRDKAFKA_LOG,
    }


_LIBRDKAFKA_LOG = logging.getLogger("coffee_ingest.librdkafka")
_LIBRDKAFKA_LOG.setLevel(logging.CRITICAL)


CLIENT_ID = "coffee-ingest"
SAFETY_POLL_S = 1.0  # the pipe is the wake-up; this only bounds the cost of a lost one


class OrderProducer:
    def __init__(self, settings: IngestSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._config = producer_config(settings)
        self._config["error_cb"] = self._on_error
        self._producer = Producer(self._config)
        self._fatal: KafkaError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pending = 0  # records handed over and not yet settled or given up on
        self._delivered: list[tuple[Any, KafkaError | None, Message]] = []  # filled during one poll()
        self._degraded = False  # logged once when Kafka starts failing, once when it is back
        self._pipe: tuple[int, int] | None = None  # (read, write) when librdkafka wakes the loop itself
        self._loop_thread: int | None = None
        self._safety: asyncio.TimerHandle | None = None

    @property
    def delivery_mode(self) -> str:
        """``io-event`` (the loop serves acks) or ``poll-thread``; for logs and tests."""
        return "io-event" if self._pipe is not None else "poll-thread"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, io_event: bool = True) -> None:
        """Begin serving acks: from the event loop when ``io_event`` and librdkafka allow, else
        from a poll thread."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if io_event and self._watch(self._producer):
            self._safety = self._loop.call_later(SAFETY_POLL_S, self._safety_poll)
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll_forever, name="kafka-poll", daemon=True)
        self._thread.start()

    def _watch(self, producer: Producer) -> bool:
        assert self._loop is not None
        if self._pipe is None:
            read, write = rdkafka_io.wakeup_pipe()
            if not rdkafka_io.enable_io_event(producer, CLIENT_ID, write):
                os.close(read)
                os.close(write)
                return False
            self._pipe = (read, write)
            self._loop.add_reader(read, self._serve)
        elif not rdkafka_io.enable_io_event(producer, CLIENT_ID, self._pipe[1]):
            return False
        producer.poll(0)  # whatever was queued before would never write to the pipe
        return True

    def _serve(self) -> None:  # in the event loop, when librdkafka wrote to the pipe
        assert self._pipe is not None
        try:
            os.read(self._pipe[0], 4096)  # one byte per wake-up; any left keep the pipe readable
        except BlockingIOError:
            pass
        self._producer.poll(0)  # runs on_delivery (and error_cb) right here for every waiting event

    def _safety_poll(self) -> None:
        assert self._loop is not None
        self._producer.poll(0)
        self._safety = self._loop.call_later(SAFETY_POLL_S, self._safety_poll)

    async def close(self, timeout: float = 5.0) -> None:
        """Give queued records ``timeout`` seconds to be delivered, then stop polling."""
        left = await asyncio.to_thread(self._producer.flush, timeout)
        if left:
            log.warning("shutdown: %d records were not confirmed by Kafka before the deadline", left)
        if self._safety is not None:
            self._safety.cancel()
        if self._pipe is not None and self._loop is not None:
            rdkafka_io.disable_io_event(self._producer, CLIENT_ID)
            self._loop.remove_reader(self._pipe[0])
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    def _poll_forever(self) -> None:
        loop = self._loop
        assert loop is not None
        while not self._stop.is_set():
            self._producer.poll(0.1)  # whichever producer is current (see _replace)
            if self._delivered:
                batch, self._delivered = self._delivered, []
                loop.call_soon_threadsafe(_settle_all, batch)

    def _on_error(self, err: KafkaError) -> None:  # in the poll thread
        if err.fatal():
            log.error("kafka producer fatal error, replacing the producer: %s", err.str())
            self._fatal = err
            return
        if not self._degraded:
            self._degraded = True
            log.warning("kafka is failing (%s); answering 503 until it acknowledges again", err.str())

    def _replace(self) -> None:
        # Records still in the old producer fail their requests by timeout (503), never a 202;
        # their callbacks never come, so they no longer count as pending.
        old, self._producer = self._producer, Producer(self._config)
        if self._pipe is not None:
            rdkafka_io.disable_io_event(old, CLIENT_ID)
            if not self._watch(self._producer):  # cannot happen for a handle built the same way
                raise RuntimeError("librdkafka's io event could not be moved to the new producer")
        self._fatal = None
        self.pending = 0

    # -- producing -------------------------------------------------------------------------
    def produce(self, key: bytes, value: bytes) -> asyncio.Future[Delivery]:
        """Hand one record to librdkafka; raises :class:`ProduceError` when it can't even be queued."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("OrderProducer.start() was not called")
        if self._fatal is not None:
            self._replace()
        future: asyncio.Future[Delivery] = loop.create_future()
        started = time.perf_counter()
        metrics = self.metrics

        def settle(err: KafkaError | None, msg: Message) -> None:  # in the event loop
            self.pending -= 1
            elapsed = time.perf_counter() - started
            if err is not None:
                metrics.produce_failed.observe(elapsed)
                if not future.done():
                    future.set_exception(ProduceError(f"kafka: {err.str()}"))
                return
            metrics.produce_acked.observe(elapsed)
            if self._degraded:
                self._degraded = False
                log.warning("kafka acknowledges writes again")
            if not future.done():
                future.set_result(Delivery(msg.topic() or "", msg.partition() or 0, msg.offset() or 0))

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            thread = threading.get_ident()
            if thread == self._loop_thread:  # from the loop's own poll(0)
                settle(err, msg)
            elif self._thread is not None and thread == self._thread.ident:  # poll thread: batched per poll
                self._delivered.append((settle, err, msg))
            else:  # from flush() at shutdown
                loop.call_soon_threadsafe(settle, err, msg)

        try:
            self._producer.produce(self.settings.topic, value, key, on_delivery=on_delivery)
        except BufferError:
            raise ProduceError("the producer's queue is full") from None
        except KafkaException as exc:
            raise ProduceError(f"kafka: {exc.args[0].str() if exc.args else exc}") from None
        self.pending += 1
        return future

    async def send(self, key: bytes, value: bytes) -> Delivery:
        """Produce and wait for the ack at most ``produce_timeout_s``; raises :class:`ProduceError`.

        One future and one timer, not :meth:`send_many`'s ``asyncio.wait`` (a set, a waiter and
        callbacks per order): this is every single order's path."""
        future = self.produce(key, value)
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            future.cancel()  # a late ack is ignored; the client was told 503

        started = time.perf_counter()
        timer = future.get_loop().call_later(self.settings.produce_timeout_s, expire)
        try:
            return await future
        except asyncio.CancelledError:
            if not timed_out:
                raise  # the request itself was cancelled
            self.metrics.produce_timeout.observe(time.perf_counter() - started)
            raise ProduceError(f"no acknowledgement from Kafka within {self.settings.produce_timeout_s:g} s") from None
        finally:
            timer.cancel()

    async def send_many(self, records: Sequence[tuple[bytes, bytes]], raise_first: bool = True
                        ) -> list[Delivery | ProduceError]:
        """Produce all records in order (one key keeps its order) and wait for all acks together."""
        futures: list[asyncio.Future[Delivery] | ProduceError] = []
        for key, value in records:
            try:
                futures.append(self.produce(key, value))
            except ProduceError as exc:
                futures.append(exc)
        waiting = [f for f in futures if isinstance(f, asyncio.Future)]
        started = time.perf_counter()
        if waiting:
            await asyncio.wait(waiting, timeout=self.settings.produce_timeout_s)
        results: list[Delivery | ProduceError] = []
        timeout = ProduceError(f"no acknowledgement from Kafka within {self.settings.produce_timeout_s:g} s")
        for f in futures:
            if isinstance(f, ProduceError):
                results.append(f)
            elif not f.done():
                f.cancel()  # a late ack is ignored; the client was told 503
                self.metrics.produce_timeout.observe(time.perf_counter() - started)
                results.append(timeout)
            elif (error := f.exception()) is not None:
                results.append(error if isinstance(error, ProduceError) else ProduceError(str(error)))
            else:
                results.append(f.result())
        if raise_first and len(results) == 1 and isinstance(results[0], ProduceError):
            raise results[0]
        return results

    # -- readiness -------------------------------------------------------------------------
    async def ready(self) -> tuple[bool, str]:
        """Whether a broker answers a metadata request for our topic with a leader per partition."""
        topic = self.settings.topic
        try:
            metadata = await asyncio.to_thread(self._producer.list_topics, topic,
                                               self.settings.readiness_timeout_s)
        except KafkaException as exc:
            return False, f"kafka unreachable: {exc.args[0].str() if exc.args else exc}"
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None:
            return False, f"topic {topic}: {meta.error.str() if meta and meta.error else 'missing'}"
        leaderless = [p for p, pm in meta.partitions.items() if pm.leader < 0]
        if not meta.partitions or leaderless:
            return False, f"topic {topic}: partitions without leader {leaderless}"
        return True, f"topic {topic}: {len(meta.partitions)} partitions"


def _settle_all(batch: list[tuple[Any, KafkaError | None, Message]]) -> None:
    for settle, err, msg in batch:
        settle(err, msg)
