"""The Kafka topics of the pipeline, in one place for the local stack, the services and the infra."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


# The orders topic is the ledger's source of truth (docs/ledger.md): by default kept long enough to
# audit and rebuild the whole current month from it, plus a few days to act on a problem found at
# month end. The Pulumi stack (`kafka.ordersRetentionDays`) and the local stack
# (`COFFEE_RT_ORDERS_RETENTION_DAYS`) choose their own, at least MIN_ORDERS_RETENTION_DAYS: the
# live rebuild replays from the first instant of yesterday at the earliest.
ORDERS_RETENTION_DAYS = 35
MIN_ORDERS_RETENTION_DAYS = 2
MAX_ORDERS_RETENTION_DAYS = 3650
ORDERS = Topic("orders", partitions=3, config={"retention.ms": str(ORDERS_RETENTION_DAYS * DAY_MS)})
ORDERS_DLQ = Topic("orders.dlq", partitions=1, config={"retention.ms": str(30 * DAY_MS)})
ALL = (ORDERS, ORDERS_DLQ)


def with_orders_retention(days: int) -> tuple[Topic, ...]:
    """Every topic, the orders topic kept ``days`` days."""
    if not MIN_ORDERS_RETENTION_DAYS <= days <= MAX_ORDERS_RETENTION_DAYS:
        raise ValueError(f"the orders topic's retention must be {MIN_ORDERS_RETENTION_DAYS} to "
                         f"{MAX_ORDERS_RETENTION_DAYS} days (got {days})")
    orders = replace(ORDERS, config={**ORDERS.config, "retention.ms": str(days * DAY_MS)})
    return tuple(orders if t.name == ORDERS.name else t for t in ALL)
