"""The job's two Python operators: parse/validate (with dead letters) and the live metrics.

Both are thin: the logic is in :mod:`coffee_job.records` and :mod:`coffee_job.live_metrics`,
which are unit-tested without Flink.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import redis
from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from coffee_job import live_metrics, redis_layout
from coffee_job.config import JobConfig, duration_ms
from coffee_job.live_metrics import LiveOrder, Pending, Summary
from coffee_job.records import DeadLetter, parse

log = logging.getLogger(__name__)

ORDER_FIELDS = ["message_id", "store_id", "placed_at_ms", "channel", "currency", "total_cents", "item_count",
                "quantity", "items_json", "kafka_partition", "kafka_offset"]
ORDER_TYPE = Types.ROW_NAMED(ORDER_FIELDS, [
    Types.STRING(), Types.STRING(), Types.LONG(), Types.STRING(), Types.STRING(), Types.LONG(), Types.INT(),
    Types.INT(), Types.STRING(), Types.INT(), Types.LONG()])
ITEM_FIELDS = ["message_id", "line_no", "store_id", "placed_at_ms", "sku", "name", "category", "origin",
               "quantity", "unit_price_cents"]
ITEM_TYPE = Types.ROW_NAMED(ITEM_FIELDS, [
    Types.STRING(), Types.INT(), Types.STRING(), Types.LONG(), Types.STRING(), Types.STRING(), Types.STRING(),
    Types.STRING(), Types.INT(), Types.LONG()])
DLQ_FIELDS = ["payload", "source_topic", "kafka_partition", "kafka_offset", "reason"]
DLQ_TYPE = Types.ROW_NAMED(DLQ_FIELDS, [
    Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.STRING(), Types.INT(), Types.LONG(), Types.STRING()])

ITEMS_TAG = OutputTag("order-items", ITEM_TYPE)
DLQ_TAG = OutputTag("dead-letters", DLQ_TYPE)


class ParseOrders(ProcessFunction):  # type: ignore[misc]
    """Kafka record -> order row (main output), item rows and dead letters (side outputs)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def open(self, runtime_context: RuntimeContext) -> None:
        metrics = runtime_context.get_metrics_group()
        self.dead_letters = metrics.counter("coffee_dlq_records")
        self.parsed = metrics.counter("coffee_orders_parsed")

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterator[Any]:
        result = parse(value["value"], value["kafka_partition"], value["kafka_offset"])
        if isinstance(result, DeadLetter):
            self.dead_letters.inc()
            yield DLQ_TAG, Row(result.raw, self.topic, result.kafka_partition, result.kafka_offset, result.reason)
            return
        order, items = result
        self.parsed.inc()
        yield Row(*(getattr(order, f) for f in ORDER_FIELDS))
        for item in items:
            yield ITEMS_TAG, Row(*(getattr(item, f) for f in ITEM_FIELDS))


KEYED_ORDER_TYPE = Types.TUPLE([Types.STRING(), ORDER_TYPE])


def fan_out(row: Row) -> Iterator[tuple[str, Row]]:
    """Each order counts for its store and for all stores together."""
    yield row["store_id"], row
    yield live_metrics.ALL_STORES, row


