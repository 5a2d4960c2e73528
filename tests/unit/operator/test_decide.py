"""decide(): every lifecycle transition, with no server (the function is pure)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from operator_builders import NOW, SETTINGS, ago, fp, job, running_status, seen, spec, target

from coffee_operator.decide import (
    MISSING,
    Adopt,
    Cancel,
    Dispose,
    Observation,
    Record,
    RollBack,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
    decide,
    decide_delete,
    restore_point,
    summarize,
)
from coffee_operator.spec import PipelineSpec
from coffee_operator.status import (
    KEEP,
    Checkpoint,
    CheckpointCounts,
    Condition,
    JobStatus,
    Nonces,
    PipelineStatus,
    StableSpec,
    StatusChange,
    Stopped,
    Upgrade,
    iso,
)
from coffee_operator.target import JobTarget


def run(s: PipelineSpec, status: PipelineStatus, obs: Observation, generation: int = 1,
        **settings: Any) -> list[Any]:
    return decide(s, generation, status, obs, NOW, SETTINGS.model_copy(update=settings))


def effects(actions: list[Any]) -> list[Any]:
    """The actions with an outside effect (Records only change status)."""
    return [a for a in actions if not isinstance(a, Record)]


def only(actions: list[Any]) -> Any:
    (action,) = effects(actions)
    return action


def records(actions: list[Any]) -> dict[str, Any]:
    """The status fields the Records set, typed, by their Python name (None: removed)."""
    merged: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, Record):
            merged.update(action.fields())
    return merged


def conditions(update: StatusChange) -> dict[str, tuple[str, str]]:
    assert isinstance(update.conditions, tuple)
    return {c.type: (c.status, c.reason) for c in update.conditions}


def submission(target: JobTarget, number: int = 1, generation: int = 1, restore_path: str | None = None,
               reason: str = "initial", phase: str = "Deploying", recoveries: int = 0,
               nonces: Nonces | None = None, upgrade: Upgrade | None = None) -> Submit:
    """A Submit as decide builds it for the BASE spec (allowNonRestoredState false)."""
    return Submit(submission=number, generation=generation, target=target, restore_path=restore_path,
                  reason=reason, allow_non_restored_state=False, nonces=nonces or Nonces(), upgrade=upgrade,
                  phase=phase, recoveries=recoveries)


def events(actions: list[Any]) -> list[tuple[str, str]]:
    return [(e.type, e.reason) for a in actions if isinstance(a, Record) for e in a.events]


# ---- first submission -------------------------------------------------------------------------

def test_a_new_pipeline_is_submitted_fresh_as_submission_1() -> None:
    assert run(spec(), PipelineStatus(), seen()) == [submission(target())]


def test_a_new_suspended_pipeline_submits_nothing() -> None:
    assert run(spec(state="suspended"), PipelineStatus(), seen()) == []


def test_nonces_present_at_creation_are_settled_by_the_first_submission() -> None:
    action = only(run(spec(savepointTriggerNonce=7, restartNonce=3), PipelineStatus(), seen()))
    assert (action.nonces.savepoint, action.nonces.restart) == (7, 3)


def test_nothing_is_decided_while_flink_is_unreachable() -> None:
    obs = Observation(flink_error="Flink REST at http://flink:8081: ConnectError")
    assert effects(run(spec(checkpointInterval="20s"), running_status(), obs)) == []
    update = summarize(spec(), 1, running_status(), obs, NOW, SETTINGS)
    assert conditions(update) == {"Ready": ("Unknown", "FlinkUnreachable"), "Progressing": ("False", "Stable"),
                                  "Degraded": ("True", "FlinkUnreachable")}
    assert update.error == "Flink REST at http://flink:8081: ConnectError"


# ---- a submission in flight ----------------------------------------------------------------

def _pending(**fields: Any) -> dict[str, Any]:
    base = {"submission": 2, "generation": 2, "spec": fp(parallelism=2), "reason": "upgrade",
            "restorePath": "file:/sp/1", "since": ago(10)}
    base.update(fields)
    return base


def test_a_pending_submission_is_retried_with_the_same_submission_number() -> None:
    status = running_status(submissions=2, pending=_pending(attempts=1, error="boom", retryAt=ago(1)),
                            stopped={"reason": "upgrade", "restorePath": "file:/sp/1", "restoreKind": "savepoint",
                                     "at": ago(20)})
    action = only(run(spec(parallelism=2), status, seen(job("FINISHED")), generation=2))
    assert action == submission(target(parallelism=2), 2, 2, "file:/sp/1", "upgrade", "Upgrading")


def test_a_pending_recovery_counts_once_when_accepted() -> None:
    status = running_status(submissions=2, recoveries=2,
                            pending=_pending(spec=fp(), generation=1, reason="recover", error="boom", retryAt=ago(1)))
    action = only(run(spec(), status, seen(job("FAILED"))))
    assert action == submission(target(), 2, 1, "file:/sp/1", "recover", "Deploying", recoveries=3)


def test_a_submission_flink_already_has_is_adopted_not_submitted_again() -> None:
    # The operator died after Flink accepted submission 2 and before status recorded it.
    status = running_status(submissions=2, pending=_pending())
    actions = run(spec(parallelism=2), status, seen(job("FINISHED"), known={1: "FINISHED", 2: "RUNNING"}),
                  generation=2)
    assert actions[-1:] == [Adopt(submission(target(parallelism=2), 2, 2, "file:/sp/1", "upgrade", "Upgrading"),
                                  "RUNNING")]
    assert effects(actions) == actions[-1:]


def test_a_submission_flink_accepted_despite_its_error_is_adopted_at_once_as_submitted() -> None:
    # The request timed out, yet Flink took the job: no waiting for the back-off, and what runs is the
    # pending spec even though the spec has changed since (the next reconcile upgrades it).
    status = running_status(submissions=2, pending=_pending(error="ReadTimeout", retryAt=iso(NOW + timedelta(1))))
    action = only(run(spec(parallelism=3), status, seen(job("FINISHED"), known={2: "CREATED"}), generation=3))
    assert action == Adopt(submission(target(parallelism=2), 2, 2, "file:/sp/1", "upgrade", "Upgrading"), "CREATED")


def test_a_suspended_pipeline_adopts_a_refused_submission_that_flink_has() -> None:
    status = running_status(submissions=2, pending=_pending(error="ReadTimeout", retryAt=ago(1)))
    action = only(run(spec(parallelism=2, state="suspended"), status, seen(job("FINISHED"), known={2: "RUNNING"}),
                      generation=3))
    assert isinstance(action, Adopt) and (action.submit.submission, action.state) == (2, "RUNNING")


def test_a_refused_submission_waits_for_its_back_off() -> None:
    status = running_status(submissions=2, pending=_pending(error="boom", retryAt=iso(NOW + timedelta(seconds=5))))
    assert effects(run(spec(parallelism=2), status, seen(job("FINISHED")), generation=2)) == []


def test_a_refused_submission_takes_the_newer_spec_under_the_same_id() -> None:
    status = running_status(submissions=2, pending=_pending(error="no module", retryAt=iso(NOW + timedelta(hours=1))))
    action = only(run(spec(parallelism=3), status, seen(job("FINISHED")), generation=3))
    assert action == submission(target(parallelism=3), 2, 3, "file:/sp/1", "upgrade", "Upgrading",
                                upgrade=Upgrade(generation=3, spec=target(parallelism=3), started_at=iso(NOW),
                                                restore_path="file:/sp/1"))


# ---- steady state ---------------------------------------------------------------------------

def test_a_healthy_job_with_nothing_to_do_gets_no_action() -> None:
    assert effects(run(spec(), running_status(), seen(job()))) == []


def test_the_first_healthy_run_records_the_stable_spec() -> None:
    status = running_status(lastStableSpec=None)
    assert records(run(spec(), status, seen(job())))["last_stable_spec"] == StableSpec(generation=1, spec=target())


@pytest.mark.parametrize(("completed", "running_for", "stable"), [(0, 10, False), (0, 31, True), (1, 1, True)])
def test_healthy_means_a_checkpoint_or_stable_seconds_of_running(completed: int, running_for: float,
                                                                 stable: bool) -> None:
    status = running_status(lastStableSpec=None)
    got = records(run(spec(), status, seen(job(completed=completed, running_for=running_for))))
    assert ("last_stable_spec" in got) is stable


def test_observation_is_recorded_in_job_status() -> None:
    actions = run(spec(), running_status(), seen(job(restarts=2)))
    assert actions == [Record(job_status=JobStatus(
        job_id="job-1", state="RUNNING", submission=1, running_since=ago(600), restarts=2,
        checkpoints=CheckpointCounts(completed=5),
        last_checkpoint=Checkpoint(path="file:/chk/job-1/chk-6", time=ago(5))))]


def test_only_lifecycle_fields_changed_is_no_upgrade() -> None:
    changed = spec(upgradeMode="last-state", allowNonRestoredState=True, periodicSavepointInterval="1h",
                   savepointHistory={"maxCount": 2})
    assert effects(run(changed, running_status(), seen(job()), generation=2)) == []


# ---- upgrades ---------------------------------------------------------------------------------

def test_savepoint_upgrade_stops_with_a_savepoint() -> None:
    action = only(run(spec(parallelism=2), running_status(), seen(job()), generation=2))
    assert action == StopWithSavepoint("job-1", "upgrade", 2, fallback_to_checkpoint=False)


def test_savepoint_upgrade_waits_while_the_job_is_not_running() -> None:
    assert effects(run(spec(parallelism=2), running_status(), seen(job("RESTARTING")), generation=2)) == []


def test_a_failed_upgrade_savepoint_blocks_until_the_back_off() -> None:
    blocked = {"action": "upgrade", "generation": 2, "message": "savepoint failed", "retryAt": iso(NOW + timedelta(1))}
    status = running_status(blocked=blocked)
    assert effects(run(spec(parallelism=2), status, seen(job()), generation=2)) == []
    update = summarize(spec(parallelism=2), 2, status, seen(job()), NOW, SETTINGS)
    assert isinstance(update.conditions, tuple)
    assert update.conditions[2] == Condition(type="Degraded", status="True", reason="SavepointFailed",
                                             message="savepoint failed", last_transition_time=iso(NOW),
                                             observed_generation=2)
    assert (update.observed_generation, update.error) == (2, "savepoint failed")  # seen; status says why not applied
    retry = running_status(blocked={**blocked, "retryAt": ago(1)})
    assert isinstance(only(run(spec(parallelism=2), retry, seen(job()), generation=2)), StopWithSavepoint)


def test_last_state_upgrade_cancels_and_keeps_the_checkpoint() -> None:
    action = only(run(spec(parallelism=2, upgradeMode="last-state"), running_status(), seen(job()), generation=2))
    assert action == Cancel("job-1", "upgrade", "file:/chk/job-1/chk-6", "checkpoint")


def test_last_state_suspend_whose_savepoint_failed_cancels_at_once_keeping_the_checkpoint() -> None:
    blocked = {"action": "suspend", "generation": 2, "message": "savepoint failed", "retryAt": ago(-60)}
    status = running_status(blocked=blocked)
    action = only(run(spec(upgradeMode="last-state", state="suspended"), status, seen(job()), generation=2))
    assert action == Cancel("job-1", "suspend", "file:/chk/job-1/chk-6", "checkpoint")


def test_a_taken_next_job_id_is_skipped_with_a_warning() -> None:
    status = running_status(stopped={"reason": "upgrade", "restorePath": "file:/sp/up", "restoreKind": "savepoint",
                                     "at": ago(5)})
    actions = run(spec(parallelism=2), status, seen(job("FINISHED"), known={2: "CANCELED", 3: "FAILED"}),
                  generation=2)
    submit = only(actions)
    assert (submit.submission, submit.restore_path) == (4, "file:/sp/up")
    assert events(actions) == [("Warning", "JobIdInUse")]


def test_stateless_upgrade_cancels_without_state() -> None:
    action = only(run(spec(parallelism=2, upgradeMode="stateless"), running_status(), seen(job()), generation=2))
    assert action == Cancel("job-1", "upgrade")


def _stopped(reason: str, path: str | None, kind: str = "savepoint") -> dict[str, Any]:
    return {"reason": reason, "restorePath": path, "restoreKind": kind, "at": ago(2)}


def test_after_the_upgrade_stop_the_new_spec_is_submitted_from_it() -> None:
    status = running_status(stopped=_stopped("upgrade", "file:/sp/up"))
    action = only(run(spec(parallelism=2), status, seen(job("FINISHED")), generation=2))
    assert action == submission(target(parallelism=2), 2, 2, "file:/sp/up", "upgrade", "Upgrading",
                                upgrade=Upgrade(generation=2, spec=target(parallelism=2), started_at=iso(NOW),
                                                restore_path="file:/sp/up"))


def test_after_a_stateless_stop_the_new_spec_starts_fresh() -> None:
    status = running_status(stopped=_stopped("upgrade", None, "none"))
    action = only(run(spec(parallelism=2, upgradeMode="stateless"), status, seen(job("CANCELED")), generation=2))
    assert action.restore_path is None and action.reason == "upgrade"


def test_a_last_state_stop_without_a_checkpoint_uses_the_newest_known_state() -> None:
    status = running_status(stopped=_stopped("upgrade", None, "none"))
    action = only(run(spec(parallelism=2, upgradeMode="last-state"), status, seen(job("CANCELED", checkpoint=None)),
                      generation=2))
    assert action.restore_path == "file:/chk/job-1/chk-5"  # from status.jobStatus.lastCheckpoint


def test_never_resumes_from_nothing_once_the_job_had_state() -> None:
    status = running_status(stopped=_stopped("restart", None, "none"),
                            jobStatus={"jobId": "job-1", "state": "CANCELED", "restoredFrom": None,
                                       "checkpoints": {"completed": 3}})
    actions = run(spec(), status, seen(job("CANCELED", checkpoint=None, completed=3)))
    assert effects(actions) == []
    message = ("cannot restart: no checkpoint or savepoint is known and a fresh start would reset Kafka offsets and "
               "live totals; restore one by hand (resubmit from a retained checkpoint) or recreate the pipeline")
    assert records(actions)["halted"] == message
    assert events(actions) == [("Warning", "NoRestorePoint")]
    halted = status
    for action in actions:
        halted = action.apply(halted)
    update = summarize(spec(), 1, halted, seen(), NOW, SETTINGS)
    assert conditions(update)["Degraded"] == ("True", "NoRestorePoint")
    assert update.error == message
    # Said once: the next reconcile records nothing new.
    assert run(spec(), halted, seen(job("CANCELED", checkpoint=None, completed=3))) == [Record()]


def test_a_healthy_new_spec_completes_the_upgrade() -> None:
    upgrade = {"generation": 2, "spec": fp(parallelism=2), "startedAt": ago(60), "restorePath": "file:/sp/up"}
    status = running_status(submissions=2, upgrade=upgrade,
                            deployed={"generation": 2, "spec": fp(parallelism=2), "submittedAt": ago(30)},
                            jobStatus={"jobId": "job-2", "state": "RUNNING"})
    actions = run(spec(parallelism=2), status, seen(job(job_id="job-2", completed=1)), generation=2)
    got = records(actions)
    assert (got["last_stable_spec"], got["upgrade"], got["blocked"]) == (
        StableSpec(generation=2, spec=target(parallelism=2)), None, None)
    assert events(actions) == [("Normal", "UpgradeComplete")]


# ---- rollback ---------------------------------------------------------------------------------

def _upgrading(**fields: Any) -> PipelineStatus:
    upgrade = {"generation": 2, "spec": fp(parallelism=2), "startedAt": ago(400), "restorePath": "file:/sp/up"}
    base: dict[str, Any] = {"submissions": 2, "upgrade": upgrade,
                            "deployed": {"generation": 2, "spec": fp(parallelism=2), "submittedAt": ago(350)},
                            "jobStatus": {"jobId": "job-2", "state": "RESTARTING"}}
    base.update(fields)
    return running_status(**base)


def test_a_new_spec_not_healthy_by_the_deadline_is_rolled_back() -> None:
    action = only(run(spec(parallelism=2), _upgrading(recoveries=1), seen(job("RESTARTING", job_id="job-2")),
                      generation=2))
    assert isinstance(action, RollBack)
    assert action.cancel == Cancel("job-2", "upgrade")
    assert action.submit == submission(target(), 3, 1, "file:/sp/up", "rollback", "RollingBack", recoveries=1)
    assert (action.rollback.generation, action.rollback.to_generation, action.rollback.failed_spec) == (
        2, 1, target(parallelism=2))
    assert action.rollback.message == ("generation 2 did not reach a healthy RUNNING within 300 s (job job-2 is "
                                       "RESTARTING); rolled back to generation 1 from file:/sp/up")


def test_the_deadline_counts_from_the_accepted_submission() -> None:
    status = _upgrading(deployed={"generation": 2, "spec": fp(parallelism=2), "submittedAt": ago(100)})
    assert effects(run(spec(parallelism=2), status, seen(job("RESTARTING", job_id="job-2")), generation=2)) == []


def test_a_submission_refused_until_the_deadline_is_rolled_back() -> None:
    pending = _pending(error="ModuleNotFoundError: no_such_module", attempts=4, retryAt=iso(NOW + timedelta(1)))
    status = _upgrading(pending=pending, deployed={"generation": 1, "spec": fp(), "submittedAt": ago(900)},
                        jobStatus={"jobId": "job-1", "state": "FINISHED"})
    action = only(run(spec(parallelism=2), status, seen(job("FINISHED")), generation=2))
    assert isinstance(action, RollBack) and action.cancel is None
    assert "ModuleNotFoundError: no_such_module" in action.rollback.message


def test_a_rolled_back_spec_is_not_tried_again_and_status_says_so() -> None:
    rollback = {"generation": 2, "failedSpec": fp(parallelism=2), "toGeneration": 1, "at": ago(30),
                "message": "generation 2 did not reach a healthy RUNNING"}
    status = running_status(rollback=rollback, submissions=3, jobStatus={"jobId": "job-3", "state": "RUNNING"})
    assert effects(run(spec(parallelism=2), status, seen(job(job_id="job-3")), generation=2)) == []
    update = summarize(spec(parallelism=2), 2, status, seen(job(job_id="job-3")), NOW, SETTINGS)
    assert (update.phase, update.observed_generation, update.error) == (
        "RolledBack", 2, "generation 2 did not reach a healthy RUNNING")
    assert conditions(update) == {"Ready": ("True", "Running"), "Progressing": ("False", "Stable"),
                                  "Degraded": ("True", "RolledBack")}
    # A new change is tried.
    assert isinstance(only(run(spec(parallelism=3), status, seen(job(job_id="job-3")), generation=3)),
                      StopWithSavepoint)


# ---- nonces, periodic savepoints ----------------------------------------------------------------

def test_restart_nonce_cancels_and_keeps_the_checkpoint() -> None:
    action = only(run(spec(restartNonce=1), running_status(), seen(job()), generation=2))
    assert action == Cancel("job-1", "restart", "file:/chk/job-1/chk-6", "checkpoint")


def test_restart_then_resubmits_the_same_spec_from_the_checkpoint() -> None:
    status = running_status(stopped=_stopped("restart", "file:/chk/job-1/chk-6", "checkpoint"))
    action = only(run(spec(restartNonce=1), status, seen(job("CANCELED")), generation=2))
    assert action == submission(target(), 2, 2, "file:/chk/job-1/chk-6", "restart", "Restarting",
                                nonces=Nonces(restart=1))


def test_savepoint_nonce_triggers_a_savepoint() -> None:
    action = only(run(spec(savepointTriggerNonce=4), running_status(), seen(job()), generation=2))
    assert action == TriggerSavepoint("job-1", "manual", 4)


def test_savepoint_nonce_waits_for_running() -> None:
    assert effects(run(spec(savepointTriggerNonce=4), running_status(), seen(job("RESTARTING")), generation=2)) == []


def test_periodic_savepoints_when_due() -> None:
    s = spec(periodicSavepointInterval="1h")
    assert effects(run(s, running_status(lastPeriodicSavepoint=ago(1800)), seen(job()))) == []
    assert only(run(s, running_status(lastPeriodicSavepoint=ago(3601)), seen(job()))) == TriggerSavepoint(
        "job-1", "periodic")


# ---- suspend / resume ----------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "expected"), [
    ("savepoint", StopWithSavepoint("job-1", "suspend", 2, fallback_to_checkpoint=False)),
    ("last-state", StopWithSavepoint("job-1", "suspend", 2, fallback_to_checkpoint=True)),
    ("stateless", Cancel("job-1", "suspend")),
])
def test_suspend_per_upgrade_mode(mode: str, expected: Any) -> None:
    assert only(run(spec(state="suspended", upgradeMode=mode), running_status(), seen(job()), generation=2)) == expected


def test_suspended_stays_suspended_and_says_so() -> None:
    status = running_status(stopped=_stopped("suspend", "file:/sp/s"), jobStatus={"jobId": "job-1",
                                                                                 "state": "FINISHED"})
    assert effects(run(spec(state="suspended"), status, seen(job("FINISHED")), generation=2)) == []
    update = summarize(spec(state="suspended"), 2, status, seen(job("FINISHED")), NOW, SETTINGS)
    assert update.phase == "Suspended"
    assert conditions(update)["Ready"] == ("True", "Suspended")


def test_resume_restores_from_the_suspend_savepoint() -> None:
    status = running_status(stopped=_stopped("suspend", "file:/sp/s"))
    action = only(run(spec(), status, seen(job("FINISHED")), generation=3))
    assert action == submission(target(), 2, 3, "file:/sp/s", "resume", "Deploying")


def test_resume_with_a_changed_spec_is_an_upgrade_with_a_deadline() -> None:
    status = running_status(stopped=_stopped("suspend", "file:/sp/s"))
    action = only(run(spec(parallelism=2), status, seen(job("FINISHED")), generation=3))
    assert action.upgrade is not None and action.upgrade.spec == target(parallelism=2)


def test_a_stop_for_upgrade_then_suspend_becomes_a_suspension() -> None:
    status = running_status(stopped=_stopped("upgrade", "file:/sp/up"))
    got = records(run(spec(state="suspended"), status, seen(job("FINISHED")), generation=3))
    assert got["stopped"] == Stopped(reason="suspend", restore_path="file:/sp/up", restore_kind="savepoint", at=ago(2))


# ---- failures behind the operator's back --------------------------------------------------------

def test_a_failed_job_is_resubmitted_from_its_newest_checkpoint() -> None:
    actions = run(spec(), running_status(recoveries=1, deployed={"generation": 1, "spec": fp(),
                                                                 "submittedAt": ago(600)}),
                  seen(job("FAILED", checkpoint=("file:/chk/job-1/chk-9", 3))))
    assert only(actions) == submission(target(), 2, 1, "file:/chk/job-1/chk-9", "recover", "Deploying",
                                       recoveries=2)  # counted: the next failure waits twice as long
    assert events(actions) == [("Warning", "JobLost")]


def test_a_lost_job_with_a_newer_spec_waiting_is_resubmitted_as_the_upgrade() -> None:
    """Its old spec may name what is gone with it (a Secret no longer mounted, code no longer in the
    image); submitting it only to stop it again for the upgrade would fail or waste a cycle."""
    actions = run(spec(parallelism=2), running_status(), seen(None), generation=3)
    action = only(actions)
    assert (action.target, action.generation, action.reason, action.restore_path) == (
        target(parallelism=2), 3, "upgrade", "file:/chk/job-1/chk-5")
    assert action.upgrade is not None and action.upgrade.spec == target(parallelism=2)
    assert events(actions) == [("Warning", "JobLost")]


def test_a_newer_savepoint_wins_over_an_older_checkpoint() -> None:
    obs = seen(job("CANCELED", checkpoint=("file:/chk/job-1/chk-9", 30), savepoint=("file:/sp/m", 10)))
    assert only(run(spec(), running_status(), obs)).restore_path == "file:/sp/m"


def test_a_vanished_job_is_resubmitted_from_the_checkpoint_status_remembers() -> None:
    actions = run(spec(), running_status(), seen(None))
    assert records(actions)["job_status"].state == MISSING
    assert only(actions).restore_path == "file:/chk/job-1/chk-5"


def test_a_job_that_never_had_state_is_resubmitted_fresh() -> None:
    status = running_status(jobStatus={"jobId": "job-1", "state": "RUNNING"})
    action = only(run(spec(), status, seen(job("FAILED", checkpoint=None, completed=0))))
    assert (action.reason, action.restore_path) == ("recover", None)


def test_a_job_that_failed_right_after_submission_backs_off() -> None:
    status = running_status(deployed={"generation": 1, "spec": fp(), "submittedAt": ago(10)})
    assert effects(run(spec(), status, seen(job("FAILED")))) == []


def test_a_failed_job_of_a_suspended_pipeline_is_recorded_as_suspended() -> None:
    got = records(run(spec(state="suspended"), running_status(), seen(job("FAILED")), generation=2))
    assert got["stopped"] == Stopped(reason="suspend", restore_path="file:/chk/job-1/chk-6",
                                     restore_kind="checkpoint", at=iso(NOW))


@pytest.mark.parametrize("state", ["CANCELLING", "FAILING"])
def test_transitional_states_are_waited_out(state: str) -> None:
    assert effects(run(spec(parallelism=2), running_status(), seen(job(state)), generation=2)) == []


def test_orphans_are_cancelled() -> None:
    actions = run(spec(), running_status(), seen(job(), orphans=("job-0",)))
    assert effects(actions) == [Cancel("job-0", "orphan")]


def test_restore_point_prefers_the_current_lineage() -> None:
    status = running_status(jobStatus={"jobId": "job-2", "state": "RUNNING", "restoredFrom": "file:/sps/savepoint-x",
                                       "lastSavepoint": {"path": "file:/sp/old", "time": ago(3600),
                                                         "trigger": "manual"}},
                            deployed={"generation": 1, "spec": fp(), "submittedAt": ago(60)})
    assert restore_point(status, None) == ("file:/sps/savepoint-x", "savepoint")  # the old savepoint predates this job


# ---- savepoint history ------------------------------------------------------------------------

def _history(*ages: float) -> list[dict[str, Any]]:
    return [{"path": f"file:/sp/{int(a)}", "time": ago(a), "trigger": "periodic"} for a in ages]


def test_history_beyond_max_count_is_disposed_oldest_first() -> None:
    status = running_status(savepointHistory=_history(400, 300, 200, 100))
    actions = run(spec(savepointHistory={"maxCount": 2}), status, seen(job()))
    assert [a.savepoint.path for a in effects(actions)] == ["file:/sp/400", "file:/sp/300"]


def test_history_older_than_max_age_is_disposed_but_never_the_newest() -> None:
    status = running_status(savepointHistory=_history(9000, 8000))
    actions = run(spec(savepointHistory={"maxCount": 5, "maxAge": "1h"}), status, seen(job()))
    assert [a.savepoint.path for a in effects(actions)] == ["file:/sp/9000"]


def test_a_savepoint_still_needed_for_restore_is_kept() -> None:
    status = running_status(savepointHistory=_history(400, 300, 200),
                            jobStatus={"jobId": "job-1", "state": "RUNNING", "restoredFrom": "file:/sp/400"})
    actions = run(spec(savepointHistory={"maxCount": 1}), status, seen(job()))
    assert [a.savepoint.path for a in effects(actions)] == ["file:/sp/300"]


def test_a_failed_disposal_is_retried_after_its_back_off() -> None:
    failed = [{**_history(400)[0], "disposeError": "Could not dispose", "disposeFailedAt": ago(10)},
              *_history(300, 200)]
    s = spec(savepointHistory={"maxCount": 2})
    assert effects(run(s, running_status(savepointHistory=failed), seen(job()))) == []
    failed[0]["disposeFailedAt"] = ago(301)
    assert effects(run(s, running_status(savepointHistory=failed), seen(job()))) == [
        Dispose(running_status(savepointHistory=failed).savepoint_history[0])]


# ---- delete -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["savepoint", "last-state", "stateless"])
def test_delete_takes_a_final_savepoint_of_a_running_job(mode: str) -> None:
    assert decide_delete(spec(upgradeMode=mode), running_status(), seen(job())) == [
        StopWithSavepoint("job-1", "delete", 1)]


@pytest.mark.parametrize("state", ["RESTARTING", "CREATED", "INITIALIZING"])
def test_delete_cancels_a_job_that_is_not_running(state: str) -> None:
    assert decide_delete(spec(), running_status(), seen(job(state))) == [
        Cancel("job-1", "delete")]


def test_delete_cancels_a_running_job_whose_final_savepoint_failed() -> None:
    blocked = {"action": "delete", "generation": 1, "message": "savepoint failed", "retryAt": ago(-60)}
    assert decide_delete(spec(), running_status(blocked=blocked), seen(job())) == [Cancel("job-1", "delete")]


@pytest.mark.parametrize("obs", [seen(job("FINISHED")), seen(job("FAILED")), seen(None)])
def test_delete_of_a_job_that_is_not_running_does_nothing(obs: Observation) -> None:
    assert decide_delete(spec(), running_status(), obs) == []


def test_delete_cancels_orphans_too() -> None:
    assert decide_delete(spec(), running_status(), seen(None, orphans=("job-9",))) == [
        Cancel("job-9", "orphan")]


# ---- summarize ----------------------------------------------------------------------------------

def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    first = summarize(spec(), 1, running_status(), seen(job()), NOW - timedelta(minutes=5), SETTINGS)
    second = summarize(spec(), 1, first.apply(running_status()), seen(job()), NOW, SETTINGS)
    assert isinstance(second.conditions, tuple)
    assert [c.last_transition_time for c in second.conditions] == [iso(NOW - timedelta(minutes=5))] * 3
    assert (second.phase, second.observed_generation, second.error) == ("Running", 1, KEEP)


def test_a_submitted_job_not_yet_healthy_is_deploying() -> None:
    status = running_status(lastStableSpec=None, jobStatus={"jobId": "job-1", "state": "CREATED"})
    update = summarize(spec(), 1, status, seen(job("CREATED")), NOW, SETTINGS)
    assert update.phase == "Deploying"
    assert conditions(update) == {"Ready": ("False", "Deploying"), "Progressing": ("True", "Deploying"),
                                  "Degraded": ("False", "Healthy")}


def test_a_spec_change_not_yet_applied_leaves_observed_generation_behind() -> None:
    update = summarize(spec(parallelism=2), 2, running_status(observedGeneration=1), seen(job()), NOW, SETTINGS)
    assert update.observed_generation is KEEP


def test_ingest_not_ready_keeps_ready_false() -> None:
    status = running_status(ingest={"replicas": 2, "readyReplicas": 1})
    update = summarize(spec(), 1, status, seen(job()), NOW, SETTINGS)
    assert isinstance(update.conditions, tuple)
    assert update.conditions[0] == Condition(type="Ready", status="False", reason="IngestNotReady",
                                             message="ingest has 1/2 ready replicas",
                                             last_transition_time=iso(NOW), observed_generation=1)


def test_suspending_during_a_failing_upgrade_neither_rolls_back_nor_retries() -> None:
    pending = _pending(error="ModuleNotFoundError", attempts=3, retryAt=ago(1), restorePath="file:/sp/savepoint-1")
    status = _upgrading(pending=pending, jobStatus={"jobId": "job-1", "state": "FINISHED"})
    actions = run(spec(parallelism=2, state="suspended"), status, seen(job("FINISHED")), generation=3)
    assert effects(actions) == []
    got = records(actions)
    assert (got["pending"], got["upgrade"], got["stopped"]) == (
        None, None, Stopped(reason="suspend", restore_path="file:/sp/savepoint-1", restore_kind="savepoint",
                            at=iso(NOW)))
    assert events(actions) == [("Normal", "Suspended")]


@pytest.mark.parametrize(("recoveries", "submitted_ago", "resubmits"), [
    (0, 31, True), (1, 31, False), (1, 61, True), (3, 239, False), (3, 241, True), (9, 961, True)])
def test_a_job_that_keeps_failing_is_resubmitted_with_a_growing_back_off(recoveries: int, submitted_ago: float,
                                                                          resubmits: bool) -> None:
    status = running_status(recoveries=recoveries,
                            deployed={"generation": 1, "spec": fp(), "submittedAt": ago(submitted_ago)})
    assert bool(effects(run(spec(), status, seen(job("FAILED"))))) is resubmits


def test_running_healthy_again_resets_the_back_off() -> None:
    got = records(run(spec(), running_status(recoveries=3), seen(job())))
    assert got["recoveries"] == 0
