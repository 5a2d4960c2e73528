"""Builders for decide() tests: a stored spec, a status, a job observation."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from coffee_operator.observation import JobObservation, Observation, PointInTime
from coffee_operator.settings import OperatorSettings
from coffee_operator.spec import PipelineSpec, parse_spec
from coffee_operator.status import CheckpointCounts, PipelineStatus, iso
from coffee_operator.target import JobTarget

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
SETTINGS = OperatorSettings(upgrade_deadline_seconds=300, stable_seconds=30, submit_retry_seconds=30,
                            savepoint_retry_seconds=60, dispose_retry_seconds=300, metrics_port=0)

BASE: dict[str, Any] = {
    "ingest": {"image": "coffee-rt/order-ingest:0.1.0", "replicas": 2},
    "job": {"restUrl": "http://flink:8081", "entry": {"module": "coffee_job.main"}, "parallelism": 1,
            "checkpointInterval": "10s", "upgradeMode": "savepoint", "state": "running",
            "allowNonRestoredState": False, "savepointHistory": {"maxCount": 5}},
    "kafka": {"bootstrap": "kafka:9092", "topics": {"orders": "orders", "dlq": "orders.dlq"}},
    "sinks": {"postgres": {"secretRef": {"name": "pg", "key": "dsn"}},
              "redis": {"secretRef": {"name": "rd", "key": "url"}}},
}


def spec(**job: Any) -> PipelineSpec:
    raw = copy.deepcopy(BASE)
    raw["job"].update(job)
    return parse_spec(raw)


def target(**job: Any) -> JobTarget:
    """The job target of the BASE spec with ``job`` fields changed."""
    return JobTarget.of(spec(**job))


def fp(**job: Any) -> dict[str, Any]:
    """The same target as status stores it (camelCase JSON)."""
    return target(**job).dump()


def ago(seconds: float) -> str:
    return iso(NOW - timedelta(seconds=seconds))


def running_status(**fields: Any) -> PipelineStatus:
    """A pipeline whose job 'job-1' (submission 1) runs the BASE spec, deployed 10 minutes ago."""
    raw: dict[str, Any] = {
        "submissions": 1,
        "jobStatus": {"jobId": "job-1", "state": "RUNNING", "submission": 1,
                      "checkpoints": {"completed": 5, "failed": 0, "inProgress": 0},
                      "lastCheckpoint": {"path": "file:/chk/job-1/chk-5", "time": ago(20)}},
        "deployed": {"generation": 1, "spec": fp(), "submittedAt": ago(600)},
        "lastStableSpec": {"generation": 1, "spec": fp()},
        "nonces": {},
    }
    raw.update(fields)
    return PipelineStatus.parse(raw)


def job(state: str = "RUNNING", job_id: str = "job-1", completed: int = 5, running_for: float = 600,
        checkpoint: tuple[str, float] | None = ("file:/chk/job-1/chk-6", 5),
        savepoint: tuple[str, float] | None = None, **more: Any) -> JobObservation:
    return JobObservation(
        job_id=job_id, state=state,
        running_since=NOW - timedelta(seconds=running_for) if state == "RUNNING" else None,
        checkpoints=CheckpointCounts(completed=completed),
        latest_checkpoint=PointInTime(checkpoint[0], NOW - timedelta(seconds=checkpoint[1])) if checkpoint else None,
        latest_savepoint=PointInTime(savepoint[0], NOW - timedelta(seconds=savepoint[1])) if savepoint else None,
        **more,
    )


def seen(j: JobObservation | None = None, **more: Any) -> Observation:
    return Observation(job=j, **more)
