"""initialSavepointPath and savepointRedeployNonce: a pipeline recreated from a savepoint, and a job
submitted again from one, without editing status by hand."""

from __future__ import annotations

from typing import Any

from operator_builders import NOW, SETTINGS, ago, job, running_status, seen, spec, target

from coffee_operator.decide import Cancel, Record, Submit, decide, summarize
from coffee_operator.observation import Observation
from coffee_operator.status import Nonces, PipelineStatus

SAVEPOINT = "file:/savepoints/savepoint-0a1b2c"


def run(status: PipelineStatus, obs: Observation, generation: int = 2, **job_fields: Any) -> list[Any]:
    actions = decide(spec(**job_fields), generation, status, obs, NOW, SETTINGS)
    return [a for a in actions if not isinstance(a, Record)]


def test_a_new_pipeline_starts_from_its_initial_savepoint() -> None:
    (submit,) = run(PipelineStatus(), seen(), generation=1, initialSavepointPath=SAVEPOINT)
    assert isinstance(submit, Submit)
    assert (submit.submission, submit.restore_path, submit.reason) == (1, SAVEPOINT, "initial")


def test_a_redeploy_nonce_present_at_creation_is_settled_by_the_first_submission() -> None:
    (submit,) = run(PipelineStatus(), seen(), generation=1, initialSavepointPath=SAVEPOINT, savepointRedeployNonce=3)
    assert (submit.restore_path, submit.nonces) == (SAVEPOINT, Nonces(redeploy=3))


def test_the_initial_savepoint_is_ignored_once_the_job_runs() -> None:
    assert run(running_status(), seen(job()), initialSavepointPath=SAVEPOINT) == []


def test_a_new_redeploy_nonce_cancels_the_job_to_resume_from_the_initial_savepoint() -> None:
    actions = run(running_status(), seen(job()), initialSavepointPath=SAVEPOINT, savepointRedeployNonce=1)
    assert actions == [Cancel("job-1", "redeploy", SAVEPOINT, "savepoint")]


def test_after_the_cancel_the_job_is_submitted_from_the_initial_savepoint_whatever_the_mode() -> None:
    status = running_status(stopped={"reason": "redeploy", "restorePath": SAVEPOINT, "restoreKind": "savepoint",
                                     "at": ago(2)})
    (submit,) = run(status, seen(job("CANCELED")), initialSavepointPath=SAVEPOINT, savepointRedeployNonce=1,
                    upgradeMode="stateless")
    assert (submit.submission, submit.restore_path, submit.reason, submit.phase) == (
        2, SAVEPOINT, "redeploy", "Redeploying")
    assert submit.nonces == Nonces(redeploy=1)
    update = summarize(spec(initialSavepointPath=SAVEPOINT, savepointRedeployNonce=1), 2, status,
                       seen(job("CANCELED")), NOW, SETTINGS)
    assert update.phase == "Redeploying"


def test_a_failed_job_with_a_new_redeploy_nonce_is_submitted_from_the_initial_savepoint() -> None:
    (submit,) = run(running_status(), seen(job("FAILED")), initialSavepointPath=SAVEPOINT, savepointRedeployNonce=1)
    assert (submit.restore_path, submit.reason, submit.target) == (SAVEPOINT, "redeploy", target())


def test_an_upgrade_does_not_settle_a_redeploy_nonce_that_came_with_it() -> None:
    status = running_status(stopped={"reason": "upgrade", "restorePath": "file:/sp/up", "restoreKind": "savepoint",
                                     "at": ago(2)})
    (submit,) = run(status, seen(job("FINISHED")), parallelism=2, initialSavepointPath=SAVEPOINT,
                    savepointRedeployNonce=1)
    assert (submit.restore_path, submit.reason, submit.nonces.redeploy) == ("file:/sp/up", "upgrade", None)


def test_a_settled_redeploy_nonce_does_nothing() -> None:
    status = running_status(nonces={"redeploy": 1})
    assert run(status, seen(job()), initialSavepointPath=SAVEPOINT, savepointRedeployNonce=1) == []
