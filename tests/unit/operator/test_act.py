"""act: every action carried out against a recording stand-in of Flink, with the status it writes,
the events it emits and the exact REST calls it makes (real Flink: tests/integration/operator).

act chooses nothing: what it writes is what the action says (phase, recoveries, adopt or submit)
plus the outcome Flink gave."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from operator_builders import NOW, SETTINGS, ago, fp, running_status, target
from prometheus_client import Counter
from recording_flink import RecordingFlink

from coffee_flink import lifecycle
from coffee_operator import metrics
from coffee_operator.act import Actor, Pipeline
from coffee_operator.decide import (
    Adopt,
    Cancel,
    Dispose,
    Event,
    Record,
    RollBack,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from coffee_operator.spec import Sinks
from coffee_operator.status import (
    Blocked,
    Deployed,
    JobStatus,
    Nonces,
    Pending,
    PipelineStatus,
    Rollback,
    Savepoint,
    Stopped,
    Upgrade,
    iso,
)
from coffee_operator.target import JobTarget

UID = "uid-1"
SECRETS = {("pg", "dsn"): "postgresql://coffee:pw@postgres:5432/coffee", ("rd", "url"): "redis://redis:6379/0"}
DECLINED = "CheckpointException: declined"
_names = itertools.count()


class World:
    """One pipeline's status store, events and Flink, as the actor sees them."""

    def __init__(self, status: PipelineStatus, flink: RecordingFlink | None = None) -> None:
        self.initial = status
        self.name = f"roastery-{next(_names)}"  # its own metric series
        self.flink = flink or RecordingFlink()
        self.patches: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.actor = Actor(
            pipeline=Pipeline("coffee-rt", self.name, UID, status.dump()),
            store=self,
            secrets=lambda name, key: SECRETS[(name, key)],
            settings=SETTINGS.model_copy(update={"flink_python_jar": "/opt/flink/flink-python.jar"}),
            rest_for=lambda url: self.flink,  # type: ignore[arg-type,return-value]
            emit=self.events.append,
            clock=lambda: NOW,
        )

    def patch(self, merge_patch: dict[str, Any]) -> None:
        self.patches.append(merge_patch)

    @property
    def status(self) -> PipelineStatus:
        return self.actor.status

    def expect(self, **fields: Any) -> PipelineStatus:
        """The status the world started with, ``fields`` changed."""
        return self.initial.model_copy(update=fields)

    def count(self, counter: Counter, *labels: str) -> float:
        value: float = counter.labels("coffee-rt", self.name, *labels)._value.get()
        return value


