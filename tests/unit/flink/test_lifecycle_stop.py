"""``lifecycle.stop``: a savepoint with the one retry policy, else cancel and the newest retained checkpoint.

The REST client is a recording stand-in answering the calls ``stop`` makes the way Flink does; the
real client against a real Flink runs in tests/integration/test_job_component.py (``down`` of the
local stack goes through ``stop``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from coffee_flink import lifecycle
from coffee_flink.lifecycle import SAVEPOINT_ATTEMPTS, Stopped
from coffee_flink.rest import FlinkRestError
from coffee_flink.states import TERMINAL

JOB = "0f" * 16
REFUSED = "java.lang.IllegalStateException: a checkpoint is in progress"


@dataclass
class StandIn:
    state: str = "RUNNING"
    refusals: int = 0  # savepoints refused before one completes (-1: every one)
    checkpoint: str | None = None  # the job's newest retained checkpoint
    savepoint_times_out: bool = False
    calls: list[str] = field(default_factory=list)

    def pending_vertices(self, job_id: str) -> list[str]:
        return []

    def job_state(self, job_id: str) -> str | None:
        return self.state

    def stop_with_savepoint(self, job_id: str) -> str:
        self.calls.append("stop_with_savepoint")
        return f"trigger-{len(self.calls)}"

    def wait_savepoint(self, job_id: str, trigger_id: str, timeout: float = 120.0) -> str:
        if self.savepoint_times_out:
            raise TimeoutError(f"savepoint {trigger_id} of job {job_id} not done after {timeout:.0f} s")
        if self.refusals:
            self.refusals -= 1
            raise FlinkRestError("GET", f"savepoint {trigger_id}", 500, f"Caused by: {REFUSED}")
        self.state = "FINISHED"
        return f"file:/savepoints/savepoint-{trigger_id}"

    def wait_state(self, job_id: str, states: set[str], timeout: float = 120.0) -> str:
        assert self.state in states
        return self.state

    def cancel(self, job_id: str) -> None:
        self.calls.append("cancel")
        self.state = "CANCELED"

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        self.calls.append("checkpoints")
        return {"latest": {"completed": {"external_path": self.checkpoint} if self.checkpoint else None}}


@pytest.fixture(autouse=True)
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(lifecycle.time, "sleep", slept.append)
    return slept


def stop(flink: StandIn, **kwargs: Any) -> Stopped:
    return lifecycle.stop(flink, JOB, **kwargs)  # type: ignore[arg-type]


def test_a_savepoint_stops_the_job() -> None:
    flink = StandIn()
    assert stop(flink) == Stopped("savepoint", "file:/savepoints/savepoint-trigger-1", "FINISHED")
    assert flink.calls == ["stop_with_savepoint"]


def test_a_refused_savepoint_is_retried_seconds_apart(pauses: list[float]) -> None:
    flink = StandIn(refusals=SAVEPOINT_ATTEMPTS - 1)
    assert stop(flink) == Stopped("savepoint", "file:/savepoints/savepoint-trigger-3", "FINISHED")
    assert flink.calls == ["stop_with_savepoint"] * 3
    assert pauses == [3.0, 3.0]


def test_no_savepoint_cancels_and_keeps_the_newest_checkpoint(pauses: list[float]) -> None:
    flink = StandIn(refusals=-1, checkpoint="file:/checkpoints/0f/chk-7")
    assert stop(flink) == Stopped("checkpoint", "file:/checkpoints/0f/chk-7", "CANCELED", REFUSED)
    # the checkpoint is read after the cancel: one completed while cancelling is the newest state
    assert flink.calls == ["stop_with_savepoint"] * SAVEPOINT_ATTEMPTS + ["cancel", "checkpoints"]
    assert pauses == [3.0] * (SAVEPOINT_ATTEMPTS - 1)


def test_no_savepoint_and_no_checkpoint_says_cancelled() -> None:
    flink = StandIn(savepoint_times_out=True)
    assert stop(flink, savepoint_timeout=5) == Stopped(
        "cancelled", None, "CANCELED", f"savepoint trigger-1 of job {JOB} not done after 5 s")
    assert flink.calls == ["stop_with_savepoint", "cancel", "checkpoints"]  # a timeout is not retried


def test_a_job_no_longer_active_is_not_retried_nor_cancelled_again() -> None:
    flink = StandIn(refusals=-1, checkpoint="file:/checkpoints/0f/chk-3")
    flink.wait_savepoint = _fail_and_end(flink, "FAILED")  # type: ignore[method-assign]
    assert stop(flink) == Stopped("checkpoint", "file:/checkpoints/0f/chk-3", "FAILED", REFUSED)
    assert flink.calls == ["stop_with_savepoint", "checkpoints"]


def test_without_fallback_a_failed_savepoint_raises_and_the_job_runs_on() -> None:
    flink = StandIn(refusals=-1, checkpoint="file:/checkpoints/0f/chk-7")
    with pytest.raises(FlinkRestError) as failed:
        stop(flink, fallback=False)
    assert failed.value.cause == REFUSED
    assert (flink.state, flink.calls) == ("RUNNING", ["stop_with_savepoint"] * SAVEPOINT_ATTEMPTS)


def test_the_state_sets_partition_flinks_job_states() -> None:
    every = {"INITIALIZING", "CREATED", "RUNNING", "FAILING", "FAILED", "CANCELLING", "CANCELED", "FINISHED",
             "RESTARTING", "SUSPENDED", "RECONCILING"}
    sets = (lifecycle.ACTIVE, lifecycle.TRANSITIONAL, lifecycle.TERMINAL)
    assert sum(len(s) for s in sets) == len(every) and set().union(*sets) == every
    assert lifecycle.TERMINAL is TERMINAL  # one definition, in coffee_flink.states


def _fail_and_end(flink: StandIn, final: str) -> Any:
    def wait_savepoint(job_id: str, trigger_id: str, timeout: float = 120.0) -> str:
        flink.state = final
        raise FlinkRestError("GET", f"savepoint {trigger_id}", 500, f"Caused by: {REFUSED}")

    return wait_savepoint
