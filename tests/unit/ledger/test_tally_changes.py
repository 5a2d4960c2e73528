"""What a tally notes as changed between saves (``take_changes``): exactly what a store must write."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from coffee_ledger.tally import HOUR_MS, Changes, Tally

from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import to_wire

START = datetime(2026, 3, 5, 12, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
HOUR = START_MS // HOUR_MS


def _utc(_: str) -> str:
    return "UTC"


def _wire(store: int, placed: datetime) -> tuple[bytes, int]:
    order = random_order(random.Random(store), DEFAULT_STORES[store], placed)
    return to_wire(order), order.message_id.int


def test_changes_are_what_moved_since_the_last_take() -> None:
    tally = Tally(dedup_ttl_ms=36 * HOUR_MS)
    assert tally.take_changes() == Changes()
    a, a_id = _wire(0, START)
    b, b_id = _wire(1, START)
    tally.add(0, 0, START_MS, a, _utc)
    tally.add(0, 1, START_MS + 1, a, _utc)  # a duplicate changes nothing but the position and counts
    tally.add(1, 0, START_MS + 2, b"poison", _utc)
    tally.add(1, 1, START_MS + HOUR_MS, b, _utc)
    assert tally.take_changes() == Changes(
        remembered={HOUR: [a_id], HOUR + 1: [b_id]},
        totals={("store-01", "2026-03-05"), ("store-02", "2026-03-05"), ("_all", "2026-03-05")})
    assert tally.take_changes() == Changes()


def test_forgotten_hours_are_noted_and_never_written() -> None:
    tally = Tally(dedup_ttl_ms=36 * HOUR_MS)
    first, first_id = _wire(0, START)
    tally.add(0, 0, START_MS, first, _utc)
    saved = tally.take_changes()
    assert saved.remembered == {HOUR: [first_id]}
    # an order that arrives 40 h later: the first hour leaves the dedup window; an hour added and
    # forgotten between two saves is never written
    tally.add(0, 1, START_MS + HOUR_MS, _wire(1, START)[0], _utc)
    late, late_id = _wire(2, START + timedelta(hours=40))
    tally.add(0, 2, START_MS + 40 * HOUR_MS, late, _utc)
    changes = tally.take_changes()
    assert changes.dropped_hours == {HOUR, HOUR + 1}
    assert changes.remembered == {HOUR + 40: [late_id]}
    assert set(tally.buckets) == {HOUR + 40}


def test_a_reset_voids_what_was_saved() -> None:
    tally = Tally(dedup_ttl_ms=36 * HOUR_MS)
    tally.add(0, 7, START_MS, _wire(0, START)[0], _utc)
    tally.take_changes()
    tally.reset()
    again, again_id = _wire(1, START)
    tally.add(0, 0, START_MS, again, _utc)
    assert tally.take_changes() == Changes(
        cleared=True, remembered={HOUR: [again_id]}, totals={("store-02", "2026-03-05"), ("_all", "2026-03-05")})
