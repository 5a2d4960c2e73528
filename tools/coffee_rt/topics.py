"""The Kafka topics of the pipeline, in one place for the local stack, the services and the infra."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


ORDERS = Topic("orders", partitions=3, config={"retention.ms": str(7 * 24 * 3600 * 1000)})
ORDERS_DLQ = Topic("orders.dlq", partitions=1, config={"retention.ms": str(30 * 24 * 3600 * 1000)})
ALL = (ORDERS, ORDERS_DLQ)
