"""Realistic, reproducible days of orders for tests, the demo and the benchmarks.

Deterministic: the same (day, store, seed) always gives the same orders, and each store-day has
its own random stream, so adding a store does not change the others. What it models:

* an hour-of-day curve per weekday type (a weekday commuter peak at 8, lunch at 12, and a
  Saturday-morning rush 9-11 that is the busiest hour of the week);
* channels: the counter, the app (pickup + beans), a Saturday market stall for stores that run
  one, and a few wholesale bean orders on weekdays;
* a product mix where Guatemala Honey outsells Natural Ethiopia about 3:1 in units.

Public API: :data:`DEFAULT_STORES`, :data:`CATALOG`, :func:`generate_day`, :func:`iter_days`,
:func:`random_order`, :func:`with_duplicates`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from coffee_orders.schema import Category, Channel, Order, OrderItem


@dataclass(frozen=True)
class Store:
    store_id: str
    timezone: str  # IANA name; placed_at carries the store's local offset
    currency: str = "EUR"
    size: float = 1.0  # scales the daily volume
    market_stall: bool = False  # sells at the Saturday farmers' market


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: Category
    unit_price_cents: int
    origin: str | None = None


GUATEMALA_HONEY = "Guatemala Honey"
NATURAL_ETHIOPIA = "Natural Ethiopia"
COLOMBIA_WASHED = "Colombia Washed"
HOUSE_ESPRESSO = "House Espresso"

DEFAULT_STORES: tuple[Store, ...] = (
    Store("store-01", "Europe/Amsterdam", size=1.0, market_stall=True),
    Store("store-02", "Europe/Amsterdam", size=0.7),
    Store("store-03", "Europe/Berlin", size=0.5),
    Store("store-04", "Europe/London", currency="GBP", size=0.8, market_stall=True),
)

# Single origins people choose between, with their relative popularity (3:1 Honey over Natural).
_ORIGIN_WEIGHTS: dict[str, int] = {GUATEMALA_HONEY: 6, NATURAL_ETHIOPIA: 2, COLOMBIA_WASHED: 3}
# Independent inclusion chances keep the 3:1 ratio exact in expectation for wholesale too.
_WHOLESALE_CHANCE = {GUATEMALA_HONEY: 0.9, NATURAL_ETHIOPIA: 0.3, COLOMBIA_WASHED: 0.45}
_ORIGIN_CODE = {GUATEMALA_HONEY: "GH", NATURAL_ETHIOPIA: "NE", COLOMBIA_WASHED: "CO"}
_FILTER_PRICE = {GUATEMALA_HONEY: 420, NATURAL_ETHIOPIA: 480, COLOMBIA_WASHED: 400}
_BAG_250_PRICE = {GUATEMALA_HONEY: 1450, NATURAL_ETHIOPIA: 1650, COLOMBIA_WASHED: 1350}
_BAG_1000_PRICE = {GUATEMALA_HONEY: 4600, NATURAL_ETHIOPIA: 5400, COLOMBIA_WASHED: 4200}

# Espresso drinks (weight, product): the house espresso is a blend, so its origin is the blend.
_ESPRESSO_DRINKS: tuple[tuple[int, Product], ...] = (
    (10, Product("DRK-FLATWHITE", "Flat white", "drink", 390, HOUSE_ESPRESSO)),
    (9, Product("DRK-CAPPUCCINO", "Cappuccino", "drink", 370, HOUSE_ESPRESSO)),
    (8, Product("DRK-LATTE", "Caffè latte", "drink", 380, HOUSE_ESPRESSO)),
    (6, Product("DRK-ESPRESSO", "Espresso", "drink", 260, HOUSE_ESPRESSO)),
    (3, Product("DRK-CORTADO", "Cortado", "drink", 340, HOUSE_ESPRESSO)),
)
_OTHER_DRINKS: tuple[tuple[int, Product], ...] = (
    (3, Product("DRK-CHAI", "Chai latte", "drink", 390)),
    (2, Product("DRK-TEA", "Loose-leaf tea", "drink", 300)),
    (2, Product("DRK-HOTCHOC", "Hot chocolate", "drink", 380)),
)
_FOOD: tuple[tuple[int, Product], ...] = (
    (6, Product("FD-CROISSANT", "Butter croissant", "food", 290)),
    (4, Product("FD-BANANABREAD", "Banana bread", "food", 350)),
    (3, Product("FD-CINNAMONBUN", "Cinnamon bun", "food", 380)),
    (2, Product("FD-SANDWICH", "Cheese toastie", "food", 650)),
)
_MERCH: tuple[tuple[int, Product], ...] = (
    (3, Product("MR-KEEPCUP", "Reusable cup", "merch", 1800)),
    (2, Product("MR-MUG", "Stoneware mug", "merch", 2200)),
    (1, Product("MR-TOTE", "Tote bag", "merch", 1500)),
)


def _filter(origin: str) -> Product:
    return Product(f"DRK-FILTER-{_ORIGIN_CODE[origin]}", f"Filter {origin}", "drink", _FILTER_PRICE[origin], origin)


def _bag(origin: str, grams: int) -> Product:
    price = (_BAG_250_PRICE if grams == 250 else _BAG_1000_PRICE)[origin]
    return Product(f"BN-{_ORIGIN_CODE[origin]}-{grams}", f"{origin} beans {grams} g", "beans", price, origin)


CATALOG: tuple[Product, ...] = (
    *(p for _, p in _ESPRESSO_DRINKS + _OTHER_DRINKS + _FOOD + _MERCH),
    *(_filter(o) for o in _ORIGIN_WEIGHTS),
    *(_bag(o, g) for o in _ORIGIN_WEIGHTS for g in (250, 1000)),
)

# Share of the day's orders per local hour (weights; missing hours are closed).
_WEEKDAY_CURVE = {7: 9, 8: 16, 9: 12, 10: 9, 11: 8, 12: 11, 13: 10, 14: 7, 15: 7, 16: 6, 17: 5, 18: 3}
_SATURDAY_CURVE = {8: 8, 9: 20, 10: 24, 11: 18, 12: 12, 13: 10, 14: 8, 15: 7, 16: 5, 17: 3}
_SUNDAY_CURVE = {9: 7, 10: 12, 11: 13, 12: 11, 13: 10, 14: 9, 15: 8, 16: 5}
_ORDERS_PER_DAY = {"weekday": 420, "saturday": 620, "sunday": 330}  # at size 1.0, counter + app


def _day_type(day: date) -> str:
    return {5: "saturday", 6: "sunday"}.get(day.weekday(), "weekday")


def _pick(rng: random.Random, weighted: Sequence[tuple[int, Product]]) -> Product:
    return rng.choices([p for _, p in weighted], weights=[w for w, _ in weighted])[0]


def _origin(rng: random.Random) -> str:
    return rng.choices(list(_ORIGIN_WEIGHTS), weights=list(_ORIGIN_WEIGHTS.values()))[0]


def _lines(rng: random.Random, channel: Channel) -> list[tuple[Product, int]]:
    """The products and quantities of one order, by channel."""
    lines: list[tuple[Product, int]] = []
    if channel == "wholesale":  # a café or office restocking 1 kg bags; each origin in proportion
        while not lines:
            lines = [(_bag(origin, 1000), rng.randint(2, 12))
                     for origin, chance in _WHOLESALE_CHANCE.items() if rng.random() < chance]
        return lines
    if channel == "market":  # mostly bags to take home, sometimes a filter to drink there
        lines.append((_bag(_origin(rng), 250), rng.choices([1, 2, 3], weights=[7, 2, 1])[0]))
        if rng.random() < 0.3:
            lines.append((_filter(_origin(rng)), 1))
        return lines
    drinks = rng.choices([1, 2, 3, 4], weights=[55, 28, 11, 6])[0]
    for _ in range(drinks):
        roll = rng.random()
        if roll < 0.70:
            product = _pick(rng, _ESPRESSO_DRINKS)
        elif roll < 0.88:
            product = _filter(_origin(rng))
        else:
            product = _pick(rng, _OTHER_DRINKS)
        lines.append((product, 1))
    if rng.random() < (0.35 if channel == "counter" else 0.2):
        lines.append((_pick(rng, _FOOD), rng.choices([1, 2], weights=[4, 1])[0]))
    if rng.random() < (0.08 if channel == "counter" else 0.25):
        lines.append((_bag(_origin(rng), 250), 1))
    if rng.random() < 0.02:
        lines.append((_pick(rng, _MERCH), 1))
    # The same product twice becomes one line with a higher quantity, as a till does.
    merged: dict[Product, int] = {}
    for product, quantity in lines:
        merged[product] = merged.get(product, 0) + quantity
    return list(merged.items())


def random_order(rng: random.Random, store: Store, placed_at: datetime, channel: Channel = "counter") -> Order:
    """One realistic order of ``store`` at ``placed_at`` (aware); its message_id comes from ``rng``."""
    items = [
        OrderItem(sku=p.sku, name=p.name, category=p.category, origin=p.origin,
                  quantity=q, unit_price_cents=p.unit_price_cents)
        for p, q in _lines(rng, channel)
    ]
    offset = placed_at.utcoffset()
    if offset is None:
        raise ValueError("placed_at must be timezone-aware")
    return Order(
        message_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        store_id=store.store_id,
        # A fixed offset, so the order equals itself after a JSON round trip.
        placed_at=placed_at.astimezone(timezone(offset)),
        channel=channel,
        currency=store.currency,
        items=items,
        total_cents=sum(i.quantity * i.unit_price_cents for i in items),
    )


def _store_day(day: date, store: Store, seed: int) -> list[Order]:
    rng = random.Random(f"coffee-rt:{seed}:{day.isoformat()}:{store.store_id}")
    tz = ZoneInfo(store.timezone)
    kind = _day_type(day)
    curve = {"weekday": _WEEKDAY_CURVE, "saturday": _SATURDAY_CURVE, "sunday": _SUNDAY_CURVE}[kind]
    expected = _ORDERS_PER_DAY[kind] * store.size
    total_weight = sum(curve.values())

    def at(hour: int, first_minute: int = 0, last_minute: int = 59) -> datetime:
        return datetime(day.year, day.month, day.day, hour, rng.randint(first_minute, last_minute),
                        rng.randint(0, 59), rng.randrange(0, 1_000_000, 1000), tzinfo=tz)

    slots: list[tuple[datetime, Channel]] = []
    for hour, weight in curve.items():
        count = round(expected * weight / total_weight * rng.uniform(0.85, 1.15))
        slots += [(at(hour), "app" if rng.random() < 0.2 else "counter") for _ in range(count)]
    if kind == "saturday" and store.market_stall:
        slots += [(at(rng.randint(8, 12)), "market") for _ in range(round(90 * rng.uniform(0.8, 1.2)))]
    if kind == "weekday" and store.size >= 0.7:
        slots += [(at(rng.randint(10, 15)), "wholesale") for _ in range(rng.randint(1, 4))]
    slots.sort(key=lambda slot: slot[0])
    return [random_order(rng, store, placed_at, channel) for placed_at, channel in slots]


def generate_day(day: date, stores: Sequence[Store] = DEFAULT_STORES, seed: int = 0) -> list[Order]:
    """Every order of ``stores`` on the local calendar ``day``, ordered by placed_at."""
    orders = [order for store in stores for order in _store_day(day, store, seed)]
    orders.sort(key=lambda o: o.placed_at)
    return orders


def iter_days(start: date, days: int, stores: Sequence[Store] = DEFAULT_STORES, seed: int = 0) -> Iterator[Order]:
    """``days`` consecutive days from ``start``, one day generated at a time."""
    for n in range(days):
        yield from generate_day(start + timedelta(days=n), stores, seed)


def with_duplicates(orders: Sequence[Order], fraction: float, seed: int = 0, max_delay: int = 20) -> list[Order]:
    """``orders`` plus resends (the same order, same message_id) of about ``fraction`` of them,
    each appearing 1..``max_delay`` positions after the original, as a till retrying after a timeout."""
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")
    rng = random.Random(f"coffee-rt:duplicates:{seed}")
    keyed: list[tuple[float, Order]] = []
    for position, order in enumerate(orders):
        keyed.append((position, order))
        if rng.random() < fraction:
            keyed.append((position + rng.randint(1, max_delay) + 0.5, order))
    keyed.sort(key=lambda pair: pair[0])
    return [order for _, order in keyed]
