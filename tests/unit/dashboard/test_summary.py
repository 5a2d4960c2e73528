"""Raw Redis hashes -> the summary the page shows."""

from __future__ import annotations

import json

from coffee_dashboard.summary import RawLive, build, choose_day, minute_series

MINUTE = 60_000


def test_choose_day() -> None:
    assert choose_day("2025-03-08", None) == "2025-03-08"
    assert choose_day("2025-03-08", "2025-03-07") == "2025-03-08"  # nothing counted today yet: zeros, not yesterday
    assert choose_day("2025-03-08", "2025-03-09") == "2025-03-09"  # the job's zone is ahead: follow it


def test_minute_series_fills_zeros_and_ends_now() -> None:
    now = 1000 * MINUTE + 30_000
    series = minute_series({"1000": "2", "941": "5", "940": "9", "junk": "x"}, now)
    assert len(series) == 60
    assert series[0] == [941 * MINUTE, 5] and series[-1] == [1000 * MINUTE, 2]
    assert sum(n for _, n in series) == 7


def test_minute_series_shows_a_till_slightly_ahead() -> None:
    series = minute_series({"1002": "1"}, 1000 * MINUTE)
    assert series[-1] == [1002 * MINUTE, 1] and len(series) == 60


def test_build() -> None:
    order = {"message_id": "m1", "store_id": "store-01", "placed_at": "2025-03-08T09:00:00Z", "channel": "counter",
             "total_cents": 780, "items": [["Flat white", 2]]}
    raw = RawLive(
        summary={"orders": "3", "revenue_cents": "1000", "quantity": "5", "last_order_at": "1741424400000",
                 "updated_at": "1741424400100"},
        products={"A": "2", "B": "2", "C": "1"},
        product_revenue={"A": "100", "B": "700", "C": "200"},
        origins={"Guatemala Honey": "3", "Natural Ethiopia": "1"},
        per_minute={},
        recent=[json.dumps(order), "not json"],
    )
    s = build("store-01", "UTC", "EUR", "2025-03-08", "2025-03-08", raw, {"A": "Espresso"}, 1741424460000, 2, 10)
    assert (s["orders"], s["revenue_cents"], s["quantity"], s["average_order_cents"]) == (3, 1000, 5, 333)
    assert s["top_products"] == [{"sku": "B", "name": "B", "quantity": 2, "revenue_cents": 700},
                                 {"sku": "A", "name": "Espresso", "quantity": 2, "revenue_cents": 100}]
    assert s["origins"] == [{"origin": "Guatemala Honey", "quantity": 3, "share": 0.75},
                            {"origin": "Natural Ethiopia", "quantity": 1, "share": 0.25}]
    assert s["recent"] == [order]
    assert (s["last_order_at"], s["updated_at_ms"]) == ("2025-03-08T09:00:00.000Z", 1741424400100)


def test_build_empty_day() -> None:
    s = build("_all", "UTC", "EUR", "2025-03-08", "2025-03-08", RawLive(), {}, 0, 5, 5)
    assert (s["orders"], s["average_order_cents"], s["last_order_at"], s["top_products"], s["recent"]) == \
        (0, 0, None, [], [])
