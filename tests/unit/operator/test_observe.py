"""observe: what decide learns about our deterministic job ids, and one whole reconcile round
(observe -> decide -> act) against the recording stand-in of Flink."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from operator_builders import BASE, NOW, SETTINGS, ago, fp, running_status, target
from recording_flink import RecordingFlink

from coffee_flink import lifecycle
from coffee_operator import reconcile
from coffee_operator.act import Pipeline
from coffee_operator.decide import Event
from coffee_operator.observation import JobObservation, Observation, PointInTime
from coffee_operator.observe import observe
from coffee_operator.status import CheckpointCounts, Deployed, PipelineStatus

UID = "uid-observe"


def job_id(n: int) -> str:
    return lifecycle.job_id(UID, n)


def _pending(n: int) -> dict[str, Any]:
    return {"submission": n, "generation": 2, "spec": fp(parallelism=2), "reason": "upgrade",
            "restorePath": "file:/sp/1", "since": ago(40)}


def _status() -> PipelineStatus:
    """Job 2 is current, submission 3 is in flight."""
    return running_status(submissions=3, pending=_pending(3),
                          jobStatus={"jobId": job_id(2), "state": "FINISHED", "submission": 2})


def test_every_known_id_of_ours_is_observed_with_its_state() -> None:
    flink = RecordingFlink(states={
        job_id(1): "RUNNING",  # ours, not current: an orphan
        job_id(2): "FINISHED",  # current
        job_id(3): "RUNNING",  # the submission in flight got through
        job_id(6): "CANCELED",  # an id Flink refuses for a new job
        job_id(20): "RUNNING",  # beyond the window looked at
        "0" * 32: "RUNNING",  # somebody else's job
    }, checkpoint={job_id(2): "file:/chk/2/chk-4"})
    obs = observe(flink, UID, _status())  # type: ignore[arg-type]
    assert obs == Observation(
        job=JobObservation(job_id=job_id(2), state="FINISHED", checkpoints=CheckpointCounts(completed=1),
                           latest_checkpoint=PointInTime("file:/chk/2/chk-4",
                                                         datetime.fromtimestamp(1_773_489_000, UTC))),
        orphans=(job_id(1),),
        known={1: "RUNNING", 2: "FINISHED", 3: "RUNNING", 6: "CANCELED"},
    )
    # Being deleted, the job of the submission in flight is an orphan too.
    assert observe(flink, UID, _status(), deleting=True).orphans == tuple(  # type: ignore[arg-type]
        sorted((job_id(1), job_id(3))))


def test_an_unreachable_flink_is_an_observation_that_knows_nothing() -> None:
    class Down(RecordingFlink):
        def jobs(self) -> list[dict[str, Any]]:
            raise httpx.ConnectError("connection refused")

    obs = observe(Down(), UID, _status())  # type: ignore[arg-type]
    assert obs == Observation(flink_error="Flink REST at http://flink:8081: ConnectError: connection refused")


def test_a_round_adopts_the_submission_flink_accepted_before_the_operator_died() -> None:
    flink = RecordingFlink(states={job_id(2): "FINISHED", job_id(3): "RUNNING"})
    pipeline = Pipeline("coffee-rt", "roastery-observe", UID, _status().dump())
    patches: list[dict[str, Any]] = []
    events: list[Event] = []

    class Store:
        def patch(self, merge_patch: dict[str, Any]) -> None:
            patches.append(merge_patch)

    spec = {**BASE, "job": {**BASE["job"], "parallelism": 2}}
    reconcile.step(pipeline, spec, 2, store=Store(), secrets=lambda name, key: "", settings=SETTINGS,
                   flink=lambda url: flink, emit=events.append, now=lambda: NOW)  # type: ignore[arg-type]
    assert flink.calls == []  # nothing submitted a second time, nothing cancelled
    status = PipelineStatus.parse(pipeline.status)
    assert (status.pending, status.submissions, status.job_status.job_id, status.job_status.state) == (
        None, 3, job_id(3), "RUNNING")
    assert status.deployed == Deployed(generation=2, spec=target(parallelism=2), restore_path="file:/sp/1",
                                       submitted_at="2026-03-14T12:00:00Z")
    assert [e.message for e in events if e.reason == "JobSubmitted"] == [
        f"found job {job_id(3)} (submission 3, upgrade, generation 2) from file:/sp/1"]
