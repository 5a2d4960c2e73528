"""A new job image reaches the session cluster between the old job's savepoint and the new job's
submission (``session.py``), and a rollback waits for the old image to be back."""

from __future__ import annotations

from typing import Any

from operator_builders import NOW, SETTINGS, ago, fp, job, running_status, seen, spec, target

from coffee_operator.decide import Cancel, Record, RollBack, RollSession, StopWithSavepoint, Submit, decide
from coffee_operator.observation import Observation, SessionDeployment
from coffee_operator.status import PipelineStatus

OLD, NEW = "localhost/coffee-rt/flink:old", "localhost/coffee-rt/flink:new"
DEPLOYMENTS = ["flink-jobmanager", "flink-taskmanager"]


def deployment(name: str, image: str, settled: bool = True) -> SessionDeployment:
    return SessionDeployment(name, frozenset({image}), (name.split("-")[1],), ("config",), settled)


def cluster(jm: str, tm: str, settled: bool = True) -> tuple[SessionDeployment, ...]:
    return deployment("flink-jobmanager", jm, settled), deployment("flink-taskmanager", tm, settled)


def with_image(image: str) -> dict[str, Any]:
    return {"image": image, "sessionDeployments": DEPLOYMENTS}


def on_old_image(**fields: Any) -> PipelineStatus:
    """Job 'job-1' running the BASE spec with the old image."""
    base: dict[str, Any] = {"deployed": {"generation": 1, "spec": fp(**with_image(OLD)), "submittedAt": ago(600)},
                            "lastStableSpec": {"generation": 1, "spec": fp(**with_image(OLD))}}
    return running_status(**{**base, **fields})


def stopped_for_upgrade() -> PipelineStatus:
    return on_old_image(stopped={"reason": "upgrade", "restorePath": "file:/sp/up", "restoreKind": "savepoint",
                                 "at": ago(2)})


def run(status: PipelineStatus, obs: Observation, image: str = NEW, generation: int = 2) -> list[Any]:
    """The actions with an outside effect (Records of what was observed left out)."""
    actions = decide(spec(**with_image(image)), generation, status, obs, NOW, SETTINGS)
    return [a for a in actions if not isinstance(a, Record)]


def test_a_new_image_is_an_upgrade_that_starts_with_a_savepoint_not_with_the_deployments() -> None:
    actions = run(on_old_image(), seen(job(), session=cluster(OLD, OLD)))
    assert actions == [StopWithSavepoint("job-1", "upgrade", 2)]


def test_after_the_savepoint_the_image_is_set_on_the_deployments_that_lack_it() -> None:
    obs = seen(job("FINISHED"), session=(deployment("flink-jobmanager", NEW), deployment("flink-taskmanager", OLD)))
    actions = run(stopped_for_upgrade(), obs)
    assert actions == [RollSession(NEW, (deployment("flink-taskmanager", OLD),))]


def test_the_submission_waits_for_the_rollout() -> None:
    assert run(stopped_for_upgrade(), seen(job("FINISHED"), session=cluster(NEW, NEW, settled=False))) == []


def test_the_submission_waits_while_the_deployments_cannot_be_read() -> None:
    assert run(stopped_for_upgrade(), seen(job("FINISHED"), session=None)) == []


def test_once_rolled_out_the_new_job_is_submitted_from_the_savepoint() -> None:
    (submit,) = run(stopped_for_upgrade(), seen(job("FINISHED"), session=cluster(NEW, NEW)))
    assert isinstance(submit, Submit)
    assert (submit.target, submit.restore_path, submit.reason) == (
        target(**with_image(NEW)), "file:/sp/up", "upgrade")


def test_a_missing_deployment_is_a_warning_and_nothing_is_submitted() -> None:
    obs = seen(job("FINISHED"), session=(deployment("flink-jobmanager", NEW), SessionDeployment("flink-taskmanager")))
    actions = decide(spec(**with_image(NEW)), 2, stopped_for_upgrade(), obs, NOW, SETTINGS)
    assert [a for a in actions if not isinstance(a, Record)] == []
    assert [(e.type, e.reason, e.message) for a in actions if isinstance(a, Record) for e in a.events] == [
        ("Warning", "SessionClusterMissing", "session cluster Deployment(s) flink-taskmanager not found; the job "
                                             f"waits for them to run image {NEW}")]


def test_a_spec_without_an_image_never_waits_for_deployments() -> None:
    status = running_status(stopped={"reason": "upgrade", "restorePath": "file:/sp/up", "restoreKind": "savepoint",
                                     "at": ago(2)})
    (submit,) = [a for a in decide(spec(parallelism=2), 2, status, seen(job("FINISHED"), session=None), NOW, SETTINGS)
                 if not isinstance(a, Record)]
    assert isinstance(submit, Submit) and submit.target.image is None


def _failing_upgrade() -> PipelineStatus:
    upgrade = {"generation": 2, "spec": fp(**with_image(NEW)), "startedAt": ago(400), "restorePath": "file:/sp/up"}
    return on_old_image(submissions=2, upgrade=upgrade,
                        deployed={"generation": 2, "spec": fp(**with_image(NEW)), "submittedAt": ago(350)},
                        jobStatus={"jobId": "job-2", "state": "RESTARTING"})


def test_a_rollback_cancels_the_new_job_then_waits_for_the_old_image() -> None:
    actions = run(_failing_upgrade(), seen(job("RESTARTING", job_id="job-2"), session=cluster(NEW, NEW)))
    assert actions == [Cancel("job-2", "upgrade"), RollSession(OLD, cluster(NEW, NEW))]


def test_a_rollback_is_submitted_once_the_old_image_is_back() -> None:
    (rollback,) = run(_failing_upgrade(), seen(job("CANCELED", job_id="job-2"), session=cluster(OLD, OLD)))
    assert isinstance(rollback, RollBack) and rollback.cancel is None
    assert (rollback.submit.target, rollback.submit.restore_path) == (target(**with_image(OLD)), "file:/sp/up")
