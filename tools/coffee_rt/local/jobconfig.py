"""The job's configuration for a local stack (the demo, `coffee-rt local up`, benchmarks, tests).

The configuration names the files holding the job's credentials, never the credentials
(coffee_jobconfig.model). :func:`write_job_secrets` writes them, mode 0600, in the job's state
folder (``job/secrets/``) from the stack's generated secrets; whoever submits the job calls it
first (the job component does).
"""

from __future__ import annotations

from pathlib import Path

from coffee_db import roles
from coffee_jobconfig.model import JobConfig
from coffee_orders import topics
from coffee_rt.local.secret_files import write_secret
from coffee_rt.local.settings import LocalSettings


def job_secret_files(settings: LocalSettings) -> tuple[Path, Path]:
    """Where the job's Postgres password and Redis URL are: ``<state>/job/secrets/``."""
    folder = (settings.state_dir / "job" / "secrets").resolve()
    return folder / "postgres-password", folder / "redis-url"


def write_job_secrets(settings: LocalSettings) -> None:
    """(Re)write the job's secret files from the stack's secrets: its own Postgres role's password."""
    password_file, redis_url_file = job_secret_files(settings)
    write_secret(password_file, settings.postgres_role_password(roles.JOB))
    write_secret(redis_url_file, settings.redis_url)


def local_job_config(settings: LocalSettings, **overrides: object) -> JobConfig:
    password_file, redis_url_file = job_secret_files(settings)
    values: dict[str, object] = {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "orders_topic": topics.ORDERS.name,
        "dlq_topic": topics.ORDERS_DLQ.name,
        "postgres_jdbc_url": f"jdbc:postgresql://{settings.host}:{settings.postgres_port}/{settings.postgres_db}",
        "postgres_user": roles.JOB,  # writes only the job's tables (coffee_db/migrations/0004_roles.sql)
        "postgres_password_file": str(password_file),
        "redis_url_file": str(redis_url_file),
    }
    values.update(overrides)
    return JobConfig(**values)  # type: ignore[arg-type]
