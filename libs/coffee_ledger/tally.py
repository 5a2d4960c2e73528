"""The topic's side of the ledger, counted incrementally: positions, running totals, dedup memory.

A record counts when the job would count it: it parses with the order schema exactly as the job's
reference parser does (``coffee_orders.schema.from_wire``; anything else is a poison record the job
dead-letters) and its ``message_id`` was not counted before. The job forgets a ``message_id``
``dedup_ttl`` after it saw it; the tally remembers ids for the same time (by the records' Kafka
timestamps, in hourly buckets dropped whole), so its memory is bounded by the orders of that
window, not by the topic's length. Orders are counted under their store's business day and under
``_all`` in the default zone (``tz_of("_all")``), as the job's live metrics do.

The tally also notes what changed since the last ``take_changes()`` (not part of its value), so that
a store can save only that (``coffee_auditor.state``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from coffee_live.days import business_day, day_bounds
from coffee_live.layout import ALL_STORES
from coffee_orders.schema import from_wire

HOUR_MS = 3_600_000
FORMAT = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Outcome = Literal["counted", "duplicate", "invalid"]
Key = tuple[str, str]  # (store or "_all", business day)


@dataclass(frozen=True)
class Counted:
    message_id: int
    store_id: str
    placed_at_ms: int
    total_cents: int


def read(value: bytes | None) -> Counted | None:
    """The order in a record value, or None for what the job dead-letters (same rules as its parser)."""
    if value is None:
        return None
    try:
        order = from_wire(value)
    except (ValidationError, ValueError, UnicodeDecodeError):
        return None
    placed_ms = (order.placed_at - EPOCH) // timedelta(milliseconds=1)
    return Counted(order.message_id.int, order.store_id, placed_ms, order.total_cents)


@dataclass
class Changes:
    """What changed in a tally since the last ``take_changes()``."""

    cleared: bool = False  # reset(): everything saved before is void
    remembered: dict[int, list[int]] = field(default_factory=dict)  # hour -> message_ids added to the memory
    dropped_hours: set[int] = field(default_factory=set)  # hours the memory forgot (bounded as the memory is)
    totals: set[Key] = field(default_factory=set)  # keys whose running totals moved


@dataclass
class Tally:
    dedup_ttl_ms: int
    topic: str = "orders"
    positions: dict[int, int] = field(default_factory=dict)  # partition -> next offset to read
    totals: dict[Key, list[int]] = field(default_factory=dict)  # -> [orders, revenue cents]
    buckets: dict[int, set[int]] = field(default_factory=dict)  # hour of record time -> message ids
    newest_ms: int = 0  # newest record timestamp seen
    # Records older than this may be missing (deleted by retention before they were read).
    incomplete_before_ms: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"counted": 0, "duplicate": 0, "invalid": 0})
    changes: Changes = field(default_factory=Changes, compare=False, repr=False)

    def add(self, partition: int, offset: int, timestamp_ms: int, value: bytes | None,
            tz_of: Callable[[str], str]) -> Outcome:
        self.positions[partition] = offset + 1
        order = read(value)
        if order is None:
            return self._outcome("invalid")
        if any(order.message_id in ids for ids in self.buckets.values()):
            return self._outcome("duplicate")
        hour = timestamp_ms // HOUR_MS
        self.buckets.setdefault(hour, set()).add(order.message_id)
        self.changes.remembered.setdefault(hour, []).append(order.message_id)
        if timestamp_ms > self.newest_ms:
            self.newest_ms = timestamp_ms
            self._expire()
        for key in (order.store_id, ALL_STORES):
            day_key = (key, business_day(order.placed_at_ms, tz_of(key)))
            total = self.totals.setdefault(day_key, [0, 0])
            total[0] += 1
            total[1] += order.total_cents
            self.changes.totals.add(day_key)
        return self._outcome("counted")

    def reset(self) -> None:
        """Forget everything: the topic was recreated (a position beyond its end), so count it afresh."""
        fresh = Tally(dedup_ttl_ms=self.dedup_ttl_ms, topic=self.topic)
        self.__dict__.update(fresh.__dict__)
        self.changes.cleared = True

    def take_changes(self) -> Changes:
        """What changed since the last call (or since the tally was made), and start noting afresh."""
        changes, self.changes = self.changes, Changes()
        return changes

    def _outcome(self, outcome: Outcome) -> Outcome:
        self.counts[outcome] += 1
        return outcome

    def _expire(self) -> None:
        """Drop the hours the job's dedup has forgotten too (a whole bucket once its last id is older)."""
        cutoff = self.newest_ms - self.dedup_ttl_ms
        for hour in [h for h in self.buckets if (h + 1) * HOUR_MS <= cutoff]:
            del self.buckets[hour]
            self.changes.remembered.pop(hour, None)
            self.changes.dropped_hours.add(hour)

    def remembered(self) -> int:
        return sum(len(ids) for ids in self.buckets.values())

    def mark_gap(self, first_timestamp_ms: int) -> None:
        """Records before ``first_timestamp_ms`` were deleted unread (retention): earlier days are incomplete."""
        self.incomplete_before_ms = max(self.incomplete_before_ms, first_timestamp_ms)

    def complete(self, day: str, tz: str) -> bool:
        """Whether every record of ``day`` was read (none deleted by retention before the tally saw it)."""
        return day_bounds(day, tz)[0].timestamp() * 1000 >= self.incomplete_before_ms

    def stores(self) -> set[str]:
        return {store for store, _ in self.totals if store != ALL_STORES}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "topic": self.topic, "dedup_ttl_ms": self.dedup_ttl_ms,
            "positions": {str(p): o for p, o in sorted(self.positions.items())},
            "totals": [[s, d, o, r] for (s, d), (o, r) in sorted(self.totals.items())],
            "buckets": {str(h): [f"{i:032x}" for i in ids] for h, ids in sorted(self.buckets.items())},
            "newest_ms": self.newest_ms, "incomplete_before_ms": self.incomplete_before_ms, "counts": self.counts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown ledger state format {data.get('format')!r}")
        return cls(
            dedup_ttl_ms=int(data["dedup_ttl_ms"]), topic=str(data["topic"]),
            positions={int(p): int(o) for p, o in data["positions"].items()},
            totals={(s, d): [int(o), int(r)] for s, d, o, r in data["totals"]},
            buckets={int(h): {int(i, 16) for i in ids} for h, ids in data["buckets"].items()},
            newest_ms=int(data["newest_ms"]), incomplete_before_ms=int(data["incomplete_before_ms"]),
            counts={k: int(v) for k, v in data["counts"].items()},
        )
