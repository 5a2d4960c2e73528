"""The auditor's Prometheus metrics (``coffee_ledger_*``), on a registry of its own.

Per-day series are replaced every round (cleared, then set for the days audited now), so a day
that leaves the audited window stops being exported instead of freezing at its last value.
"""

from __future__ import annotations

from coffee_ledger.compare import VIEWS
from prometheus_client import CollectorRegistry, Counter, Gauge

from coffee_auditor.engine import Report


class LedgerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders_difference = Gauge(
            "coffee_ledger_orders_difference",
            "Orders in a view minus distinct valid orders in the orders topic, per store (or _all) and business day.",
            ["store", "day", "view"], registry=r)
        self.revenue_difference = Gauge(
            "coffee_ledger_revenue_cents_difference",
            "Revenue in a view minus revenue in the orders topic (cents), per store (or _all) and business day.",
            ["store", "day", "view"], registry=r)
        self.topic_orders = Gauge("coffee_ledger_topic_orders",
                                  "Distinct valid orders in the orders topic, per store (or _all) and business day.",
                                  ["store", "day"], registry=r)
        self.topic_revenue = Gauge("coffee_ledger_topic_revenue_cents",
                                   "Revenue of those orders (cents), per store (or _all) and business day.",
                                   ["store", "day"], registry=r)
        self.last_audit = Gauge("coffee_ledger_last_audit_timestamp_seconds",
                                "Unix time the last round that completed finished.", registry=r)
        self.round_seconds = Gauge("coffee_ledger_audit_duration_seconds", "How long the last round took.",
                                   registry=r)
        self.remembered = Gauge("coffee_ledger_remembered_message_ids",
                                "message_ids kept for deduplication (the job's dedup window).", registry=r)
        self.records = Counter("coffee_ledger_records", "Topic records read, by outcome.", ["outcome"], registry=r)
        self.errors = Counter("coffee_ledger_audit_errors", "Rounds that failed (a server unreachable).", registry=r)
        self._counted = {"counted": 0, "duplicate": 0, "invalid": 0}
        for outcome in self._counted:
            self.records.labels(outcome)

    def update(self, report: Report, now: float) -> None:
        for gauge in (self.orders_difference, self.revenue_difference, self.topic_orders, self.topic_revenue):
            gauge.clear()
        for row in report.rows:
            if not row.complete:
                continue
            self.topic_orders.labels(row.store, row.day).set(row.topic.orders)
            self.topic_revenue.labels(row.store, row.day).set(row.topic.revenue_cents)
            for view in VIEWS:
                diff = row.difference(view)
                if diff is not None:
                    self.orders_difference.labels(row.store, row.day, view).set(diff.orders)
                    self.revenue_difference.labels(row.store, row.day, view).set(diff.revenue_cents)
        for outcome, total in report.counts.items():
            # The tally's counts survive restarts (saved with it in Postgres); the counter moves by what is new.
            if outcome in self._counted and total > self._counted[outcome]:
                self.records.labels(outcome).inc(total - self._counted[outcome])
                self._counted[outcome] = total
        self.remembered.set(report.remembered_ids)
        self.round_seconds.set(report.seconds)
        self.last_audit.set(now)
