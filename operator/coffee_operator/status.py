"""The CoffeePipeline status as typed models: the operator's memory between reconciles.

Everything the lifecycle needs to survive an operator restart lives here (the submission
counter, a submission in flight, why the job was stopped, the last good spec), never in memory.
Times are RFC 3339 UTC strings, as Kubernetes writes them.

Inside the operator status is these models; a change to it is a typed ``StatusChange``. JSON
(camelCase, no nulls) exists only where status is read (``PipelineStatus.parse``) and written
(``StatusChange.dump``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from coffee_operator.target import JobTarget


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
    spec: JobTarget
    restore_path: str | None = None
    submitted_at: str
    startup_ms: int | None = None  # without state, its Kafka source started here (a live rebuild's replay)


class StableSpec(_Model):
    """The last spec whose job ran healthy: the rollback target."""

    generation: int
    spec: JobTarget


class Pending(_Model):
    """A submission in flight, written before Flink is asked (so a retry reuses the job id)."""

    submission: int
    generation: int
    spec: JobTarget
    restore_path: str | None = None
    reason: str  # initial, resume, upgrade, restart, recover, rollback, rebuild
    since: str
    startup_ms: int | None = None  # without state: where its Kafka source starts (else the group's offsets)
    attempts: int = 0
    retry_at: str | None = None
    error: str | None = None


class Stopped(_Model):
    """The operator stopped the job on purpose; where to resume from."""

    reason: str  # suspend, upgrade, restart, rebuild, redeploy
    restore_path: str | None = None
    restore_kind: str = "none"  # savepoint, checkpoint, none
    at: str


class Upgrade(_Model):
    """A new spec on its way to a healthy RUNNING, rolled back after the deadline."""

    generation: int
    spec: JobTarget
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
    failed_spec: JobTarget
    to_generation: int
    at: str
    message: str


class RebuildStatus(_Model):
    """The last ``spec.rebuild`` acted on. A live rebuild goes through ``step``: stop (the job, with a
    savepoint), submit (it, without state, its source from ``replay_from_ms``), follow (a Job follows the
    replay and audits); a history rebuild is one Job."""

    nonce: str
    kind: str  # history, live
    phase: str  # Running, Succeeded, Failed, Rejected
    step: str | None = None
    days: str | None = None
    replay_from_ms: int | None = None
    job: str | None = None  # the Kubernetes Job, once created
    started_at: str | None = None
    finished_at: str | None = None
    message: str | None = None


class Nonces(_Model):
    savepoint: int | None = None
    restart: int | None = None
    redeploy: int | None = None


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
    rebuild: RebuildStatus | None = None
    last_periodic_savepoint: str | None = None
    savepoint_history: list[Savepoint] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    ingest: IngestStatus | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> PipelineStatus:
        return cls.model_validate(dict(raw or {}))


class Keep(Enum):
    """A status field that a change leaves as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class StatusChange:
    """Top-level status fields to replace, typed. A field left at ``KEEP`` is not touched; one set
    to None or to its default is removed (status holds only what differs from the defaults, so a
    reset counter or a cleared step leaves no trace). ``revision`` is not here: the writer counts it."""

    phase: str | Keep | None = KEEP
    observed_generation: int | Keep | None = KEEP
    error: str | Keep | None = KEEP
    halted: str | Keep | None = KEEP
    submissions: int | Keep = KEEP
    recoveries: int | Keep = KEEP
    job_status: JobStatus | Keep = KEEP
    deployed: Deployed | Keep | None = KEEP
    last_stable_spec: StableSpec | Keep | None = KEEP
    pending: Pending | Keep | None = KEEP
    stopped: Stopped | Keep | None = KEEP
    upgrade: Upgrade | Keep | None = KEEP
    blocked: Blocked | Keep | None = KEEP
    rollback: Rollback | Keep | None = KEEP
    nonces: Nonces | Keep = KEEP
    rebuild: RebuildStatus | Keep | None = KEEP
    last_periodic_savepoint: str | Keep | None = KEEP
    savepoint_history: tuple[Savepoint, ...] | Keep = KEEP
    conditions: tuple[Condition, ...] | Keep = KEEP
    ingest: IngestStatus | Keep | None = KEEP

    def fields(self) -> dict[str, Any]:
        """The fields this change sets, by their Python name (None: removed)."""
        changed = {f.name: getattr(self, f.name) for f in dataclasses.fields(StatusChange)}
        return {name: value for name, value in changed.items() if value is not KEEP}

    def _values(self) -> dict[str, Any]:
        """The fields this change sets as PipelineStatus holds them (lists; None: the default)."""
        values: dict[str, Any] = {}
        for name, value in self.fields().items():
            default = PipelineStatus.model_fields[name].get_default(call_default_factory=True)
            value = list(value) if isinstance(value, tuple) else value
            values[name] = None if value is None or value == default else value
        return values

    def apply(self, status: PipelineStatus) -> PipelineStatus:
        """``status`` with this change made (what the status will be once it is written)."""
        fields = PipelineStatus.model_fields
        return status.model_copy(update={
            name: fields[name].get_default(call_default_factory=True) if value is None else value
            for name, value in self._values().items()})

    def dump(self) -> dict[str, Any]:
        """The change as status JSON: camelCase top-level fields, None for a field to remove."""
        values = self._values()
        kept = {name: value for name, value in values.items() if value is not None}
        dumped = PipelineStatus.model_construct(**kept).model_dump(
            by_alias=True, exclude_none=True, mode="json", include=set(kept))
        aliases = {name: PipelineStatus.model_fields[name].alias or name for name in values}
        return {aliases[name]: dumped[aliases[name]] if name in kept else None for name in values}


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
