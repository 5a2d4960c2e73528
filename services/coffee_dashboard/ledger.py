"""The ops panel's Ledger row: the ledger audit's verdict, read from the auditor's ``/metrics``.

The auditor (docs/ledger.md) compares, per store and business day, the orders topic with Postgres
and Redis every round and exports the differences as ``coffee_ledger_*`` gauges; the panel reads the
same series the ``CoffeeRtLedgerMismatch`` alert reads. Three verdicts:

- ``agrees``: every exported difference is zero;
- ``differs``: at least one is not; each is listed (view, store, day, orders and revenue cents,
  view minus topic, as ``coffee-rt audit`` prints them), stores before ``_all``;
- ``unknown``: no round has finished yet, or the last one is older than ``stale_after_s``. A stuck
  auditor keeps exporting its last differences; an old "agrees" must not read as a current one.

An auditor that does not answer is the panel's usual ``error`` part (also shown as unknown).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from prometheus_client.parser import text_string_to_metric_families

from coffee_dashboard.staleness import human_age
from coffee_live.layout import ALL_STORES

ORDERS = "coffee_ledger_orders_difference"
REVENUE = "coffee_ledger_revenue_cents_difference"
TOPIC_ORDERS = "coffee_ledger_topic_orders"
LAST_AUDIT = "coffee_ledger_last_audit_timestamp_seconds"

Verdict = Literal["agrees", "differs", "unknown"]


@dataclass(frozen=True)
class Difference:
    view: str
    store: str
    day: str
    orders: int
    revenue_cents: int

    def __str__(self) -> str:
        return f"{self.store} {self.day}: {self.view} {self.orders:+d} orders {self.revenue_cents:+d} cents"


@dataclass(frozen=True)
class Ledger:
    verdict: Verdict
    summary: str  # the row's text
    differences: tuple[Difference, ...]
    audited: int  # store/day pairs the last round compared
    last_audit_age_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {"status": "ok", "verdict": self.verdict, "summary": self.summary,
                "differences": [asdict(d) for d in self.differences], "audited": self.audited,
                "last_audit_age_s": self.last_audit_age_s}


def read(text: str) -> tuple[float | None, int, list[Difference]]:
    """(last round's end as Unix time or None when not exported, audited store/days, the non-zero
    differences in display order) from the auditor's exposition text."""
    last: float | None = None
    audited = 0
    diffs: dict[tuple[str, str, str], list[int]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == LAST_AUDIT:
                last = sample.value
            elif sample.name == TOPIC_ORDERS:
                audited += 1
            elif sample.name in (ORDERS, REVENUE):
                labels = sample.labels
                pair = diffs.setdefault((labels["view"], labels["store"], labels["day"]), [0, 0])
                pair[0 if sample.name == ORDERS else 1] = round(sample.value)
    found = [Difference(view, store, day, orders, revenue)
             for (view, store, day), (orders, revenue) in diffs.items() if orders or revenue]
    found.sort(key=lambda d: (d.store == ALL_STORES, d.day, d.store, d.view))
    return last, audited, found


def verdict(text: str, now_s: float, stale_after_s: float) -> Ledger:
    """The row for one scrape of the auditor taken at ``now_s`` (Unix time)."""
    last, audited, found = read(text)
    if last is None:
        return Ledger("unknown", f"unknown: no {LAST_AUDIT} in the answer (not the ledger auditor?)",
                      tuple(found), audited, None)
    if last <= 0:
        return Ledger("unknown", "unknown: the auditor's first round has not finished yet", tuple(found), audited,
                      None)
    age = round(max(0.0, now_s - last), 1)
    when = f"audited {human_age(age)} ago"
    if age > stale_after_s:
        return Ledger("unknown", f"unknown: the last audit round finished {human_age(age)} ago "
                                 f"(stale after {human_age(stale_after_s)})", tuple(found), audited, age)
    if not found:
        days = f"{audited} store-day" + ("" if audited == 1 else "s")
        return Ledger("agrees", f"agrees with the orders topic ({days}, {when})", (), audited, age)
    more = f"; {len(found) - 1} more" if len(found) > 1 else ""
    return Ledger("differs", f"differs: {found[0]} ({when}{more})", tuple(found), audited, age)
