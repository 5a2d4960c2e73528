"""The job's one Python operator: the live metrics (parsing is the Java ``parse_order``).

It is thin: the logic is in :mod:`coffee_job.live_metrics` and :mod:`coffee_live.layout`,
which are unit-tested without Flink.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import redis
from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from coffee_job import live_metrics, redis_writer
from coffee_job.live_metrics import DictState, LiveOrder
from coffee_jobconfig.model import JobConfig
from coffee_orders.records import lines_for_live

log = logging.getLogger(__name__)

# One key for the live metrics: a coffee shop's order rate fits one operator, and one key lets a
# flush write every store's changes in a single Redis transaction.
LIVE_KEY = "live"
# What PyFlink's keyed operators read: Row(key, value); the value is one window's orders, each a
# JSON array [message_id, store_id, placed_at_ms, channel, total_cents, quantity, lines]
# (sql.live_batches_query).
LIVE_BATCH_TYPE = Types.ROW_NAMED(["orders"], [Types.OBJECT_ARRAY(Types.STRING())])
LIVE_INPUT_TYPE = Types.ROW([Types.STRING(), LIVE_BATCH_TYPE])
RETRY_MS = 1000


class LiveMetrics(KeyedProcessFunction):  # type: ignore[misc]
    """All stores' live metrics (and ``_all``): counts in state, absolute values to Redis.

    Each element is every order of one short processing-time window (``redis_flush_interval``,
    gathered in SQL), so Python runs once per window, not once per order. The batch is counted
    into each touched store's :class:`live_metrics.DictState` and every change goes to Redis in
    one transaction. The metrics are Flink state and Redis gets absolute values: a restore
    recounts from the checkpoint and rewrites the same numbers, never counting an order twice.
    """

    def __init__(self, cfg: JobConfig) -> None:
        self.cfg = cfg

    def open(self, runtime_context: RuntimeContext) -> None:
        # In thread mode every Python operator of a TaskManager shares one interpreter and its GIL;
        # CPython hands the GIL over only every 5 ms by default.
        sys.setswitchinterval(0.0005)
        pickled = Types.PICKLED_BYTE_ARRAY()
        self.metrics = runtime_context.get_map_state(MapStateDescriptor("metrics", Types.STRING(), pickled))
        self.unwritten = runtime_context.get_state(ValueStateDescriptor("unwritten", pickled))
        self.timer = runtime_context.get_state(ValueStateDescriptor("flush_timer", Types.LONG()))
        # Read here, in the TaskManager: the URL holds the Redis password (coffee_jobconfig.model).
        self.redis = redis.Redis.from_url(self.cfg.redis_url().get_secret_value(), socket_timeout=5)
        self.write = redis_writer.Writer(self.redis)
        metrics = runtime_context.get_metrics_group()
        self.write_errors = metrics.counter("coffee_redis_write_errors")
        self.late_orders = metrics.counter("coffee_orders_before_business_day")
        # A counter moved by the change, not a gauge: in thread mode Flink reads a Python gauge by
        # calling into the interpreter from its metrics thread, and a read racing the task's
        # shutdown crashed the TaskManager (SIGSEGV in pemja).
        self.latency_ms = metrics.counter("coffee_order_to_redis_latency_ms")
        self.last_latency_ms = 0
        # The metrics as last stored, unpickled: this operator holds one key, so nothing else
        # changes them, and a restore opens a fresh instance with an empty cache.
        self.loaded: dict[str, DictState] = {}

    def close(self) -> None:
        self.redis.close()

    # PyFlink iterates what these return: they are generators that emit nothing.
    def process_element(self, row: Row, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        yield from ()
        orders = [LiveOrder(o[0], o[1], o[2], o[3], o[4], o[5], lines_for_live(o[6])) for o in map(json.loads, row[0])]
        self._flush(orders, ctx)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        yield from ()
        self.timer.clear()
        self._flush([], ctx)  # what a failed write left

    def _flush(self, orders: list[LiveOrder], ctx: KeyedProcessFunction.Context) -> None:
        states, late = live_metrics.count_orders(orders, self._load, self.cfg.timezone_of)
        if late:
            self.late_orders.inc(late)
        for key in (self.unwritten.value() or set()) - states.keys():  # changes a failed write left
            states[key] = self._load(key)
        flushes = [f for key, state in states.items()
                   if (f := live_metrics.collect(state, key, self.cfg.timezone_of(key))) is not None]
        now_ms = int(time.time() * 1000)
        try:
            self.write(flushes, now_ms)
        except redis.RedisError as exc:
            # Keep the pending changes and try again shortly: Redis being away must not stop
            # the Postgres history, and the state still holds the numbers to write.
            self.write_errors.inc()
            log.warning("redis write failed, retrying in %d ms: %s", RETRY_MS, exc)
            self._store(states)
            self.unwritten.update(set(states))
            if self.timer.value() is None:
                at = ctx.timer_service().current_processing_time() + RETRY_MS
                ctx.timer_service().register_processing_time_timer(at)
                self.timer.update(at)
            return
        for state in states.values():
            state.set_pending(None)
        self._store(states)
        self.unwritten.clear()
        recent = [score for flush in flushes for score, _ in flush.recent]
        if recent:
            latency_ms = now_ms - min(recent)
            self.latency_ms.inc(latency_ms - self.last_latency_ms)
            self.last_latency_ms = latency_ms

    def _store(self, states: dict[str, DictState]) -> None:
        for key, state in states.items():  # put_all differs between PyFlink's thread and process modes
            self.metrics.put(key, state)
        self.loaded.update(states)

    def _load(self, key: str) -> DictState:
        if (cached := self.loaded.get(key)) is not None:
            return cached
        state = self.metrics.get(key)
        return DictState() if state is None else state  # type: ignore[no-any-return]