class _FlinkMetricsState:
    """:class:`live_metrics.MetricsState` over Flink keyed state."""

    def __init__(self, ctx: RuntimeContext) -> None:
        pickled = Types.PICKLED_BYTE_ARRAY()
        self.summary = ctx.get_state(ValueStateDescriptor("summary", pickled))
        self.pending = ctx.get_state(ValueStateDescriptor("pending", pickled))
        self.products = ctx.get_map_state(MapStateDescriptor("products", Types.STRING(), pickled))
        self.origins = ctx.get_map_state(MapStateDescriptor("origins", Types.STRING(), Types.LONG()))
        self.minutes = ctx.get_map_state(MapStateDescriptor("minutes", Types.LONG(), Types.LONG()))

    def get_summary(self) -> Summary | None:
        return self.summary.value()  # type: ignore[no-any-return]

    def set_summary(self, summary: Summary) -> None:
        self.summary.update(summary)

    def get_pending(self) -> Pending | None:
        return self.pending.value()  # type: ignore[no-any-return]

    def set_pending(self, pending: Pending | None) -> None:
        if pending is None:
            self.pending.clear()
        else:
            self.pending.update(pending)

    def get_product(self, sku: str) -> tuple[int, int]:
        value = self.products.get(sku)
        return (0, 0) if value is None else value  # type: ignore[no-any-return]

    def put_product(self, sku: str, quantity: int, revenue_cents: int) -> None:
        self.products.put(sku, (quantity, revenue_cents))

    def get_origin(self, origin: str) -> int:
        return self.origins.get(origin) or 0  # type: ignore[no-any-return]

    def put_origin(self, origin: str, quantity: int) -> None:
        self.origins.put(origin, quantity)

    def get_minute(self, minute: int) -> int:
        return self.minutes.get(minute) or 0  # type: ignore[no-any-return]

    def put_minute(self, minute: int, orders: int) -> None:
        self.minutes.put(minute, orders)

    def remove_minute(self, minute: int) -> None:
        self.minutes.remove(minute)

    def minute_keys(self) -> list[int]:
        return list(self.minutes.keys())

    def clear(self) -> None:
        for state in (self.summary, self.pending, self.products, self.origins, self.minutes):
            state.clear()


class LiveMetrics(KeyedProcessFunction):  # type: ignore[misc]
    """Keyed by store (and ``_all``): counts in state, absolute values to Redis on a short timer.

    The timer is part of Flink's checkpointed state, so an update counted before a checkpoint
    but not yet written when the job crashed is written after the restore.
    """

    def __init__(self, cfg: JobConfig) -> None:
        self.cfg = cfg

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = _FlinkMetricsState(runtime_context)
        self.timer = runtime_context.get_state(ValueStateDescriptor("flush_timer", Types.LONG()))
        self.flush_ms = duration_ms(self.cfg.redis_flush_interval)
        self.stale_after_ms = max(1000, 20 * self.flush_ms)
        self.redis = redis.Redis.from_url(self.cfg.redis_url.get_secret_value(), socket_timeout=5)
        metrics = runtime_context.get_metrics_group()
        self.write_errors = metrics.counter("coffee_redis_write_errors")
        self.late_orders = metrics.counter("coffee_orders_before_business_day")
        self.last_latency_ms = 0
        metrics.gauge("coffee_order_to_redis_latency_ms", lambda: self.last_latency_ms)

    def close(self) -> None:
        self.redis.close()

    # PyFlink iterates what these return: they are generators that emit nothing.
    def process_element(self, value: tuple[str, Row], ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        yield from ()
        key, row = value
        lines = [tuple(line) for line in json.loads(row["items_json"])]
        order = LiveOrder(row["message_id"], row["store_id"], row["placed_at_ms"], row["channel"],
                          row["total_cents"], row["quantity"], lines)  # type: ignore[arg-type]
        if not live_metrics.apply(self.state, order, self.cfg.timezone_of(key)):
            self.late_orders.inc()
            return
        now = ctx.timer_service().current_processing_time()
        scheduled = self.timer.value()
        # A flush due long ago means its timer was lost (seen after a TaskManager was killed
        # and the job restored): schedule another, or this key would never be written again.
        if scheduled is None or scheduled + self.stale_after_ms < now:
            ctx.timer_service().register_processing_time_timer(now + self.flush_ms)
            self.timer.update(now + self.flush_ms)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        yield from ()
        key = ctx.get_current_key()
        self.timer.clear()
        batch = live_metrics.collect(self.state, key, self.cfg.timezone_of(key))
        if batch is None:
            return
        now_ms = int(time.time() * 1000)
        try:
            pipe = self.redis.pipeline(transaction=True)
            redis_layout.write(pipe, batch, now_ms)
            pipe.execute()
        except redis.RedisError as exc:
            # Keep the pending changes and try again shortly: Redis being away must not stop
            # the Postgres history, and the state still holds the numbers to write.
            self.write_errors.inc()
            log.warning("redis write for %s failed, retrying in 1 s: %s", key, exc)
            at = ctx.timer_service().current_processing_time() + 1000
            ctx.timer_service().register_processing_time_timer(at)
            self.timer.update(at)
            return
        self.state.set_pending(None)
        if batch.recent:
            self.last_latency_ms = now_ms - min(score for score, _ in batch.recent)
