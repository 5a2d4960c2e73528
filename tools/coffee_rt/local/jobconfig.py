"""The job's configuration for a local stack (the demo, `coffee-rt local up`, benchmarks)."""

from __future__ import annotations

from coffee_jobconfig.model import JobConfig
from coffee_orders import topics
from coffee_rt.local.settings import LocalSettings


def local_job_config(settings: LocalSettings, **overrides: object) -> JobConfig:
    values: dict[str, object] = {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "orders_topic": topics.ORDERS.name,
        "dlq_topic": topics.ORDERS_DLQ.name,
        "postgres_jdbc_url": f"jdbc:postgresql://{settings.host}:{settings.postgres_port}/{settings.postgres_db}",
        "postgres_user": settings.postgres_user,
        "postgres_password": settings.postgres_password,
        "redis_url": settings.redis_url,
    }
    values.update(overrides)
    return JobConfig(**values)  # type: ignore[arg-type]
