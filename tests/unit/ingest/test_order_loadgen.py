"""The load generator: reproducible, valid, and shaped like a roaster's week."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from coffee_orders.loadgen import (
    CATALOG,
    DEFAULT_STORES,
    GUATEMALA_HONEY,
    NATURAL_ETHIOPIA,
    generate_day,
    iter_days,
    random_order,
    with_duplicates,
)
from coffee_orders.schema import Window, from_wire, parse_order, to_wire

MONDAY = date(2025, 3, 3)
SATURDAY = date(2025, 3, 8)


@pytest.fixture(scope="module")
def week() -> list:  # type: ignore[type-arg]
    return list(iter_days(MONDAY, 7, seed=0))


def test_same_seed_same_orders_other_seed_other_orders() -> None:
    assert generate_day(MONDAY, seed=1) == generate_day(MONDAY, seed=1)
    assert generate_day(MONDAY, seed=1) != generate_day(MONDAY, seed=2)


def test_a_store_day_does_not_depend_on_the_other_stores() -> None:
    alone = generate_day(MONDAY, DEFAULT_STORES[1:2], seed=3)
    together = [o for o in generate_day(MONDAY, DEFAULT_STORES, seed=3) if o.store_id == DEFAULT_STORES[1].store_id]
    assert alone == together


def test_every_order_is_valid_and_survives_the_wire(week: list) -> None:  # type: ignore[type-arg]
    for order in week[:2000]:
        assert from_wire(to_wire(order)) == order
        assert order.total_cents == sum(i.quantity * i.unit_price_cents for i in order.items)
    assert len({o.message_id for o in week}) == len(week)


def test_orders_are_sorted_and_on_their_local_day(week: list) -> None:  # type: ignore[type-arg]
    assert [o.placed_at for o in week] == sorted(o.placed_at for o in week)
    assert {o.placed_at.date() for o in week} == {MONDAY + timedelta(days=n) for n in range(7)}


def test_guatemala_honey_outsells_natural_ethiopia_about_three_to_one(week: list) -> None:  # type: ignore[type-arg]
    units: Counter[str | None] = Counter()
    for order in week:
        for item in order.items:
            units[item.origin] += item.quantity
    ratio = units[GUATEMALA_HONEY] / units[NATURAL_ETHIOPIA]
    assert 2.7 <= ratio <= 3.3, ratio


def test_saturday_morning_is_the_rush_hour_of_the_week(week: list) -> None:  # type: ignore[type-arg]
    per_hour = Counter((o.placed_at.weekday(), o.placed_at.hour) for o in week)
    (weekday, hour), _ = per_hour.most_common(1)[0]
    assert weekday == 5 and 9 <= hour <= 11
    saturday = Counter(o.placed_at.hour for o in week if o.placed_at.weekday() == 5)
    assert saturday[10] > 2 * saturday[15]
    assert min(o.placed_at.hour for o in week) == 7  # weekday opening
    assert max(o.placed_at.hour for o in week) == 18


def test_channels_and_categories(week: list) -> None:  # type: ignore[type-arg]
    channels = Counter(o.channel for o in week)
    assert set(channels) == {"counter", "app", "market", "wholesale"}
    assert channels["counter"] > channels["app"] > channels["market"] > channels["wholesale"]
    market_days = {o.placed_at.weekday() for o in week if o.channel == "market"}
    assert market_days == {5}
    assert {i.category for o in week for i in o.items} == {"drink", "beans", "food", "merch"}
    wholesale = [o for o in week if o.channel == "wholesale"]
    assert all(i.category == "beans" and i.sku.endswith("-1000") for o in wholesale for i in o.items)


def test_saturday_volume_is_the_highest_of_the_week() -> None:
    per_day = {d: len(generate_day(d, seed=0)) for d in (MONDAY + timedelta(days=n) for n in range(7))}
    assert max(per_day, key=lambda d: per_day[d]) == SATURDAY
    assert 1000 <= per_day[MONDAY] <= 1600


def test_placed_at_carries_the_store_offset() -> None:
    orders = generate_day(date(2025, 7, 7))  # summer time
    offsets = {o.store_id: o.placed_at.utcoffset() for o in orders}
    assert offsets == {"store-01": timedelta(hours=2), "store-02": timedelta(hours=2),
                       "store-03": timedelta(hours=2), "store-04": timedelta(hours=1)}
    assert {o.currency for o in orders if o.store_id == "store-04"} == {"GBP"}


def test_random_order_for_now_passes_the_ingest_window() -> None:
    now = datetime.now(UTC)
    order = random_order(random.Random(5), DEFAULT_STORES[0], now)
    assert parse_order(to_wire(order), Window(now)) == order
    with pytest.raises(ValueError, match="timezone-aware"):
        random_order(random.Random(5), DEFAULT_STORES[0], datetime(2025, 1, 1))


def test_catalog_skus_are_unique() -> None:
    assert len({p.sku for p in CATALOG}) == len(CATALOG)
    origins = {p.origin for p in CATALOG if p.category == "beans"}
    assert origins == {"Guatemala Honey", "Natural Ethiopia", "Colombia Washed"}


def test_with_duplicates_resends_later_with_the_same_content() -> None:
    orders = generate_day(MONDAY, DEFAULT_STORES[:1], seed=0)
    mixed = with_duplicates(orders, 0.1, seed=4)
    extra = len(mixed) - len(orders)
    assert 0.05 * len(orders) < extra < 0.15 * len(orders)
    assert {o.message_id for o in mixed} == {o.message_id for o in orders}
    first_seen: dict[object, int] = {}
    for position, order in enumerate(mixed):
        if order.message_id in first_seen:
            assert mixed[first_seen[order.message_id]] == order
        else:
            first_seen[order.message_id] = position
    assert [o for i, o in enumerate(mixed) if first_seen[o.message_id] == i] == orders  # originals keep their order
    assert with_duplicates(orders, 0.1, seed=4) == mixed
    assert with_duplicates(orders, 0.0) == orders
    with pytest.raises(ValueError, match="between 0 and 1"):
        with_duplicates(orders, 1.5)
