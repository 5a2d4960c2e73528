"""The local Kafka component applies the orders topic's retention from the settings to an existing topic."""

from __future__ import annotations

from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from coffee_rt.local.components.kafka import Kafka
from coffee_rt.local.stack import LocalStack

DAY_MS = 86_400_000


def _retention(kafka: Kafka) -> dict[str, str]:
    admin = kafka.admin(timeout_ms=30_000)  # held until the futures are done: a dropped client cancels them
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in ("orders", "orders.dlq")]
    described = admin.describe_configs(resources, request_timeout=15)
    return {r.name: future.result()["retention.ms"].value for r, future in described.items()}


def test_an_existing_topic_gets_the_configured_retention(local_stack: LocalStack, kafka_bootstrap: str) -> None:
    default = local_stack["kafka"]
    assert isinstance(default, Kafka)
    assert _retention(default) == {"orders": str(35 * DAY_MS), "orders.dlq": str(30 * DAY_MS)}
    longer = Kafka(local_stack.settings.model_copy(update={"orders_retention_days": 90}))
    messages: list[str] = []
    try:
        longer.after_start(messages.append)  # what `local up kafka` runs once the broker answers
        assert messages == [f"kafka: topic orders: retention.ms {35 * DAY_MS} -> {90 * DAY_MS}"]
        assert _retention(default) == {"orders": str(90 * DAY_MS), "orders.dlq": str(30 * DAY_MS)}
        messages.clear()
        longer.after_start(messages.append)
        assert messages == []  # nothing to change
    finally:
        default.after_start(messages.append)
    assert _retention(default) == {"orders": str(35 * DAY_MS), "orders.dlq": str(30 * DAY_MS)}
