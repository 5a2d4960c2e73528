"""What the operator saw of Flink and Kubernetes in one reconcile (filled in by ``observe.py``,
read by ``decide``): plain frozen values, so ``decide`` stays a pure function of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from coffee_operator.status import CheckpointCounts, IngestStatus


@dataclass(frozen=True)
class PointInTime:
    path: str
    time: datetime


@dataclass(frozen=True)
class JobObservation:
    job_id: str
    state: str
    running_since: datetime | None = None
    restarts: int = 0
    checkpoints: CheckpointCounts = field(default_factory=CheckpointCounts)
    latest_checkpoint: PointInTime | None = None
    latest_savepoint: PointInTime | None = None
    restored_from: str | None = None
    exception: str | None = None


@dataclass(frozen=True)
class RebuildJobObservation:
    """The Kubernetes Job of a rebuild as the Job controller reports it."""

    name: str
    state: Literal["missing", "running", "succeeded", "failed"]
    message: str = ""  # of a failed Job: its Failed condition's reason and message


@dataclass(frozen=True)
class SessionDeployment:
    """One Deployment of the session cluster (spec.job.sessionDeployments) as Kubernetes reports it."""

    name: str
    images: frozenset[str] = frozenset()  # of all its containers and init containers; empty: it is missing
    containers: tuple[str, ...] = ()
    init_containers: tuple[str, ...] = ()
    settled: bool = False  # rolled out: the latest generation observed, every replica updated and ready


@dataclass(frozen=True)
class Observation:
    flink_error: str | None = None  # Flink REST unreachable or erroring: take no lifecycle step
    job: JobObservation | None = None  # None: no job yet, or Flink does not know our job id
    orphans: tuple[str, ...] = ()  # active jobs with our deterministic ids other than the current one
    # Our deterministic job ids that Flink already knows, by submission number, with the job's state
    # (any state: a finished job's id stays in Flink's history and Flink refuses a second job with it).
    # decide adopts the submission in flight when its id is here, and skips these ids for a new one.
    known: Mapping[int, str] = field(default_factory=dict)
    ingest: IngestStatus | None = None
    rebuild_job: RebuildJobObservation | None = None  # the Job status.rebuild names, while it runs
    session: tuple[SessionDeployment, ...] | None = None  # None: not read (no spec.job.image, or the API failed)