@pytest.fixture(autouse=True)
def _no_retry_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lifecycle pauses between savepoint attempts; the stand-in answers at once."""
    monkeypatch.setattr(lifecycle.time, "sleep", lambda seconds: None)


UPGRADE = Upgrade(generation=2, spec=target(parallelism=2), started_at=ago(5), restore_path="file:/sp/1")
LAST_SAVEPOINT = Savepoint(path="file:/sp/1", time=ago(60), trigger="upgrade")


def submit(submission: int = 2, reason: str = "upgrade", restore: str | None = "file:/sp/1", *,
           phase: str = "Upgrading", recoveries: int = 0, generation: int = 2, upgrade: Upgrade | None = None,
           nonces: Nonces | None = None, job: JobTarget | None = None) -> Submit:
    return Submit(submission=submission, generation=generation, target=job or target(), restore_path=restore,
                  reason=reason, allow_non_restored_state=False, nonces=nonces or Nonces(), upgrade=upgrade,
                  phase=phase, recoveries=recoveries)


def job_id(n: int) -> str:
    return lifecycle.job_id(UID, n)


def stopped_job(initial: PipelineStatus, **fields: Any) -> JobStatus:
    return initial.job_status.model_copy(update={"running_since": None, **fields})


# ---- Record --------------------------------------------------------------------------------------

def test_record_writes_its_fields_as_one_merge_patch_and_emits_its_events() -> None:
    world = World(running_status(recoveries=2))
    event = Event("Normal", "Noted", "something")
    assert world.actor.run(Record(phase="Running", recoveries=0, last_periodic_savepoint=iso(NOW),
                                  events=(event,))) is True
    # camelCase only here, at the status boundary; a field back at its default is removed.
    assert world.patches == [{"phase": "Running", "recoveries": None, "lastPeriodicSavepoint": "2026-03-14T12:00:00Z",
                              "revision": 1}]
    assert world.status == world.expect(phase="Running", recoveries=0, last_periodic_savepoint=iso(NOW), revision=1)
    assert world.events == [event]
    assert world.flink.calls == []


def test_a_record_that_changes_nothing_writes_nothing() -> None:
    world = World(running_status())
    event = Event("Warning", "JobLost", "job job-1 is FAILED")
    assert world.actor.run(Record(events=(event,))) is True
    assert world.actor.run(Record(submissions=1)) is True  # already so
    assert (world.patches, world.events) == ([], [event])


# ---- Submit and Adopt ----------------------------------------------------------------------------

def test_submit_writes_its_intent_first_then_the_accepted_job() -> None:
    initial = running_status(jobStatus={**running_status().job_status.dump(), "lastSavepoint": LAST_SAVEPOINT.dump()})
    world = World(initial)
    action = submit(upgrade=UPGRADE, nonces=Nonces(restart=1), job=target(parallelism=2))
    assert world.actor.run(action) is True
    assert world.flink.calls == [("run_jar", job_id(2), "file:/sp/1", 2)]
    assert world.patches[0] == {
        "pending": {"submission": 2, "generation": 2, "spec": fp(parallelism=2), "restorePath": "file:/sp/1",
                    "reason": "upgrade", "since": "2026-03-14T12:00:00Z", "attempts": 0},
        "submissions": 2, "upgrade": UPGRADE.dump(), "phase": "Upgrading", "revision": 1}
    assert world.status == world.expect(
        revision=2, submissions=2, phase="Upgrading", upgrade=UPGRADE, nonces=Nonces(restart=1),
        job_status=JobStatus(job_id=job_id(2), state="RUNNING", submission=2, restored_from="file:/sp/1",
                             last_savepoint=LAST_SAVEPOINT),
        deployed=Deployed(generation=2, spec=target(parallelism=2), restore_path="file:/sp/1",
                          submitted_at="2026-03-14T12:00:00Z"))
    assert world.events == [Event("Normal", "JobSubmitted", f"submitted job {job_id(2)} (submission 2, upgrade, "
                                                            "generation 2) from file:/sp/1")]
    assert world.count(metrics.SUBMISSIONS, "upgrade", "ok") == 1


def test_an_accepted_recovery_writes_the_count_decide_chose_and_ends_the_steps_before_it() -> None:
    initial = running_status(recoveries=2, halted="no restore point", stopped={
        "reason": "restart", "restorePath": "file:/chk/job-1/chk-5", "restoreKind": "checkpoint", "at": ago(9)},
        blocked={"action": "restart", "generation": 1, "message": "savepoint failed", "retryAt": ago(1)})
    world = World(initial, RecordingFlink(states={"job-1": "FAILED"}))
    action = submit(reason="recover", restore="file:/chk/job-1/chk-5", phase="Deploying", recoveries=3,
                    generation=1)
    assert world.actor.run(action) is True
    assert world.flink.calls == [("run_jar", job_id(2), "file:/chk/job-1/chk-5", 1)]
    assert world.status == world.expect(
        revision=2, submissions=2, phase="Deploying", recoveries=3, halted=None, stopped=None, blocked=None,
        job_status=JobStatus(job_id=job_id(2), state="RUNNING", submission=2, restored_from="file:/chk/job-1/chk-5"),
        deployed=Deployed(generation=1, spec=target(), restore_path="file:/chk/job-1/chk-5",
                          submitted_at="2026-03-14T12:00:00Z"))
    assert (world.count(metrics.SUBMISSIONS, "recover", "ok"), world.count(metrics.JOB_RESTARTS)) == (1, 1)


def test_a_retried_submission_keeps_its_first_attempt_time_and_count() -> None:
    pending = Pending(submission=2, generation=2, spec=target(), restore_path="file:/sp/1", reason="upgrade",
                      since=ago(60), attempts=2, error="boom", retry_at=ago(1))
    world = World(running_status(submissions=2, pending=pending.dump()))
    assert world.actor.run(submit()) is True
    assert world.patches[0] == {"pending": {"error": None, "retryAt": None}, "phase": "Upgrading", "revision": 1}
    assert world.flink.calls == [("run_jar", job_id(2), "file:/sp/1", 1)]
    assert (world.status.pending, world.status.job_status.job_id) == (None, job_id(2))


def test_a_refused_submission_stays_pending_with_the_error_and_a_retry_time() -> None:
    flink = RecordingFlink(run_error="org.apache.flink.runtime.rest.handler.RestHandlerException: boom\n"
                                     "Caused by: java.lang.IllegalStateException: Cannot map savepoint state")
    world = World(running_status(), flink)
    assert world.actor.run(submit()) is False
    assert flink.calls == [("run_jar", job_id(2), "file:/sp/1", 1)]
    cause = "java.lang.IllegalStateException: Cannot map savepoint state"
    assert world.status == world.expect(
        revision=2, submissions=2, phase="Upgrading",
        pending=Pending(submission=2, generation=2, spec=target(), restore_path="file:/sp/1", reason="upgrade",
                        since="2026-03-14T12:00:00Z", attempts=1, error=cause, retry_at="2026-03-14T12:00:30Z"))
    assert world.events == [Event("Warning", "SubmitFailed",
                                  f"submission 2 (upgrade) of job {job_id(2)} failed: {cause}")]
    assert world.count(metrics.SUBMISSIONS, "upgrade", "failed") == 1


def test_submit_does_not_adopt_a_job_flink_already_has() -> None:
    flink = RecordingFlink(states={"job-1": "RUNNING", job_id(2): "RUNNING"})
    world = World(running_status(), flink)
    assert world.actor.run(submit()) is False
    assert flink.calls == [("run_jar", job_id(2), "file:/sp/1", 1)]  # asked, and refused: the id is in use
    pending = world.status.pending
    assert pending is not None and (pending.attempts, pending.error) == (
        1, f"DuplicateJobSubmissionException: {job_id(2)}")
    assert world.status.job_status == world.initial.job_status


def test_a_submission_without_its_sinks_fails_before_flink_is_asked() -> None:
    world = World(running_status())
    assert world.actor.run(submit(job=target().model_copy(update={"sinks": Sinks()}))) is False
    assert world.flink.calls == []
    pending = world.status.pending
    assert pending is not None and (pending.attempts, pending.error, pending.retry_at) == (
        1, "spec.sinks.postgres.secretRef and spec.sinks.redis.secretRef are required to run the job",
        "2026-03-14T12:00:30Z")
    assert [(e.type, e.reason) for e in world.events] == [("Warning", "SubmitFailed")]


def test_adopt_records_the_job_flink_already_runs_and_asks_flink_nothing() -> None:
    pending = Pending(submission=2, generation=2, spec=target(parallelism=2), restore_path="file:/sp/1",
                      reason="upgrade", since=ago(40))
    initial = running_status(submissions=2, pending=pending.dump(), upgrade=UPGRADE.dump(), phase="Upgrading")
    world = World(initial, RecordingFlink(states={"job-1": "FINISHED", job_id(2): "RUNNING"}))
    action = Adopt(submit(upgrade=UPGRADE, job=target(parallelism=2), nonces=Nonces(restart=1)), "RUNNING")
    assert world.actor.run(action) is True
    assert world.flink.calls == []
    assert world.status == world.expect(
        revision=1, pending=None, nonces=Nonces(restart=1),
        job_status=JobStatus(job_id=job_id(2), state="RUNNING", submission=2, restored_from="file:/sp/1"),
        deployed=Deployed(generation=2, spec=target(parallelism=2), restore_path="file:/sp/1",
                          submitted_at="2026-03-14T12:00:00Z"))
    assert world.events == [Event("Normal", "JobSubmitted", f"found job {job_id(2)} (submission 2, upgrade, "
                                                            "generation 2) from file:/sp/1")]
    assert world.count(metrics.SUBMISSIONS, "upgrade", "ok") == 1


# ---- stopping --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("reason", "verb"), [("upgrade", "StoppedForUpgrade"), ("suspend", "Suspended")])
def test_stop_with_savepoint_records_the_savepoint_and_where_to_resume(reason: Any, verb: str) -> None:
    blocked = Blocked(action=reason, generation=2, message="savepoint failed", retry_at=ago(1))
    world = World(running_status(blocked=blocked.dump()), RecordingFlink(states={"job-1": "RUNNING"}))
    assert world.actor.run(StopWithSavepoint("job-1", reason, 2)) is True
    assert world.flink.calls == [("stop_with_savepoint", "job-1")]
    path = "file:/savepoints/job-1/trigger-1"
    savepoint = Savepoint(path=path, time="2026-03-14T12:00:00Z", trigger=reason)
    assert world.status == world.expect(
        revision=2, job_status=stopped_job(world.initial, state="FINISHED", last_savepoint=savepoint),
        savepoint_history=[savepoint], blocked=None,
        stopped=Stopped(reason=reason, restore_path=path, restore_kind="savepoint", at="2026-03-14T12:00:00Z"))
    assert world.events == [Event("Normal", verb, f"stopped job job-1 with savepoint {path}")]


def test_a_final_savepoint_is_recorded_with_no_resume_point() -> None:
    world = World(running_status(), RecordingFlink(states={"job-1": "RUNNING"}))
    assert world.actor.run(StopWithSavepoint("job-1", "delete", 1)) is True
    assert world.flink.calls == [("stop_with_savepoint", "job-1")]
    path = "file:/savepoints/job-1/trigger-1"
    savepoint = Savepoint(path=path, time="2026-03-14T12:00:00Z", trigger="delete")
    assert world.status == world.expect(
        revision=1, job_status=stopped_job(world.initial, state="FINISHED", last_savepoint=savepoint),
        savepoint_history=[savepoint])
    assert world.events == [Event("Normal", "StoppedForDelete", f"stopped job job-1 with savepoint {path}")]


@pytest.mark.parametrize(("reason", "fallback", "then"), [
    ("upgrade", False, "the job keeps running; retrying. Use upgradeMode last-state or stateless to go on without one"),
    ("suspend", True, "upgradeMode last-state: the job is cancelled and resumes from its latest checkpoint"),
    ("delete", False, "the job is cancelled instead, without a final savepoint"),
])
def test_a_failed_savepoint_is_written_as_blocked_and_the_job_keeps_running(reason: Any, fallback: bool,
                                                                            then: str) -> None:
    flink = RecordingFlink(states={"job-1": "RUNNING"}, savepoint_error=DECLINED)
    world = World(running_status(), flink)
    assert world.actor.run(StopWithSavepoint("job-1", reason, 2, fallback_to_checkpoint=fallback)) is False
    assert flink.calls == [("stop_with_savepoint", "job-1")] * 3  # the lifecycle's three attempts
    assert flink.states["job-1"] == "RUNNING"
    message = f"cannot {reason}: the savepoint of job job-1 failed: {DECLINED}; {then}."
    assert world.status == world.expect(revision=1, blocked=Blocked(action=reason, generation=2, message=message,
                                                                    retry_at="2026-03-14T12:01:00Z"))
    assert world.events == [Event("Warning", "SavepointFailed", message)]


@pytest.mark.parametrize(("reason", "path", "kind", "where"), [
    ("restart", "file:/chk/job-1/chk-7", "checkpoint", "; will resume from checkpoint file:/chk/job-1/chk-7"),
    ("upgrade", None, "none", ""),
])
def test_cancel_records_where_decide_said_to_resume(reason: Any, path: str | None, kind: Any, where: str) -> None:
    blocked = Blocked(action=reason, generation=2, message="savepoint failed", retry_at="2026-03-14T12:01:00Z")
    flink = RecordingFlink(states={"job-1": "RUNNING"})
    world = World(running_status(blocked=blocked.dump()), flink)
    assert world.actor.run(Cancel("job-1", reason, path, kind)) is True
    assert (flink.calls, flink.states) == ([("cancel", "job-1")], {"job-1": "CANCELED"})
    assert world.status == world.expect(
        revision=1, job_status=stopped_job(world.initial, state="CANCELED"), blocked=None,
        stopped=Stopped(reason=reason, restore_path=path, restore_kind=kind, at="2026-03-14T12:00:00Z"))
    assert world.events == [Event("Normal", "JobCancelled", f"cancelled job job-1 for {reason}{where}")]


def test_cancel_for_delete_records_the_state_and_no_resume_point() -> None:
    world = World(running_status(), RecordingFlink(states={"job-1": "RESTARTING"}))
    assert world.actor.run(Cancel("job-1", "delete")) is True
    assert world.flink.calls == [("cancel", "job-1")]
    assert world.status == world.expect(revision=1, job_status=stopped_job(world.initial, state="CANCELED"))
    assert world.events == [Event("Normal", "JobCancelled", "cancelled job job-1 for delete")]


def test_an_orphan_is_cancelled_without_touching_status() -> None:
    world = World(running_status(), RecordingFlink(states={"job-1": "RUNNING", job_id(3): "RUNNING"}))
    assert world.actor.run(Cancel(job_id(3), "orphan")) is True
    assert world.flink.calls == [("cancel", job_id(3))]
    assert (world.flink.states[job_id(3)], world.patches) == ("CANCELED", [])
    assert world.events == [Event("Warning", "OrphanCancelled",
                                  f"cancelled job {job_id(3)}: ours, but not the pipeline's current job")]


def test_a_cancel_that_does_not_finish_is_reported_and_stops_the_round() -> None:
    flink = RecordingFlink(states={"job-1": "RUNNING"}, cancel_to="CANCELLING")
    world = World(running_status(), flink)
    assert world.actor.run(Cancel("job-1", "restart", "file:/chk/job-1/chk-7", "checkpoint")) is False
    assert (flink.calls, world.patches) == ([("cancel", "job-1")], [])
    assert [(e.type, e.reason) for e in world.events] == [("Warning", "CancelFailed")]
    assert world.events[0].message.startswith("cancelling job job-1 failed: job job-1 is CANCELLING, not ")


# ---- savepoints -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("trigger", "nonce", "settled"), [
    ("manual", 4, {"nonces": Nonces(savepoint=4)}),
    ("periodic", None, {"last_periodic_savepoint": "2026-03-14T12:00:00Z"}),
])
def test_a_savepoint_is_added_to_the_history_and_settles_its_trigger(trigger: Any, nonce: int | None,
                                                                     settled: dict[str, Any]) -> None:
    world = World(running_status(), RecordingFlink(states={"job-1": "RUNNING"}))
    assert world.actor.run(TriggerSavepoint("job-1", trigger, nonce)) is True
    assert world.flink.calls == [("trigger_savepoint", "job-1")]
    path = "file:/savepoints/job-1/trigger-1"
    savepoint = Savepoint(path=path, time="2026-03-14T12:00:00Z", trigger=trigger)
    assert world.status == world.expect(
        revision=2, savepoint_history=[savepoint], **settled,
        job_status=world.initial.job_status.model_copy(update={"last_savepoint": savepoint}))
    assert world.flink.states["job-1"] == "RUNNING"
    assert world.events == [Event("Normal", "SavepointTaken", f"{trigger} savepoint of job job-1: {path}")]


@pytest.mark.parametrize(("trigger", "nonce", "settled"), [
    ("manual", 4, {"nonces": Nonces(savepoint=4)}),
    ("periodic", None, {"last_periodic_savepoint": "2026-03-14T12:00:00Z"}),
])
def test_a_failed_savepoint_is_reported_and_not_retried_at_once(trigger: Any, nonce: int | None,
                                                                settled: dict[str, Any]) -> None:
    flink = RecordingFlink(states={"job-1": "RUNNING"}, savepoint_error=DECLINED)
    world = World(running_status(), flink)
    assert world.actor.run(TriggerSavepoint("job-1", trigger, nonce)) is True
    assert flink.calls == [("trigger_savepoint", "job-1")] * 3
    assert world.status == world.expect(revision=1, **settled)
    assert world.events == [Event("Warning", "SavepointFailed", f"{trigger} savepoint of job job-1 failed: {DECLINED}")]


def _history() -> tuple[Savepoint, Savepoint]:
    old, new = (Savepoint(path=f"file:/sp/{n}", time=f"2026-03-1{n}T00:00:00Z", trigger="periodic") for n in (1, 2))
    return old, new


def test_dispose_removes_the_savepoint_from_the_history() -> None:
    old, new = _history()
    flink = RecordingFlink(states={"job-1": "RUNNING"})
    world = World(running_status(savepointHistory=[old.dump(), new.dump()]), flink)
    assert world.actor.run(Dispose(old)) is True
    assert world.flink.calls == [("dispose", "file:/sp/1")]
    assert world.status == world.expect(revision=1, savepoint_history=[new])
    assert world.events == [Event("Normal", "SavepointDisposed", "disposed of savepoint file:/sp/1 (periodic)")]


def test_a_failed_disposal_keeps_the_savepoint_with_its_error() -> None:
    old, new = _history()
    flink = RecordingFlink(states={"job-1": "RUNNING"}, dispose_error="java.io.IOException: permission denied")
    world = World(running_status(savepointHistory=[old.dump(), new.dump()]), flink)
    assert world.actor.run(Dispose(old)) is True
    assert flink.calls == [("dispose", "file:/sp/1")]
    failed = old.model_copy(update={"dispose_error": "java.io.IOException: permission denied",
                                    "dispose_failed_at": "2026-03-14T12:00:00Z"})
    assert world.status == world.expect(revision=1, savepoint_history=[failed, new])
    assert world.events == [Event("Warning", "SavepointDisposalFailed",
                                  "could not dispose of savepoint file:/sp/1: java.io.IOException: permission denied; "
                                  "kept in the history")]


# ---- rollback ----------------------------------------------------------------------------------------

def _rollback() -> Rollback:
    return Rollback(generation=2, failed_spec=target(parallelism=2), to_generation=1, at="2026-03-14T12:00:00Z",
                    message="generation 2 did not reach a healthy RUNNING")


def test_roll_back_cancels_the_new_job_and_resubmits_the_stable_spec() -> None:
    flink = RecordingFlink(states={"job-1": "RESTARTING"})
    world = World(running_status(upgrade=UPGRADE.dump()), flink)
    action = RollBack(cancel=Cancel("job-1", "upgrade"), rollback=_rollback(),
                      submit=submit(reason="rollback", phase="RollingBack", generation=1))
    assert world.actor.run(action) is True
    assert flink.calls == [("cancel", "job-1"), ("run_jar", job_id(2), "file:/sp/1", 1)]
    assert world.status == world.expect(
        revision=4, submissions=2, phase="RollingBack", upgrade=None, rollback=_rollback(),
        job_status=JobStatus(job_id=job_id(2), state="RUNNING", submission=2, restored_from="file:/sp/1"),
        deployed=Deployed(generation=1, spec=target(), restore_path="file:/sp/1", submitted_at="2026-03-14T12:00:00Z"))
    assert world.events == [
        Event("Normal", "JobCancelled", "cancelled job job-1 for upgrade"),
        Event("Warning", "RolledBack", "generation 2 did not reach a healthy RUNNING"),
        Event("Normal", "JobSubmitted", f"submitted job {job_id(2)} (submission 2, rollback, generation 1) "
                                        "from file:/sp/1"),
    ]
    assert world.count(metrics.ROLLBACKS) == 1


def test_roll_back_with_no_job_running_only_resubmits() -> None:
    world = World(running_status(upgrade=UPGRADE.dump()), RecordingFlink(states={"job-1": "FINISHED"}))
    action = RollBack(cancel=None, rollback=_rollback(),
                      submit=submit(reason="rollback", phase="RollingBack", generation=1))
    assert world.actor.run(action) is True
    assert world.flink.calls == [("run_jar", job_id(2), "file:/sp/1", 1)]
    assert (world.status.rollback, world.status.upgrade, world.status.job_status.job_id) == (
        _rollback(), None, job_id(2))


def test_a_roll_back_whose_cancel_fails_writes_nothing_and_submits_nothing() -> None:
    flink = RecordingFlink(states={"job-1": "RESTARTING"}, cancel_to="CANCELLING")
    world = World(running_status(upgrade=UPGRADE.dump()), flink)
    action = RollBack(cancel=Cancel("job-1", "upgrade"), rollback=_rollback(),
                      submit=submit(reason="rollback", phase="RollingBack", generation=1))
    assert world.actor.run(action) is False
    assert (flink.calls, world.patches) == ([("cancel", "job-1")], [])
    assert [(e.type, e.reason) for e in world.events] == [("Warning", "CancelFailed")]
    assert world.count(metrics.ROLLBACKS) == 0
