"""The CoffeePipeline status as typed models: the operator's memory between reconciles.

Everything the lifecycle needs to survive an operator restart lives here (the submission
counter, a submission in flight, why the job was stopped, the last good spec), never in memory.
Times are RFC 3339 UTC strings, as Kubernetes writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Checkpoint(_Model):
    path: str
    time: str


class Savepoint(_Model):
    path: str
    time: str
    trigger: str  # upgrade, suspend, manual, periodic, delete
    dispose_error: str | None = None
    dispose_failed_at: str | None = None


class CheckpointCounts(_Model):
    completed: int = 0
    failed: int = 0
    in_progress: int = 0


class JobStatus(_Model):
    job_id: str | None = None
    state: str | None = None
    submission: int | None = None
    running_since: str | None = None
    restarts: int = 0
    checkpoints: CheckpointCounts = CheckpointCounts()
    last_checkpoint: Checkpoint | None = None
    last_savepoint: Savepoint | None = None
    restored_from: str | None = None
    exception: str | None = None


class Deployed(_Model):
    """The spec the current job was submitted with."""

    generation: int
    spec: dict[str, Any]
    restore_path: str | None = None
    submitted_at: str


class StableSpec(_Model):
    """The last spec whose job ran healthy: the rollback target."""

    generation: int
    spec: dict[str, Any]


class Pending(_Model):
    """A submission in flight, written before Flink is asked (so a retry reuses the job id)."""

    submission: int
    generation: int
    spec: dict[str, Any]
    restore_path: str | None = None
    reason: str  # initial, resume, upgrade, restart, recover, rollback
    since: str
    attempts: int = 0
    retry_at: str | None = None
    error: str | None = None


class Stopped(_Model):
    """The operator stopped the job on purpose; where to resume from."""

    reason: str  # suspend, upgrade, restart
    restore_path: str | None = None
    restore_kind: str = "none"  # savepoint, checkpoint, none
    at: str


class Upgrade(_Model):
    """A new spec on its way to a healthy RUNNING, rolled back after the deadline."""

    generation: int
    spec: dict[str, Any]
    started_at: str
    restore_path: str | None = None


class Blocked(_Model):
    """A stop that needs a savepoint could not get one: the job keeps running, status says why."""

    action: str  # upgrade, suspend
    generation: int
    message: str
    retry_at: str


class Rollback(_Model):
    generation: int
    failed_spec: dict[str, Any]
    to_generation: int
    at: str
    message: str


class Nonces(_Model):
    savepoint: int | None = None
    restart: int | None = None


class Condition(_Model):
    type: str
    status: str
    reason: str
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class IngestStatus(_Model):
    replicas: int | None = None
    ready_replicas: int | None = None


class PipelineStatus(_Model):
    phase: str | None = None
    observed_generation: int | None = None
    error: str | None = None
    halted: str | None = None  # the lifecycle cannot go on without a person (e.g. no restore point)
    revision: int = 0
    submissions: int = 0
    recoveries: int = 0  # resubmissions after a failure since the job last ran healthy (back-off)
    job_status: JobStatus = JobStatus()
    deployed: Deployed | None = None
    last_stable_spec: StableSpec | None = None
    pending: Pending | None = None
    stopped: Stopped | None = None
    upgrade: Upgrade | None = None
    blocked: Blocked | None = None
    rollback: Rollback | None = None
    nonces: Nonces = Nonces()
    last_periodic_savepoint: str | None = None
    savepoint_history: list[Savepoint] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    ingest: IngestStatus | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> PipelineStatus:
        return cls.model_validate(dict(raw or {}))


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch (what the API server does with our status patches)."""
    result = dict(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result
