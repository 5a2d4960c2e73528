"""The CoffeePipeline spec as typed models (the CRD's schema already refused malformed resources).

Also: durations in the CRD's units. Which part of the spec is the *job* is ``target.JobTarget``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from coffee_settings import durations

_UNIT_FORM = re.compile(r"([0-9]+)(ms|s|min|m|h|d)")


def duration_seconds(text: str) -> float:
    """'10s' -> 10.0; the CRD's durations (``coffee_settings.durations``; zero is refused, as the CRD does)."""
    return durations.duration_seconds(text, allow_zero=False)


def flink_duration(text: str) -> str:
    """A CRD duration in the job config's units (ms, s, min, h): '1m' -> '1min', '2d' -> '48h'."""
    durations.parse_duration(text, allow_zero=False)
    match = _UNIT_FORM.fullmatch(text.strip())
    if match is None:  # another accepted form (ISO 8601): in milliseconds
        return f"{durations.duration_ms(text)}ms"
    number, unit = int(match.group(1)), match.group(2)
    return {"m": f"{number}min", "d": f"{number * 24}h"}.get(unit, f"{number}{unit}")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


class SecretKeyRef(_Model):
    name: str
    key: str


class SecretHolder(_Model):
    secret_ref: SecretKeyRef


class Entry(_Model):
    module: str | None = None
    file: str | None = None

    def driver_args(self) -> list[str]:
        """PythonDriver's way of naming the program."""
        return ["-pym", self.module] if self.module else ["-py", str(self.file)]


class SavepointHistorySpec(_Model):
    max_count: int = Field(5, ge=1)
    max_age: str | None = None


class JobSpec(_Model):
    rest_url: str
    entry: Entry
    # The session cluster's image (the job's code runs in its JobManager and TaskManagers) and the
    # Deployments that run it: a new image reaches them through the job's upgrade (session.py).
    image: str | None = None
    session_deployments: tuple[str, ...] = ()
    parallelism: int = 1
    checkpoint_interval: str = "10s"
    upgrade_mode: Literal["stateless", "savepoint", "last-state"] = "savepoint"
    state: Literal["running", "suspended"] = "running"
    savepoint_trigger_nonce: int | None = None
    restart_nonce: int | None = None
    # The first submission starts from this savepoint (a pipeline recreated from its final savepoint);
    # a new savepointRedeployNonce submits the job from it again, whatever state the job has now.
    initial_savepoint_path: str | None = None
    savepoint_redeploy_nonce: int | None = None
    allow_non_restored_state: bool = False
    periodic_savepoint_interval: str | None = None
    savepoint_history: SavepointHistorySpec = Field(default_factory=lambda: SavepointHistorySpec.model_validate({}))


class KafkaTopics(_Model):
    orders: str = "orders"
    dlq: str = "orders.dlq"


class KafkaSpec(_Model):
    bootstrap: str
    topics: KafkaTopics = Field(default_factory=KafkaTopics)


class IngestSpec(_Model):
    image: str
    replicas: int = 2
    resources: dict[str, Any] | None = None
    auth_secret_ref: SecretKeyRef | None = None
    auth_secret_checksum: str | None = None  # of the token Secret's content: a new value rolls the Pods


class Sinks(_Model):
    postgres: SecretHolder | None = None
    redis: SecretHolder | None = None


class AuditSpec(_Model):
    """The ledger auditor of the pipeline (absent: none); ``enabled: false`` scales it to zero."""

    image: str
    enabled: bool = True
    interval: str = "30s"
    resources: dict[str, Any] | None = None
    # The auditor's own credentials (its Postgres role and Redis user); absent: the sinks' Secrets.
    postgres_secret_ref: SecretKeyRef | None = None
    redis_secret_ref: SecretKeyRef | None = None


class HistoryRebuild(_Model):
    """Re-insert the Postgres orders of business days ``from``..``to`` the topic has and Postgres lacks."""

    first: date = Field(alias="from")
    last: date | None = Field(None, alias="to")
    store: str | None = None

    @property
    def days(self) -> str:
        return f"{self.first.isoformat()}..{(self.last or self.first).isoformat()}"


class LiveRebuild(_Model):
    """Replay ``day`` into a fresh job state: the Redis live numbers rebuilt."""

    day: date


class RebuildSpec(_Model):
    """A rebuild, carried out once per new ``nonce`` (as ``savepointTriggerNonce``)."""

    nonce: str = Field(min_length=1, max_length=63)
    history: HistoryRebuild | None = None
    live: LiveRebuild | None = None


class PipelineSpec(_Model):
    ingest: IngestSpec
    job: JobSpec
    kafka: KafkaSpec
    sinks: Sinks = Field(default_factory=Sinks)
    audit: AuditSpec | None = None
    rebuild: RebuildSpec | None = None


class SpecError(ValueError):
    pass


def parse_spec(raw: dict[str, Any]) -> PipelineSpec:
    try:
        return PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SpecError(problems) from None
