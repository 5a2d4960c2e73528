"""The three sources side by side, per store (or ``_all``) and business day, and their differences.

A difference is view minus topic: negative means the view misses orders (or revenue) the topic has.
A view that is not audited for a key (Redis holds only each store's current business day) is None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

VIEWS = ("postgres", "redis")


@dataclass(frozen=True)
class Count:
    orders: int
    revenue_cents: int

    def __sub__(self, other: Count) -> Count:
        return Count(self.orders - other.orders, self.revenue_cents - other.revenue_cents)


ZERO = Count(0, 0)


@dataclass(frozen=True)
class Row:
    store: str
    day: str
    topic: Count
    postgres: Count | None
    redis: Count | None
    complete: bool = True  # False: retention deleted records of this day before they were counted

    def view(self, name: str) -> Count | None:
        value: Count | None = getattr(self, name)
        return value

    def difference(self, view: str) -> Count | None:
        """View minus topic, or None when the view is not audited here or the topic side is incomplete."""
        value = self.view(view)
        return None if value is None or not self.complete else value - self.topic

    @property
    def agrees(self) -> bool:
        return all(d is None or d == ZERO for d in (self.difference(v) for v in VIEWS))


def compare(keys: Iterable[tuple[str, str]], topic: Mapping[tuple[str, str], Count],
            postgres: Mapping[tuple[str, str], Count], redis: Mapping[tuple[str, str], Count],
            complete: Mapping[tuple[str, str], bool] | None = None) -> list[Row]:
    """One row per audited key. ``postgres`` lacking a key means 0 there; ``redis`` lacking a key
    means Redis is not audited for it (the caller fills ZERO for an audited key Redis does not have)."""
    return [
        Row(store, day, topic.get((store, day), ZERO), postgres.get((store, day), ZERO), redis.get((store, day)),
            True if complete is None else complete.get((store, day), True))
        for store, day in sorted(set(keys))
    ]


def all_agree(rows: Iterable[Row]) -> bool:
    return all(row.agrees for row in rows)
