"""The ledger's pure logic: business days as the job assigns them, the tally, the comparison."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from coffee_ledger.compare import ZERO, Count, compare
from coffee_ledger.days import business_day, parse_day
from coffee_ledger.tally import HOUR_MS, Tally

from coffee_job import live_metrics
from coffee_live.days import business_day as live_business_day
from coffee_live.days import day_bounds
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import to_wire

ZONES = ["UTC", "Europe/Amsterdam", "Europe/London", "America/New_York", "Asia/Kathmandu", "Etc/GMT-14",
         "Pacific/Chatham", "Australia/Lord_Howe"]
DAY_MS = 86_400_000


def test_business_day_is_the_jobs() -> None:
    """One rule (coffee_live.days), imported by the job and the audit alike."""
    assert business_day is live_business_day is live_metrics.business_day


def test_an_order_lies_within_the_bounds_of_its_business_day() -> None:
    rng = random.Random(3)
    # around every midnight and DST change of two years, and random instants
    samples = [rng.randrange(1_700_000_000_000, 1_800_000_000_000) for _ in range(3000)]
    samples += [base + d for base in range(1_735_689_600_000, 1_798_761_600_000, 3_600_000)
                for d in (-60_001, -1, 0, 1)][::7]
    for ms in samples:
        for zone in ZONES:
            start, end = day_bounds(business_day(ms, zone), zone)
            assert start.timestamp() * 1000 <= ms < end.timestamp() * 1000, (ms, zone)


@pytest.mark.parametrize("text", ["2026-13-01", "yesterday", "2026-1-5", "", "2026-02-30"])
def test_parse_day_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a day"):
        parse_day(text)


def _tz(key: str) -> str:
    return {"store-01": "Europe/Amsterdam"}.get(key, "UTC")


def _order(placed: datetime, store: int = 0):  # type: ignore[no-untyped-def]
    return random_order(random.Random(), DEFAULT_STORES[store], placed)


def test_counts_distinct_valid_orders_by_store_day_and_all() -> None:
    tally = Tally(dedup_ttl_ms=36 * HOUR_MS)
    # 23:30 UTC on the 4th is the 5th in Amsterdam (store-01) but the 4th for _all (UTC)
    late = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    a, b = _order(late, 0), _order(late + timedelta(hours=1), 1)
    now_ms = int(late.timestamp() * 1000)
    outcomes = [
        tally.add(0, 0, now_ms, to_wire(a), _tz),
        tally.add(1, 0, now_ms, to_wire(b), _tz),
        tally.add(2, 0, now_ms + 5, to_wire(a), _tz),  # the same message_id again, other partition
        tally.add(0, 1, now_ms, b"not json", _tz),
        tally.add(0, 2, now_ms, None, _tz),
        tally.add(0, 3, now_ms, b'{"message_id": "' + str(uuid.uuid4()).encode() + b'"}', _tz),
    ]
    assert outcomes == ["counted", "counted", "duplicate", "invalid", "invalid", "invalid"]
    assert tally.totals == {
        ("store-01", "2026-03-05"): [1, a.total_cents],
        ("store-02", "2026-03-05"): [1, b.total_cents],
        ("_all", "2026-03-04"): [1, a.total_cents],
        ("_all", "2026-03-05"): [1, b.total_cents],
    }
    assert tally.positions == {0: 4, 1: 1, 2: 1}
    assert tally.counts == {"counted": 2, "duplicate": 1, "invalid": 3}
    assert Tally.from_json(tally.to_json()) == tally


def test_dedup_memory_is_the_jobs_window_and_bounded() -> None:
    tally = Tally(dedup_ttl_ms=36 * HOUR_MS)
    start = 1_772_000_000_000
    first = _order(datetime.fromtimestamp(start / 1000, UTC))
    assert tally.add(0, 0, start, to_wire(first), _tz) == "counted"
    # 35 hours later the job still knows it: a resend does not count
    assert tally.add(0, 1, start + 35 * HOUR_MS, to_wire(first), _tz) == "duplicate"
    # one order an hour for 10 days: memory holds at most the window's hours, not all of them
    for h in range(240):
        order = _order(datetime.fromtimestamp(start / 1000, UTC) + timedelta(hours=h, minutes=1))
        tally.add(1, h, start + h * HOUR_MS + 60_000, to_wire(order), _tz)
        assert tally.remembered() <= 38
    assert len(tally.buckets) <= 38
    assert tally.counts["counted"] == 241


def test_gap_marks_earlier_days_incomplete() -> None:
    tally = Tally(dedup_ttl_ms=36 * HOUR_MS)
    tally.mark_gap(int(datetime(2026, 3, 5, 12, tzinfo=UTC).timestamp() * 1000))
    assert not tally.complete("2026-03-05", "UTC")
    assert tally.complete("2026-03-06", "UTC")


def test_compare_rows_and_differences() -> None:
    topic = {("s1", "d"): Count(3, 900), ("_all", "d"): Count(3, 900)}
    pg = {("s1", "d"): Count(2, 600), ("_all", "d"): Count(2, 600)}
    live = {("s1", "d"): Count(3, 905)}
    rows = compare([("s1", "d"), ("_all", "d")], topic, pg, live)
    by_key = {(r.store, r.day): r for r in rows}
    assert by_key[("s1", "d")].difference("postgres") == Count(-1, -300)
    assert by_key[("s1", "d")].difference("redis") == Count(0, 5)
    assert by_key[("_all", "d")].difference("redis") is None  # not audited there
    assert not any(r.agrees for r in rows)
    same = compare([("s1", "d")], topic, topic, topic)
    assert same[0].agrees and same[0].difference("postgres") == ZERO


def test_reset_forgets_everything_but_the_settings() -> None:
    tally = Tally(dedup_ttl_ms=36 * HOUR_MS, topic="orders")
    order = _order(datetime(2026, 3, 5, 12, tzinfo=UTC))
    tally.add(0, 41, 1_772_712_000_000, to_wire(order), _tz)
    tally.reset()
    assert tally == Tally(dedup_ttl_ms=36 * HOUR_MS, topic="orders")
    assert tally.add(0, 0, 1_772_712_000_000, to_wire(order), _tz) == "counted"
