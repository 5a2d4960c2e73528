"""Kafka record -> the rows the job's sinks need, or a dead-letter reason, by the one order schema.

This is the reference the job's Java ``parse_order`` (jobs/functions) is held to by
tests/unit/job/test_parse_conformance.py: validation with ``coffee_orders.schema`` but without the
``placed_at`` window (an order accepted at ingest must not turn invalid while it waits in Kafka).
The live metrics read :attr:`OrderRow.items_json` lines through :func:`lines_for_live`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from coffee_orders.schema import Order, from_wire

MAX_REASON = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class OrderRow:
    message_id: str
    store_id: str
    placed_at_ms: int
    channel: str
    currency: str
    total_cents: int
    item_count: int
    quantity: int
    # Every line, compact: [[line_no, sku, name, category, origin, quantity, unit_price_cents,
    # first_of_sku], ...]. The live metrics read it; SQL unnests the same lines, typed, into
    # order_items rows after the one dedup. first_of_sku (1 on the first line of each SKU in the order, else 0) lets
    # the per-minute rollup count orders per SKU with a SUM instead of a COUNT(DISTINCT message_id),
    # whose per-group set of ids was the job's most expensive state.
    items_json: str
    kafka_partition: int
    kafka_offset: int


@dataclass(frozen=True)
class ItemRow:
    message_id: str
    line_no: int
    store_id: str
    placed_at_ms: int
    sku: str
    name: str
    category: str
    origin: str | None
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class DeadLetter:
    raw: bytes
    kafka_partition: int
    kafka_offset: int
    reason: str


def describe(exc: ValidationError) -> str:
    """The first few problems, each naming its field, e.g. 'items.0.quantity: Input should be ...'."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:MAX_REASON]


def parse(raw: bytes | None, partition: int, offset: int) -> tuple[OrderRow, list[ItemRow]] | DeadLetter:
    if raw is None:
        return DeadLetter(b"", partition, offset, "record has no value (a tombstone)")
    try:
        order = from_wire(raw)
    except ValidationError as exc:
        return DeadLetter(raw, partition, offset, describe(exc))
    except (ValueError, UnicodeDecodeError) as exc:  # not JSON at all
        return DeadLetter(raw, partition, offset, f"not an order: {exc}"[:MAX_REASON])
    return to_rows(order, partition, offset)


def live_lines(items_json: str) -> list[tuple[str, str, str | None, int, int]]:
    """The live metrics' view of :attr:`OrderRow.items_json`: (sku, name, origin, quantity, line cents)."""
    return lines_for_live(json.loads(items_json))


def lines_for_live(lines: list[list[Any]]) -> list[tuple[str, str, str | None, int, int]]:
    """:func:`live_lines` of lines already decoded (the job's live query embeds them as JSON)."""
    return [(line[1], line[2], line[4], line[5], line[5] * line[6]) for line in lines]


def to_rows(order: Order, partition: int, offset: int) -> tuple[OrderRow, list[ItemRow]]:
    # Integer arithmetic: float seconds * 1000 can land just below a whole millisecond.
    placed_ms = (order.placed_at - EPOCH) // timedelta(milliseconds=1)
    message_id = str(order.message_id)
    items = [
        ItemRow(message_id, n, order.store_id, placed_ms, i.sku, i.name, i.category, i.origin,
                i.quantity, i.unit_price_cents)
        for n, i in enumerate(order.items, start=1)
    ]
    seen: set[str] = set()
    lines = []
    for n, i in enumerate(order.items, start=1):
        lines.append([n, i.sku, i.name, i.category, i.origin, i.quantity, i.unit_price_cents, int(i.sku not in seen)])
        seen.add(i.sku)
    row = OrderRow(
        message_id=message_id,
        store_id=order.store_id,
        placed_at_ms=placed_ms,
        channel=order.channel,
        currency=order.currency,
        total_cents=order.total_cents,
        item_count=len(order.items),
        quantity=sum(i.quantity for i in order.items),
        items_json=json.dumps(lines, separators=(",", ":")),
        kafka_partition=partition,
        kafka_offset=offset,
    )
    return row, items
