"""UTC hour rows -> a store's local hours and days, across DST changes and half-hour zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from coffee_dashboard.history import bucket_days, bucket_hours, day_span

AMS = ZoneInfo("Europe/Amsterdam")


def _hours(start: datetime, count: int) -> list[tuple[datetime, int, int, int]]:
    return [(start + timedelta(hours=n), 1, 100 * (n + 1), 2) for n in range(count)]


def test_day_span_is_the_local_day_in_utc() -> None:
    assert day_span(date(2025, 3, 8), AMS) == (datetime(2025, 3, 7, 23, tzinfo=UTC),
                                               datetime(2025, 3, 8, 23, tzinfo=UTC))


def test_normal_day_maps_utc_hours_to_local() -> None:
    start, _ = day_span(date(2025, 3, 8), AMS)
    rows = _hours(start - timedelta(hours=2), 28)  # two hours either side fall on other days
    hours = bucket_hours(rows, date(2025, 3, 8), AMS)
    assert [h["orders"] for h in hours] == [1] * 24
    # 23:00 UTC the day before is 00 local
    assert hours[0]["revenue_cents"] == 300 and hours[23]["revenue_cents"] == 2600


def test_autumn_day_has_25_hours_and_the_repeated_hour_gets_both() -> None:
    start, end = day_span(date(2025, 10, 26), AMS)
    assert (end - start) == timedelta(hours=25)
    hours = bucket_hours(_hours(start, 25), date(2025, 10, 26), AMS)
    assert [h["orders"] for h in hours] == [1, 1, 2] + [1] * 21
    assert sum(h["orders"] for h in hours) == 25


def test_spring_day_has_23_hours_and_the_skipped_hour_is_empty() -> None:
    start, end = day_span(date(2025, 3, 30), AMS)
    assert (end - start) == timedelta(hours=23)
    hours = bucket_hours(_hours(start, 23), date(2025, 3, 30), AMS)
    assert [h["orders"] for h in hours] == [1, 1, 0] + [1] * 21


def test_half_hour_zone_counts_each_utc_hour_once() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    start, _ = day_span(date(2025, 3, 8), zone)
    assert start == datetime(2025, 3, 7, 18, tzinfo=UTC)  # local midnight is 18:30 UTC: widened to the hour
    rows = _hours(start, 25)
    hours = bucket_hours(rows, date(2025, 3, 8), zone)
    # 18:00 UTC is 23:30 on the 7th: not this day; the rest, one per local hour.
    assert [h["orders"] for h in hours] == [1] * 24


def test_days() -> None:
    start, _ = day_span(date(2025, 3, 29), AMS)
    days = bucket_days(_hours(start, 47), date(2025, 3, 29), date(2025, 3, 31), AMS)
    assert [(d["day"], d["orders"]) for d in days] == [("2025-03-29", 24), ("2025-03-30", 23), ("2025-03-31", 0)]
