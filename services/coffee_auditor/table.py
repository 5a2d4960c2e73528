"""An audit's rows as the table `coffee-rt audit` and the rebuilds print."""

from __future__ import annotations

from collections.abc import Sequence

from coffee_ledger.compare import VIEWS, ZERO, Count, Row


def _cell(count: Count | None) -> str:
    return "-" if count is None else f"{count.orders} / {count.revenue_cents}"


def differences(row: Row) -> str:
    if not row.complete:
        return "topic incomplete (beyond retention)"
    parts = []
    for view in VIEWS:
        diff = row.difference(view)
        if diff is not None and diff != ZERO:
            parts.append(f"{view} {diff.orders:+d} orders {diff.revenue_cents:+d} cents")
    return "; ".join(parts) or "ok"


def table(rows: Sequence[Row]) -> str:
    lines = [["STORE", "DAY", "TOPIC", "POSTGRES", "REDIS", "DIFFERENCES"]]
    lines += [[r.store, r.day, _cell(r.topic), _cell(r.postgres), _cell(r.redis), differences(r)] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)
    return text + "\n(orders / revenue cents; a difference is the view minus the topic; '-': not audited)"
