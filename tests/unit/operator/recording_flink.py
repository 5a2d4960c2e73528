"""A recording stand-in for the Flink REST client, for ``act`` unit tests.

It keeps jobs in a dict and answers the calls the lifecycle and the observer make the way Flink's
REST API does (404 for an unknown job, 409 for a job id in use, savepoints and disposals that
complete or fail). ``calls`` records the calls that change something in Flink. The real
client against a real Flink is covered by tests/integration/operator; this one lets every action
and every failure branch of ``act`` run in milliseconds, and shows exactly which calls it made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coffee_flink.lifecycle import TERMINAL
from coffee_flink.rest import FlinkRestError


@dataclass
class RecordingFlink:
    base_url: str = "http://flink:8081"
    states: dict[str, str] = field(default_factory=dict)  # job id -> state (the jobs Flink knows)
    checkpoint: dict[str, str] = field(default_factory=dict)  # job id -> newest checkpoint path
    savepoint_error: str | None = None  # every savepoint fails with this cause
    run_error: str | None = None  # every submission fails with this cause
    dispose_error: str | None = None  # every savepoint disposal fails with this cause
    cancel_to: str = "CANCELED"
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    _triggers: int = 0

    def _job(self, job_id: str) -> str:
        if job_id not in self.states:
            raise FlinkRestError("GET", f"/jobs/{job_id}", 404, "NotFoundException: Job not found")
        return self.states[job_id]

    # jars
    def list_jars(self) -> list[dict[str, Any]]:
        return [{"id": "jar-1_flink-python.jar", "name": "flink-python.jar"}]

    def upload_jar(self, jar: Path) -> str:
        self.calls.append(("upload_jar", jar.name))
        return "jar-1_flink-python.jar"

    def run_jar(self, jar_id: str, *, entry_class: str, program_args: Sequence[str], job_id: str | None = None,
                parallelism: int | None = None, savepoint_path: str | None = None,
                allow_non_restored_state: bool = False, flink_configuration: dict[str, str] | None = None,
                timeout: float | None = None) -> str:
        self.calls.append(("run_jar", job_id, savepoint_path, parallelism))
        if self.run_error:
            raise FlinkRestError("POST", f"/jars/{jar_id}/run", 500, self.run_error)
        assert job_id is not None
        if job_id in self.states:
            raise FlinkRestError("POST", f"/jars/{jar_id}/run", 409, f"DuplicateJobSubmissionException: {job_id}")
        self.states[job_id] = "RUNNING"
        return job_id

    # jobs
    def jobs(self) -> list[dict[str, Any]]:
        return [{"jid": job_id, "state": state} for job_id, state in self.states.items()]

    def job_state(self, job_id: str) -> str | None:
        return self.states.get(job_id)

    def job(self, job_id: str) -> dict[str, Any]:
        return {"jid": job_id, "state": self._job(job_id), "timestamps": {}, "vertices": []}

    def pending_vertices(self, job_id: str) -> list[str]:
        self._job(job_id)
        return []

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        self._job(job_id)
        path = self.checkpoint.get(job_id)
        completed = {"external_path": path, "latest_ack_timestamp": 1_773_489_000_000} if path else None
        return {"counts": {"completed": 1 if path else 0}, "latest": {"completed": completed}}

    def exceptions(self, job_id: str) -> dict[str, Any]:
        return {}

    def job_metric(self, job_id: str, name: str) -> str | None:
        return "0"

    def cancel(self, job_id: str) -> None:
        self.calls.append(("cancel", job_id))
        self._job(job_id)
        self.states[job_id] = self.cancel_to

    def wait_state(self, job_id: str, states: set[str], timeout: float = 120.0) -> str:
        state = self._job(job_id)
        if state in states:
            return state
        if state in TERMINAL:
            raise FlinkRestError("GET", f"/jobs/{job_id}", 200, f"job reached {state}, wanted {states}")
        raise TimeoutError(f"job {job_id} is {state}, not {states}")

    # savepoints
    def _trigger(self, kind: str, job_id: str) -> str:
        self.calls.append((kind, job_id))
        self._job(job_id)
        self._triggers += 1
        return f"trigger-{self._triggers}"

    def stop_with_savepoint(self, job_id: str, target_directory: str | None = None, drain: bool = False) -> str:
        return self._trigger("stop_with_savepoint", job_id)

    def trigger_savepoint(self, job_id: str, target_directory: str | None = None, cancel_job: bool = False) -> str:
        return self._trigger("trigger_savepoint", job_id)

    def wait_savepoint(self, job_id: str, trigger_id: str, timeout: float = 120.0) -> str:
        if self.savepoint_error:
            raise FlinkRestError("GET", f"savepoint {trigger_id}", 500, self.savepoint_error)
        if self.calls[-1][0] == "stop_with_savepoint":
            self.states[job_id] = "FINISHED"
        return f"file:/savepoints/{job_id}/{trigger_id}"

    def dispose_savepoint(self, path: str) -> str:
        self.calls.append(("dispose", path))
        return "dispose-1"

    def wait_disposal(self, trigger_id: str, timeout: float = 60.0) -> None:
        if self.dispose_error:
            raise FlinkRestError("GET", f"/savepoint-disposal/{trigger_id}", 500, self.dispose_error)
