"""Live metrics for one key (a store, or all stores) for its current business day. Pure Python.

Counts live in Flink state; Redis receives *absolute* values taken from that state, so a replay
after a restart rewrites the same numbers instead of adding them twice. Updates are coalesced:
:func:`apply` marks what changed; :func:`collect`, once per batch of orders, turns the changes
into one :class:`Flush` for the Redis writer. An order's business day is
``coffee_live.days.business_day``, the rule the ledger audit files it under too.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from coffee_live.days import business_day, day_bounds
from coffee_live.layout import ALL_STORES, RECENT_ORDERS

MINUTES_KEPT = 60


@dataclass
class Summary:
    day: str
    orders: int = 0
    revenue_cents: int = 0
    quantity: int = 0
    last_order_ms: int = 0


@dataclass
class Pending:
    """What changed since the last flush (kept in state, so a checkpoint taken in between keeps it)."""

    skus: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    origins: set[str] = field(default_factory=set)
    minutes: set[int] = field(default_factory=set)
    # The newest orders since the last flush, (placed_at ms, message_id, order); their ticker JSON
    # is built in collect, for the RECENT_ORDERS that are written only.
    recent: list[tuple[int, str, LiveOrder]] = field(default_factory=list)
    summary: bool = False
    new_day: bool = False


class MetricsState(Protocol):
    """The keyed state the metrics need; dict-backed in unit tests, Flink state in the job."""

    def get_summary(self) -> Summary | None: ...
    def set_summary(self, summary: Summary) -> None: ...
    def get_pending(self) -> Pending | None: ...
    def set_pending(self, pending: Pending | None) -> None: ...
    def get_product(self, sku: str) -> tuple[int, int]: ...
    def put_product(self, sku: str, quantity: int, revenue_cents: int) -> None: ...
    def get_origin(self, origin: str) -> int: ...
    def put_origin(self, origin: str, quantity: int) -> None: ...
    def get_minute(self, minute: int) -> int: ...
    def put_minute(self, minute: int, orders: int) -> None: ...
    def remove_minute(self, minute: int) -> None: ...
    def minute_keys(self) -> list[int]: ...
    def clear(self) -> None: ...


@dataclass(frozen=True)
class LiveOrder:
    """What the live metrics need of an order (built from the job's order row)."""

    message_id: str
    store_id: str
    placed_at_ms: int
    channel: str
    total_cents: int
    quantity: int
    lines: list[tuple[str, str, str | None, int, int]]  # sku, name, origin, quantity, line cents


@dataclass(frozen=True)
class Flush:
    """Absolute values to write to Redis for one key and day."""

    store: str
    day: str
    expire_at: int  # unix seconds: end of the business day plus a margin
    summary: Summary
    products: dict[str, tuple[int, int]]
    names: dict[str, str]
    origins: dict[str, int]
    minutes: dict[int, int]
    stale_minutes: list[int]
    recent: list[tuple[int, str]]
    new_day: bool


def day_end_epoch(day: str, tz: str, margin: timedelta = timedelta(days=2)) -> int:
    """Unix time at which a day's keys may go: midnight after ``day`` in ``tz``, plus ``margin``."""
    return int((day_bounds(day, tz)[1] + margin).timestamp())


def _newest_first(entry: tuple[int, str, LiveOrder]) -> tuple[int, str]:
    return entry[0], entry[1]


def _newest(recent: list[tuple[int, str, LiveOrder]]) -> list[LiveOrder]:
    """The RECENT_ORDERS newest orders, oldest first (ties broken by message_id, deterministically)."""
    return [order for *_, order in sorted(heapq.nlargest(RECENT_ORDERS, recent, key=_newest_first),
                                          key=_newest_first)]


def recent_entry(order: LiveOrder) -> tuple[int, str]:
    """The ticker entry: deterministic JSON, so a replay writes the identical member."""
    body = {
        "message_id": order.message_id,
        "store_id": order.store_id,
        "placed_at": datetime.fromtimestamp(order.placed_at_ms / 1000, UTC).isoformat().replace("+00:00", "Z"),
        "channel": order.channel,
        "total_cents": order.total_cents,
        "items": [[name, qty] for _, name, _, qty, _ in order.lines],
    }
    return order.placed_at_ms, json.dumps(body, separators=(",", ":"), sort_keys=True)


def apply(state: MetricsState, order: LiveOrder, tz: str) -> bool:
    """Count ``order`` into the state. Returns False when it belongs to an earlier business day
    (history in Postgres has it; the live view shows today only)."""
    day = business_day(order.placed_at_ms, tz)
    summary = state.get_summary()
    pending = state.get_pending() or Pending()
    if summary is None or day > summary.day:
        state.clear()
        summary = Summary(day=day)
        pending = Pending(new_day=True)
    elif day < summary.day:
        return False
    summary.orders += 1
    summary.revenue_cents += order.total_cents
    summary.quantity += order.quantity
    summary.last_order_ms = max(summary.last_order_ms, order.placed_at_ms)
    pending.summary = True
    for sku, name, origin, quantity, cents in order.lines:
        old_qty, old_cents = state.get_product(sku)
        state.put_product(sku, old_qty + quantity, old_cents + cents)
        pending.skus.add(sku)
        pending.names[sku] = name
        if origin:
            state.put_origin(origin, state.get_origin(origin) + quantity)
            pending.origins.add(origin)
    minute = order.placed_at_ms // 60_000
    state.put_minute(minute, state.get_minute(minute) + 1)
    pending.minutes.add(minute)
    pending.recent.append((order.placed_at_ms, order.message_id, order))
    if len(pending.recent) > 4 * RECENT_ORDERS:  # a long gap between flushes: keep what can matter
        pending.recent = heapq.nlargest(RECENT_ORDERS, pending.recent, key=_newest_first)
    state.set_summary(summary)
    state.set_pending(pending)
    return True


def collect(state: MetricsState, store: str, tz: str) -> Flush | None:
    """The absolute values of what changed. The caller clears the pending marks
    (``state.set_pending(None)``) once Redis has them, so a failed write is retried."""
    pending, summary = state.get_pending(), state.get_summary()
    if pending is None or summary is None:
        return None
    newest = summary.last_order_ms // 60_000
    stale = [m for m in state.minute_keys() if m <= newest - MINUTES_KEPT]
    for minute in stale:
        state.remove_minute(minute)
    result = Flush(
        store=store,
        day=summary.day,
        expire_at=day_end_epoch(summary.day, tz),
        summary=Summary(**vars(summary)),
        products={sku: state.get_product(sku) for sku in sorted(pending.skus)},
        names=dict(pending.names),
        origins={o: state.get_origin(o) for o in sorted(pending.origins)},
        minutes={m: state.get_minute(m) for m in sorted(pending.minutes) if m > newest - MINUTES_KEPT},
        stale_minutes=stale,
        recent=[recent_entry(order) for order in _newest(pending.recent)],
        new_day=pending.new_day,
    )
    return result


def count_orders(orders: Iterable[LiveOrder], load: Callable[[str], DictState],
                 tz_of: Callable[[str], str]) -> tuple[dict[str, DictState], int]:
    """Count a batch of orders into their store's state and the all-stores state, loading each
    key's state once. Returns the touched states and how many orders were before their store's
    business day (not counted)."""
    states: dict[str, DictState] = {}
    late = 0
    for order in orders:
        for key in (order.store_id, ALL_STORES):
            state = states.get(key)
            if state is None:
                state = states[key] = load(key)
            if not apply(state, order, tz_of(key)) and key != ALL_STORES:
                late += 1
    return states, late


class DictState:
    """The in-memory MetricsState: the job keeps one per key (pickled in Flink state); tests use it too."""

    def __init__(self) -> None:
        self.summary: Summary | None = None
        self.pending: Pending | None = None
        self.products: dict[str, tuple[int, int]] = {}
        self.origins: dict[str, int] = {}
        self.minutes: dict[int, int] = {}

    def get_summary(self) -> Summary | None:
        return self.summary

    def set_summary(self, summary: Summary) -> None:
        self.summary = summary

    def get_pending(self) -> Pending | None:
        return self.pending

    def set_pending(self, pending: Pending | None) -> None:
        self.pending = pending

    def get_product(self, sku: str) -> tuple[int, int]:
        return self.products.get(sku, (0, 0))

    def put_product(self, sku: str, quantity: int, revenue_cents: int) -> None:
        self.products[sku] = (quantity, revenue_cents)

    def get_origin(self, origin: str) -> int:
        return self.origins.get(origin, 0)

    def put_origin(self, origin: str, quantity: int) -> None:
        self.origins[origin] = quantity

    def get_minute(self, minute: int) -> int:
        return self.minutes.get(minute, 0)

    def put_minute(self, minute: int, orders: int) -> None:
        self.minutes[minute] = orders

    def remove_minute(self, minute: int) -> None:
        self.minutes.pop(minute, None)

    def minute_keys(self) -> list[int]:
        return list(self.minutes)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]
