"""The whole job lifecycle as one pure function: ``decide(spec, generation, status, observation, now)``.

No servers, no clock, no I/O: given what the resource asks for, what the operator remembers
(status) and what Flink says now (observation), return the next actions. Every choice is made
here and carried by a frozen action (which job id, from which state, the phase while it is in
flight, the recovery count, whether a job Flink already has is adopted rather than submitted);
``act`` only carries the actions out and writes their results to status; the next reconcile sees
those and takes the next step. A multi-step transition (stop with a savepoint, then resubmit
from it) is therefore a sequence of durable steps, safe across operator restarts.

The rules that matter most:
- savepoint mode never falls back silently: no savepoint, no stop (the job keeps running and
  status says why);
- a failed or vanished job is resubmitted from its newest checkpoint or savepoint, never from
  nothing once it had state (that would reset Kafka offsets and the live totals);
- a new spec that does not reach a healthy RUNNING before the deadline is rolled back to the last
  good spec from the state it was upgraded from;
- an active job that is ours but not the current one (a lost status write) is cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from coffee_flink.lifecycle import ACTIVE, TERMINAL, TRANSITIONAL
from coffee_operator import rebuild as rebuild_rules
from coffee_operator import session
from coffee_operator.children import job_calendar
from coffee_operator.observation import JobObservation, Observation, PointInTime
from coffee_operator.session import RollSession
from coffee_operator.settings import OperatorSettings
from coffee_operator.spec import PipelineSpec, duration_seconds
from coffee_operator.status import (
    KEEP,
    Checkpoint,
    Condition,
    Keep,
    Nonces,
    PipelineStatus,
    RebuildStatus,
    Rollback,
    Savepoint,
    StableSpec,
    StatusChange,
    Stopped,
    Upgrade,
    iso,
    parse_time,
)
from coffee_operator.target import JobTarget

MISSING = "MISSING"  # our job id is unknown to Flink (cluster restarted, history expired)

UpgradeMode = Literal["stateless", "savepoint", "last-state"]


# ---- actions (carried out by act.py) ---------------------------------------------------------

@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Record(StatusChange):
    """A status change with no outside effect, and the events that explain it. The fields are
    ``StatusChange``'s, typed (KEEP: untouched, None: removed); act turns them into JSON."""

    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Submit:
    """Submit ``target`` as job ``submission`` (its deterministic id), writing the intent first."""

    submission: int
    generation: int
    target: JobTarget
    restore_path: str | None
    reason: str  # initial, resume, upgrade, restart, recover, rollback
    allow_non_restored_state: bool
    nonces: Nonces  # the nonces this submission settles
    upgrade: Upgrade | None  # the upgrade this submission starts or continues; None ends one
    phase: str  # status.phase while the submission is in flight
    recoveries: int  # status.recoveries once Flink has accepted it (one more for a recovery: its back-off)
    startup_ms: int | None = None  # without state, its Kafka source starts here (else the group's offsets)
    rebuild: RebuildStatus | None = None  # status.rebuild once Flink has accepted it (a live rebuild's replay)


@dataclass(frozen=True)
class Adopt:
    """The submission in flight got through (Flink knows its job id: the operator died, or the
    request timed out, after Flink accepted it): record it as accepted, never submit it again
    (Flink would refuse the id). ``submit`` is that submission as status remembers it."""

    submit: Submit
    state: str  # Flink's state of the job


@dataclass(frozen=True)
class StopWithSavepoint:
    job_id: str
    reason: Literal["upgrade", "suspend", "delete", "rebuild"]
    generation: int
    fallback_to_checkpoint: bool = False  # last-state only: cancel and keep the latest checkpoint


@dataclass(frozen=True)
class Cancel:
    job_id: str
    reason: Literal["upgrade", "suspend", "restart", "orphan", "delete", "redeploy"]
    resume_from: str | None = None  # where the next submission resumes (recorded in status.stopped)
    resume_kind: Literal["checkpoint", "savepoint", "none"] = "none"


@dataclass(frozen=True)
class TriggerSavepoint:
    job_id: str
    trigger: Literal["manual", "periodic"]
    nonce: int | None = None


@dataclass(frozen=True)
class Dispose:
    savepoint: Savepoint


@dataclass(frozen=True)
class RollBack:
    """Cancel the new spec's job (when it is active), record the rollback, submit the last good spec."""

    cancel: Cancel | None
    submit: Submit
    rollback: Rollback


@dataclass(frozen=True)
class CreateRebuildJob:
    """Create the Kubernetes Job that runs rebuild ``rebuild.nonce`` (``rebuild.job`` names it, one name per
    nonce: creating it again after a lost status write finds the first), then write ``rebuild`` to status.
    ``spec`` is the pipeline's, for the Job's image, topic and Secrets."""

    spec: PipelineSpec
    rebuild: RebuildStatus


Action = (Record | Submit | Adopt | StopWithSavepoint | Cancel | TriggerSavepoint | Dispose | RollBack
          | CreateRebuildJob | RollSession)


# ---- helpers ---------------------------------------------------------------------------------

def submitting_phase(reason: str) -> str:
    """status.phase while a submission for ``reason`` is in flight."""
    return {"rollback": "RollingBack", "upgrade": "Upgrading", "restart": "Restarting",
            "rebuild": "Rebuilding", "redeploy": "Redeploying"}.get(reason, "Deploying")


def healthy(job: JobObservation | None, now: datetime, settings: OperatorSettings) -> bool:
    """RUNNING and proven: a checkpoint completed, or running steadily for ``stable_seconds``."""
    if job is None or job.state != "RUNNING":
        return False
    if job.checkpoints.completed >= 1:
        return True
    return job.running_since is not None and (now - job.running_since).total_seconds() >= settings.stable_seconds


def restore_point(status: PipelineStatus, job: JobObservation | None) -> tuple[str | None, str]:
    """The newest state of the current job's lineage: (path, kind), kind checkpoint | savepoint |
    none. ``none`` with a path of None means the lineage never had state (a fresh start loses nothing)."""
    points: list[tuple[datetime, str, str]] = []
    if job is not None:
        if job.latest_checkpoint:
            points.append((job.latest_checkpoint.time, job.latest_checkpoint.path, "checkpoint"))
        if job.latest_savepoint:
            points.append((job.latest_savepoint.time, job.latest_savepoint.path, "savepoint"))
    js = status.job_status
    if js.last_checkpoint and (when := parse_time(js.last_checkpoint.time)):
        points.append((when, js.last_checkpoint.path, "checkpoint"))
    submitted = parse_time(status.deployed.submitted_at) if status.deployed else None
    if js.last_savepoint and (when := parse_time(js.last_savepoint.time)) and (submitted is None or when >= submitted):
        points.append((when, js.last_savepoint.path, "savepoint"))
    if points:
        _, path, kind = max(points, key=lambda p: p[0])
        return path, kind
    if js.restored_from:
        return js.restored_from, "savepoint" if "savepoint" in js.restored_from else "checkpoint"
    return None, "none"


def _after(moment: str | None, seconds: float, now: datetime) -> bool:
    """True when ``seconds`` have passed since ``moment`` (or there is no moment)."""
    when = parse_time(moment)
    return when is None or now >= when + timedelta(seconds=seconds)


def _not_before(moment: str | None, now: datetime) -> bool:
    when = parse_time(moment)
    return when is not None and now < when


# ---- the observation folded into status ------------------------------------------------------

def observed_update(status: PipelineStatus, obs: Observation) -> Record | None:
    """A Record of what was observed (jobStatus, ingest) when it differs from status, else None."""
    ingest = obs.ingest if obs.ingest is not None and obs.ingest != status.ingest else KEEP
    if obs.flink_error is not None:
        return Record(ingest=ingest) if ingest is not KEEP else None
    js = status.job_status
    job = obs.job
    if job is not None and job.job_id == js.job_id:
        new = js.model_copy(update={
            "state": job.state,
            "running_since": iso(job.running_since) if job.running_since else None,
            "restarts": job.restarts,
            "checkpoints": job.checkpoints,
            "last_checkpoint": (Checkpoint(path=job.latest_checkpoint.path, time=iso(job.latest_checkpoint.time))
                                if job.latest_checkpoint else js.last_checkpoint),
            "restored_from": job.restored_from or js.restored_from,
            "exception": job.exception,
        })
    elif js.job_id and status.stopped is None and status.pending is None:
        new = js.model_copy(update={"state": MISSING, "running_since": None})
    else:
        new = js
    job_status = new if new != js else KEEP
    if ingest is KEEP and job_status is KEEP:
        return None
    return Record(ingest=ingest, job_status=job_status)


# ---- the decision ----------------------------------------------------------------------------

def decide(
    spec: PipelineSpec,
    generation: int,
    status: PipelineStatus,
    obs: Observation,
    now: datetime,
    settings: OperatorSettings,
) -> list[Action]:
    return _through_session(spec, _decide(spec, generation, status, obs, now, settings), obs)


def _through_session(spec: PipelineSpec, actions: list[Action], obs: Observation) -> list[Action]:
    """A submission waits until the session cluster runs its target's image (``session.py``): the image
    is set, or its rollout awaited, instead; what came after the submission waits with it."""
    out: list[Action] = []
    for action in actions:
        submit = action if isinstance(action, Submit) else action.submit if isinstance(action, RollBack) else None
        image = submit.target.image if submit is not None else None
        step = session.before_submit(image, spec.job.session_deployments, obs.session) if image else None
        if step is None:
            out.append(action)
            continue
        if isinstance(action, RollBack) and action.cancel is not None:
            out.append(action.cancel)  # the failed new job stops now; its rollback waits for the old image
        if isinstance(step, RollSession):
            out.append(step)
        elif step.problem:
            out.append(Record(events=(Event("Warning", "SessionClusterMissing", step.problem),)))
        break
    return out


def _decide(
    spec: PipelineSpec,
    generation: int,
    status: PipelineStatus,
    obs: Observation,
    now: datetime,
    settings: OperatorSettings,
) -> list[Action]:
    actions: list[Action] = []
    observed = observed_update(status, obs)
    if observed is not None:
        actions.append(observed)
        status = observed.apply(status)
    for action in decide_rebuild(spec, status, obs, now, settings):
        actions.append(action)
        if isinstance(action, Record):
            status = action.apply(status)
    if obs.flink_error is not None:
        return actions  # nothing is decided blind; summarize() reports it

    actions.extend(Cancel(job_id, "orphan") for job_id in obs.orphans)
    target = JobTarget.of(spec)
    desired = spec.job.state
    mode: UpgradeMode = spec.job.upgrade_mode
    job = obs.job if obs.job is not None and obs.job.job_id == status.job_status.job_id else None
    state = job.state if job else None
    is_healthy = healthy(job, now, settings)

    # 1. A new spec that missed its deadline goes back to the last good one.
    upgrade, stable = status.upgrade, status.last_stable_spec
    if (upgrade is not None and stable is not None and stable.spec != upgrade.spec and not is_healthy
            and desired == "running" and _after(_deadline_start(status), settings.upgrade_deadline_seconds, now)):
        return [*actions, *_rollback(spec, generation, status, job, obs.known, now, settings)]

    # 2. A submission in flight: adopt it if Flink has it, else (re)try it with the same job id.
    pending = status.pending
    if pending is not None:
        retry = Submit(submission=pending.submission, generation=pending.generation, target=pending.spec,
                       restore_path=pending.restore_path, reason=pending.reason,
                       allow_non_restored_state=spec.job.allow_non_restored_state,
                       nonces=_nonces(spec, status, pending.reason), upgrade=status.upgrade,
                       phase=submitting_phase(pending.reason),
                       recoveries=_recoveries(status, pending.reason), startup_ms=pending.startup_ms,
                       rebuild=_replay_submitted(status) if pending.reason == "rebuild" else None)
        accepted = obs.known.get(pending.submission)
        if accepted is not None:
            # It got through: what runs is pending.spec, whatever the spec says now (a change since is
            # the next reconcile's upgrade), and whatever its error says (a timed-out request).
            return [*actions, Adopt(retry, accepted)]
        if pending.error and desired == "suspended":
            # Flink refused it, so nothing runs: suspended, resuming from where that submission would have.
            kind = "none" if pending.restore_path is None else (
                "savepoint" if "savepoint" in pending.restore_path else "checkpoint")
            return [*actions, Record(
                pending=None, upgrade=None,
                stopped=Stopped(reason="suspend", restore_path=pending.restore_path, restore_kind=kind, at=iso(now)),
                events=(Event("Normal", "Suspended", f"submission {pending.submission} was refused "
                                                     f"({pending.error[:200]}); suspended instead"),))]
        if (pending.error and pending.spec != target and desired == "running"
                and pending.reason in ("initial", "upgrade", "resume")):
            # Flink refused it and the spec has changed since: submit the new spec under the same id.
            return [*actions, *_submit(spec, generation, status, target, pending.restore_path, pending.reason, now,
                                      submission=pending.submission)]
        if _not_before(pending.retry_at, now):
            return actions
        return [*actions, retry]

    if state in TRANSITIONAL:
        return actions  # cancelling or failing over: wait for Flink to settle

    # 3. Never submitted.
    if status.job_status.job_id is None or status.deployed is None:
        if desired == "running":
            actions.extend(_submit(spec, generation, status, target, spec.job.initial_savepoint_path, "initial", now,
                                   known=obs.known))
        return actions

    # 4. The job is not running: we stopped it, or it failed / vanished behind our back.
    if state not in ACTIVE:
        if _redeploy_due(spec, status) and status.stopped is None and desired == "running":
            return actions + _submit(spec, generation, status, target, spec.job.initial_savepoint_path, "redeploy",
                                     now, known=obs.known)
        return actions + _after_stop(spec, generation, status, job, target, mode, obs.known, now, settings)

    # 5. The job is active.
    assert job is not None
    if upgrade is not None and is_healthy:
        done = Record(upgrade=None, blocked=None,
                      last_stable_spec=StableSpec(generation=upgrade.generation, spec=upgrade.spec),
                      events=(Event("Normal", "UpgradeComplete",
                                    f"generation {upgrade.generation} is running healthy as job {job.job_id}"),))
        actions.append(done)
        status = done.apply(status)
    elif upgrade is not None and desired == "running" and target == upgrade.spec:
        return actions  # waiting for the new spec to prove itself (or for the deadline)

    if desired == "suspended":
        return actions + _stop(job, "suspend", mode, generation, status, now)

    assert status.deployed is not None
    rolled_back = status.rollback is not None and status.rollback.failed_spec == target
    if status.deployed.spec != target and not rolled_back:
        return actions + _stop(job, "upgrade", mode, generation, status, now)

    rebuild = status.rebuild
    if rebuild is not None and rebuild.phase == "Running" and rebuild.step == "stop":
        return actions + _stop_for_rebuild(job, generation, status, now)

    if _redeploy_due(spec, status):
        return [*actions, Cancel(job.job_id, "redeploy", spec.job.initial_savepoint_path, "savepoint")]

    if spec.job.restart_nonce is not None and spec.job.restart_nonce != status.nonces.restart:
        return [*actions, _cancel(job, "restart", status, keep_state=mode != "stateless")]

    if state == "RUNNING":
        nonce = spec.job.savepoint_trigger_nonce
        if nonce is not None and nonce != status.nonces.savepoint:
            actions.append(TriggerSavepoint(job.job_id, "manual", nonce))
        elif _periodic_due(spec, status, now):
            actions.append(TriggerSavepoint(job.job_id, "periodic"))

    if is_healthy and status.recoveries:
        actions.append(Record(recoveries=0))
    if is_healthy and status.upgrade is None and (stable is None or stable.spec != status.deployed.spec):
        actions.append(Record(last_stable_spec=StableSpec(generation=status.deployed.generation,
                                                          spec=status.deployed.spec)))
    actions.extend(prune(spec, status, now, settings))
    return actions


def _deadline_start(status: PipelineStatus) -> str | None:
    """The deadline runs from the new spec's accepted submission (a submission itself takes tens of
    seconds), or from the start of the upgrade while Flink keeps refusing it."""
    upgrade, deployed = status.upgrade, status.deployed
    assert upgrade is not None
    if deployed is not None and deployed.spec == upgrade.spec and deployed.submitted_at > upgrade.started_at:
        return deployed.submitted_at
    return upgrade.started_at


def _nonces(spec: PipelineSpec, status: PipelineStatus, reason: str = "") -> Nonces:
    """Nonces a submission settles: any submission is a restart; a savepoint or redeploy nonce already
    set when the pipeline is created asks for nothing more; only a redeploy (from initialSavepointPath)
    settles a new redeploy nonce."""
    first = not status.submissions
    savepoint = spec.job.savepoint_trigger_nonce if first else status.nonces.savepoint
    redeploy = spec.job.savepoint_redeploy_nonce if first or reason == "redeploy" else status.nonces.redeploy
    return Nonces(savepoint=savepoint, restart=spec.job.restart_nonce, redeploy=redeploy)


def _redeploy_due(spec: PipelineSpec, status: PipelineStatus) -> bool:
    """A new savepointRedeployNonce (with initialSavepointPath, as the CRD requires): submit from that savepoint."""
    nonce = spec.job.savepoint_redeploy_nonce
    return (nonce is not None and spec.job.initial_savepoint_path is not None and nonce != status.nonces.redeploy
            and status.submissions > 0)


def _recoveries(status: PipelineStatus, reason: str) -> int:
    """status.recoveries once a submission for ``reason`` is accepted: a recovery counts (it sets
    the back-off of the next one), any other submission leaves the count as it is."""
    return status.recoveries + 1 if reason == "recover" else status.recoveries


def _next_submission(status: PipelineStatus, known: Mapping[int, str]) -> tuple[int, tuple[Event, ...]]:
    """The next submission number whose job id Flink does not know yet (an earlier job with the next
    id, cancelled as an orphan, still sits in Flink's history and would refuse a second one)."""
    submission = status.submissions + 1
    while submission in known:
        submission += 1
    if submission == status.submissions + 1:
        return submission, ()
    return submission, (Event("Warning", "JobIdInUse", f"Flink already knows the job id of submission "
                                                       f"{status.submissions + 1}; using submission {submission}"),)


def _submit(spec: PipelineSpec, generation: int, status: PipelineStatus, job_spec: JobTarget,
            restore: str | None, reason: str, now: datetime, submission: int | None = None,
            known: Mapping[int, str] | None = None, startup_ms: int | None = None,
            rebuild: RebuildStatus | None = None) -> list[Action]:
    """A submission of ``job_spec`` (a Record warning first when the next job id is taken)."""
    events: tuple[Event, ...] = ()
    if submission is None:
        submission, events = _next_submission(status, known or {})
    stable = status.last_stable_spec
    upgrade = status.upgrade
    if upgrade is None and stable is not None and stable.spec != job_spec:
        upgrade = Upgrade(generation=generation, spec=job_spec, started_at=iso(now), restore_path=restore)
    elif upgrade is not None and upgrade.spec != job_spec:
        upgrade = Upgrade(generation=generation, spec=job_spec, started_at=iso(now), restore_path=restore)
    submit = Submit(submission=submission, generation=generation, target=job_spec, restore_path=restore,
                    reason=reason, allow_non_restored_state=spec.job.allow_non_restored_state,
                    nonces=_nonces(spec, status, reason), upgrade=upgrade, phase=submitting_phase(reason),
                    recoveries=_recoveries(status, reason), startup_ms=startup_ms, rebuild=rebuild)
    return [Record(events=events), submit] if events else [submit]


def _cancel(job: JobObservation, reason: Literal["upgrade", "suspend", "restart"], status: PipelineStatus,
            keep_state: bool) -> Cancel:
    """Cancel the job; with ``keep_state`` the next submission resumes from its newest state."""
    if not keep_state:
        return Cancel(job.job_id, reason)
    path, kind = restore_point(status, job)
    return Cancel(job.job_id, reason, path, kind if path else "none")  # type: ignore[arg-type]


def _stop(job: JobObservation, reason: Literal["upgrade", "suspend"], mode: UpgradeMode, generation: int,
          status: PipelineStatus, now: datetime) -> list[Action]:
    """Stop the job for ``reason`` the way ``mode`` says."""
    if mode == "stateless":
        return [_cancel(job, reason, status, keep_state=False)]
    if mode == "last-state" and reason == "upgrade":
        return [_cancel(job, reason, status, keep_state=True)]
    blocked = status.blocked
    if blocked is not None and blocked.action == reason and blocked.generation == generation:
        if mode == "last-state":
            return [_cancel(job, reason, status, keep_state=True)]  # no savepoint: the checkpoint will do
        if _not_before(blocked.retry_at, now):
            return []  # the last savepoint failed; status says so; retry after the back-off
    if job.state != "RUNNING":
        return []  # Flink takes savepoints of running jobs only: wait (restarts heal or fail)
    return [StopWithSavepoint(job.job_id, reason, generation, fallback_to_checkpoint=mode == "last-state")]


def _after_stop(spec: PipelineSpec, generation: int, status: PipelineStatus, job: JobObservation | None,
                target: JobTarget, mode: UpgradeMode, known: Mapping[int, str], now: datetime,
                settings: OperatorSettings) -> list[Action]:
    desired = spec.job.state
    stopped = status.stopped
    assert status.deployed is not None
    if stopped is not None:
        if desired == "suspended":
            if stopped.reason != "suspend":
                return [Record(stopped=stopped.model_copy(update={"reason": "suspend"}))]
            return []
        replay = _replay_submitted(status)
        if stopped.reason == "rebuild" and replay is not None:
            # The live rebuild: the same job, without state, its source from the day's first instant.
            return _submit(spec, status.deployed.generation, status, status.deployed.spec, None, "rebuild", now,
                           known=known, startup_ms=replay.replay_from_ms, rebuild=replay)
        reason = {"suspend": "resume", "upgrade": "upgrade", "restart": "restart",
                  "rebuild": "restart"}.get(stopped.reason, stopped.reason)
        if reason == "redeploy":
            return _submit(spec, generation, status, target, stopped.restore_path, reason, now, known=known)
        if mode == "stateless":
            return _submit(spec, generation, status, target, None, reason, now, known=known)
        path = stopped.restore_path
        if path is None:
            path, _ = restore_point(status, job)
        if path is None and _had_state(status):
            return [_no_restore_point(status, f"cannot {reason}")]
        return _submit(spec, generation, status, target, path, reason, now, known=known)

    # Not stopped by us: FAILED, CANCELED or FINISHED behind our back, or gone from Flink.
    what = f"job {status.job_status.job_id} is {job.state if job else 'gone from Flink'}"
    path, kind = restore_point(status, job)
    if desired == "suspended":
        return [Record(stopped=Stopped(reason="suspend", restore_path=path, restore_kind=kind, at=iso(now)),
                       events=(Event("Normal", "Suspended",
                                     f"{what}; suspended, will resume from {path or 'nothing'}"),))]
    backoff = settings.submit_retry_seconds * 2 ** min(status.recoveries, 5)
    if not _after(status.deployed.submitted_at, backoff, now):
        return []  # a job that keeps failing is resubmitted less and less often (30 s, 1 min, ... 16 min)
    if path is None and _had_state(status):
        return [_no_restore_point(status, f"{what}; cannot resubmit")]
    rolled_back = status.rollback is not None and status.rollback.failed_spec == target
    if status.deployed.spec != target and not rolled_back and status.deployed.startup_ms is None:
        # A newer spec waits: submit it from the restore point as the upgrade. The old spec may name
        # what went away with the job (a Secret no longer mounted, code no longer in the image).
        lost = Event("Warning", "JobLost", f"{what}; submitting generation {generation} from {kind} {path}"
                     if path else f"{what}; it never had state, submitting generation {generation} fresh")
        return [Record(events=(lost,)), *_submit(spec, generation, status, target, path, "upgrade", now,
                                                 known=known)]
    # A job that never had state started where its deployment said (a live rebuild's replay: from the
    # day's first instant, not from the group's offsets); so does its resubmission.
    submit = _submit(spec, status.deployed.generation, status, status.deployed.spec, path, "recover", now,
                     known=known, startup_ms=status.deployed.startup_ms if path is None else None)
    return [Record(events=(Event("Warning", "JobLost",
                                 f"{what}; resubmitting from {kind} {path}" if path else
                                 f"{what}; it never had state, resubmitting it fresh"),)), *submit]


def _had_state(status: PipelineStatus) -> bool:
    """Whether the job's lineage ever had state that a fresh start would lose."""
    js = status.job_status
    return bool(js.restored_from or js.last_checkpoint or js.checkpoints.completed
                or (status.deployed and status.deployed.restore_path))


def _no_restore_point(status: PipelineStatus, what: str) -> Record:
    message = (f"{what}: no checkpoint or savepoint is known and a fresh start would reset Kafka offsets and "
               "live totals; restore one by hand (resubmit from a retained checkpoint) or recreate the pipeline")
    if status.halted == message:
        return Record()
    return Record(halted=message, events=(Event("Warning", "NoRestorePoint", message),))


def _rollback(spec: PipelineSpec, generation: int, status: PipelineStatus, job: JobObservation | None,
              known: Mapping[int, str], now: datetime, settings: OperatorSettings) -> list[Action]:
    upgrade, stable = status.upgrade, status.last_stable_spec
    assert upgrade is not None and stable is not None
    why = status.pending.error if status.pending and status.pending.error else (
        f"job {job.job_id} is {job.state}" if job else "no job is running")
    message = (f"generation {upgrade.generation} did not reach a healthy RUNNING within "
               f"{settings.upgrade_deadline_seconds:.0f} s ({why}); rolled back to generation {stable.generation} "
               f"from {upgrade.restore_path or 'a fresh start'}")
    submission, events = _next_submission(status, known)
    submit = Submit(submission=submission, generation=stable.generation, target=stable.spec,
                    restore_path=upgrade.restore_path, reason="rollback",
                    allow_non_restored_state=spec.job.allow_non_restored_state, nonces=_nonces(spec, status),
                    upgrade=None, phase=submitting_phase("rollback"), recoveries=_recoveries(status, "rollback"))
    # The new spec's job is stopped with no state kept: the rollback resumes from where the upgrade began.
    cancel = Cancel(job.job_id, "upgrade") if job is not None and job.state in ACTIVE | TRANSITIONAL else None
    rollback = RollBack(cancel=cancel, submit=submit,
                        rollback=Rollback(generation=upgrade.generation, failed_spec=upgrade.spec,
                                          to_generation=stable.generation, at=iso(now), message=message))
    return [Record(events=events), rollback] if events else [rollback]


def _periodic_due(spec: PipelineSpec, status: PipelineStatus, now: datetime) -> bool:
    interval = spec.job.periodic_savepoint_interval
    if not interval:
        return False
    last = status.last_periodic_savepoint or (status.deployed.submitted_at if status.deployed else None)
    return _after(last, duration_seconds(interval), now)


def prune(spec: PipelineSpec, status: PipelineStatus, now: datetime, settings: OperatorSettings) -> list[Action]:
    """Dispose of savepoints beyond maxCount or older than maxAge. Never the newest one, nor one
    the lifecycle may still restore from; a failed disposal is retried after a back-off."""
    history = sorted(status.savepoint_history, key=lambda s: s.time)
    if not history:
        return []
    limits = spec.job.savepoint_history
    max_age = duration_seconds(limits.max_age) if limits.max_age else None
    protected = {history[-1].path, status.job_status.restored_from}
    protected |= {p.restore_path for p in (status.stopped, status.upgrade, status.pending) if p is not None}
    actions: list[Action] = []
    for index, savepoint in enumerate(history):
        newer = len(history) - index - 1
        when = parse_time(savepoint.time)
        too_old = max_age is not None and when is not None and (now - when).total_seconds() > max_age
        if not (newer >= limits.max_count or too_old) or savepoint.path in protected:
            continue
        if savepoint.dispose_failed_at and not _after(savepoint.dispose_failed_at, settings.dispose_retry_seconds, now):
            continue
        actions.append(Dispose(savepoint))
    return actions


# ---- rebuilds (spec.rebuild) --------------------------------------------------------------------

def decide_rebuild(spec: PipelineSpec, status: PipelineStatus, obs: Observation, now: datetime,
                   settings: OperatorSettings) -> list[Action]:
    """``spec.rebuild``, once per new nonce. A request that cannot be carried out as it stands is Rejected
    (status.rebuild, a Warning event and the Rebuild condition say why) and changes nothing. History: one
    Job. Live: ``step: stop`` hands it to the job lifecycle (stop with a savepoint, then submit without
    state from ``replayFromMs``: ``_stop_for_rebuild``, ``_after_stop``), whose accepted submission sets
    ``step: follow``; then one Job follows the replay and audits. A Job's end is the rebuild's end. A new
    nonce while one runs is taken when it has ended."""
    current, request = status.rebuild, spec.rebuild
    actions: list[Action] = []
    if current is not None and current.phase == "Running":
        actions.extend(_rebuild_progress(spec, current, obs, now))
        for action in actions:
            if isinstance(action, Record) and not isinstance(action.rebuild, Keep):
                current = action.rebuild
    if request is None or (current is not None and (request.nonce == current.nonce or current.phase == "Running")):
        return actions
    calendar = job_calendar(settings.job_config_overrides)
    zones = {str(calendar["default_timezone"]), *map(str, dict(calendar["store_timezones"]).values())}
    started = iso(now)
    if request.history is not None:
        history = request.history
        last = history.last or history.first
        problem = _rebuild_problem(spec) or rebuild_rules.history_problem(history.first, last, zones, now)
        rebuild = RebuildStatus(nonce=request.nonce, kind="history", phase="Running", days=history.days,
                                started_at=started)
    elif request.live is not None:
        day = request.live.day
        problem = (_rebuild_problem(spec) or rebuild_rules.live_day_problem(day, zones, now)
                   or _live_problem(spec, status))
        rebuild = RebuildStatus(nonce=request.nonce, kind="live", phase="Running", step="stop", days=day.isoformat(),
                                replay_from_ms=rebuild_rules.replay_start_ms(day, zones), started_at=started)
    else:
        problem = "spec.rebuild takes exactly one of history or live"
        rebuild = RebuildStatus(nonce=request.nonce, kind="history", phase="Running", started_at=started)
    if problem is not None:
        rejected = rebuild.model_copy(update={"phase": "Rejected", "step": None, "replay_from_ms": None,
                                              "finished_at": started, "message": f"{problem}; nothing was changed"})
        return [*actions, Record(rebuild=rejected, events=(Event(
            "Warning", "RebuildRejected", f"rebuild {request.nonce}: {problem}; nothing was changed"),))]
    if rebuild.kind == "history":
        return [*actions, CreateRebuildJob(spec, rebuild)]
    assert rebuild.replay_from_ms is not None and status.job_status.job_id is not None
    message = (f"live rebuild {request.nonce} of {rebuild.days}: stopping job {status.job_status.job_id} with a "
               f"savepoint, then replaying the orders topic from {_ms_iso(rebuild.replay_from_ms)} into a fresh job")
    return [*actions, Record(rebuild=rebuild, events=(Event("Normal", "RebuildStarted", message),))]


def _rebuild_problem(spec: PipelineSpec) -> str | None:
    if spec.audit is None:
        return "spec.rebuild runs in the auditor's image, so it needs spec.audit"
    if spec.sinks.postgres is None or spec.sinks.redis is None:
        return "spec.rebuild needs spec.sinks.postgres and spec.sinks.redis (the views it rebuilds)"
    return None


def _live_problem(spec: PipelineSpec, status: PipelineStatus) -> str | None:
    if spec.job.state != "running":
        return "a live rebuild replaces the running job, and spec.job.state is suspended"
    if status.job_status.job_id is None or status.deployed is None:
        return "a live rebuild replaces the running job, and no job has been submitted yet"
    return None


def _rebuild_progress(spec: PipelineSpec, current: RebuildStatus, obs: Observation, now: datetime) -> list[Action]:
    """A running rebuild: its Job created once it is due, its end recorded once the Job controller reports it."""
    if current.kind == "live" and current.step == "stop":
        if spec.job.state == "suspended":
            return [_rebuild_ended(current, "Failed", "the pipeline was suspended before the replay was submitted; "
                                                      "the job resumes from its savepoint", now)]
        return []
    if current.job is None:
        if current.kind == "history" and (spec.rebuild is None or spec.rebuild.nonce != current.nonce):
            return [_rebuild_ended(current, "Failed", "spec.rebuild changed before its Job was created; nothing "
                                                      "was changed", now)]
        return [CreateRebuildJob(spec, current)]
    seen = obs.rebuild_job
    if seen is None or seen.name != current.job or seen.state == "running":
        return []
    if seen.state == "succeeded":
        return [_rebuild_ended(current, "Succeeded", f"Job {current.job} succeeded", now)]
    if seen.state == "missing":
        return [_rebuild_ended(current, "Failed", f"Job {current.job} is gone (deleted before it finished)", now)]
    return [_rebuild_ended(current, "Failed", f"Job {current.job} failed: {seen.message or 'no reason given'}; "
                                              f"its log: kubectl logs job/{current.job}", now)]


def _rebuild_ended(current: RebuildStatus, phase: str, message: str, now: datetime) -> Record:
    done = current.model_copy(update={"phase": phase, "finished_at": iso(now), "message": message})
    text = f"{current.kind} rebuild {current.nonce}: {message}"
    succeeded = phase == "Succeeded"
    event = Event("Normal", "RebuildSucceeded", text) if succeeded else Event("Warning", "RebuildFailed", text)
    return Record(rebuild=done, events=(event,))


def _replay_submitted(status: PipelineStatus) -> RebuildStatus | None:
    """status.rebuild once the live rebuild's replay is accepted by Flink (None: no live rebuild is stopping)."""
    rebuild = status.rebuild
    if rebuild is None or rebuild.kind != "live" or rebuild.phase != "Running" or rebuild.replay_from_ms is None:
        return None
    return rebuild.model_copy(update={"step": "follow"})


def _stop_for_rebuild(job: JobObservation, generation: int, status: PipelineStatus, now: datetime) -> list[Action]:
    """Stop the job with a savepoint for a live rebuild (the replay needs no state, the savepoint is the way
    back); a failed savepoint leaves the job running and is retried after the back-off."""
    blocked = status.blocked
    if blocked is not None and blocked.action == "rebuild" and _not_before(blocked.retry_at, now):
        return []
    if job.state != "RUNNING":
        return []  # Flink takes savepoints of running jobs only: wait
    return [StopWithSavepoint(job.job_id, "rebuild", generation)]


def _ms_iso(ms: int) -> str:
    return iso(datetime.fromtimestamp(ms / 1000, tz=UTC))


# ---- deletion ----------------------------------------------------------------------------------

def decide_delete(spec: PipelineSpec, status: PipelineStatus, obs: Observation) -> list[Action]:
    """On delete: a final savepoint when the job runs, whatever the upgrade mode (it is how the
    pipeline can be recreated with its state); cancel when it is active but not RUNNING; nothing
    when it isn't active, so the resource goes away promptly."""
    actions: list[Action] = [Cancel(job_id, "orphan") for job_id in obs.orphans]
    job = obs.job
    if job is None or job.job_id != status.job_status.job_id or job.state not in ACTIVE:
        return actions
    savepoint_failed = status.blocked is not None and status.blocked.action == "delete"
    if job.state != "RUNNING" or savepoint_failed:
        return [*actions, Cancel(job.job_id, "delete")]
    return [*actions, StopWithSavepoint(job.job_id, "delete", status.deployed.generation if status.deployed else 0)]


# ---- what `kubectl get cp` and the conditions say ----------------------------------------------

def summarize(spec: PipelineSpec, generation: int, status: PipelineStatus, obs: Observation, now: datetime,
              settings: OperatorSettings) -> StatusChange:
    """phase, conditions (Ready, Progressing, Degraded), observedGeneration and error from status."""
    js = status.job_status
    target = JobTarget.of(spec)
    desired = spec.job.state
    pending, stopped, upgrade = status.pending, status.stopped, status.upgrade
    job = obs.job if obs.job is not None and obs.job.job_id == js.job_id else None
    is_healthy = healthy(job, now, settings) if obs.flink_error is None else js.state == "RUNNING"
    rolled_back = status.rollback is not None and status.rollback.failed_spec == target
    suspended = desired == "suspended" and ((stopped is not None and stopped.reason == "suspend")
                                            or (js.job_id is None and pending is None))

    # Progressing
    progressing: tuple[str, str] | None = None
    if pending is not None:
        progressing = (f"{pending.reason.capitalize()}Submitting",
                       f"submitting job {pending.submission} ({pending.reason}) from "
                       f"{pending.restore_path or 'a fresh start'}")
    elif desired == "suspended" and not suspended:
        progressing = ("Suspending", "stopping the job with a savepoint")
    elif stopped is not None and desired == "running":
        progressing = ("Resubmitting", f"job stopped for {stopped.reason}; resubmitting")
    elif upgrade is not None:
        progressing = ("Upgrading", f"waiting for generation {upgrade.generation} to run healthy")
    elif desired == "running" and (js.state in ("CREATED", "INITIALIZING") or
                                   (js.state == "RUNNING" and not is_healthy)):
        progressing = ("Deploying", f"job {js.job_id} is {js.state}")

    # Degraded
    degraded: tuple[str, str] | None = None
    if obs.flink_error is not None:
        degraded = ("FlinkUnreachable", obs.flink_error)
    elif status.halted:
        degraded = ("NoRestorePoint", status.halted)
    elif pending is not None and pending.error:
        degraded = ("SubmitFailed", f"attempt {pending.attempts}: {pending.error}")
    elif status.blocked is not None and status.blocked.generation == generation:
        degraded = ("SavepointFailed", status.blocked.message)
    elif rolled_back and status.rollback is not None:
        degraded = ("RolledBack", status.rollback.message)
    elif js.state in ("RESTARTING", "FAILING"):
        degraded = ("JobRestarting", f"job {js.job_id} is {js.state} after {js.restarts} restarts: "
                                     f"{js.exception or 'no exception reported'}")
    elif desired == "running" and js.state in TERMINAL | {MISSING} and stopped is None and pending is None:
        degraded = ("JobLost", f"job {js.job_id} is {js.state}; resubmitting from its latest checkpoint")

    # Ready and phase
    ingest = status.ingest
    ingest_ok = ingest is None or ingest.replicas is None or (ingest.ready_replicas or 0) >= ingest.replicas
    if suspended:
        phase, ready = "Suspended", ("True", "Suspended", "the job is suspended as asked")
    elif pending is not None:
        phase = submitting_phase(pending.reason)
        ready = ("False", "Submitting", progressing[1] if progressing else "")
    elif desired == "suspended":
        phase, ready = "Suspending", ("False", "Suspending", "stopping the job")
    elif stopped is not None:
        phase = {"restart": "Restarting", "rebuild": "Rebuilding", "redeploy": "Redeploying"}.get(stopped.reason,
                                                                                                 "Upgrading")
        ready = ("False", "Stopped", f"job stopped for {stopped.reason}")
    elif is_healthy:
        phase = "RolledBack" if rolled_back else ("Upgrading" if upgrade is not None else "Running")
        ready = (("True", "Running", f"job {js.job_id} is RUNNING") if ingest_ok else
                 ("False", "IngestNotReady", f"ingest has {ingest.ready_replicas or 0}/{ingest.replicas} "
                                             "ready replicas" if ingest else ""))
    elif js.state in TERMINAL | {MISSING, "RESTARTING", "FAILING"}:
        phase, ready = "Failed", ("False", "JobNotRunning", f"job {js.job_id} is {js.state}")
    elif js.job_id is None:
        phase, ready = "Pending", ("False", "NotSubmitted", "no job submitted yet")
    else:
        phase = "Upgrading" if upgrade is not None else "Deploying"
        ready = ("False", "Deploying", f"job {js.job_id} is {js.state}")
    if obs.flink_error is not None:
        ready = ("Unknown", "FlinkUnreachable", obs.flink_error)

    wanted = [
        ("Ready", *ready),
        ("Progressing", "True" if progressing else "False", *(progressing or ("Stable", "nothing in flight"))),
        ("Degraded", "True" if degraded else "False", *(degraded or ("Healthy", "no problem known"))),
    ]
    if status.rebuild is not None:
        rebuild = status.rebuild
        verdict = {"Succeeded": "True", "Running": "Unknown"}.get(rebuild.phase, "False")
        wanted.append(("Rebuild", verdict, rebuild.phase,
                       f"{rebuild.kind} rebuild {rebuild.nonce}: {rebuild.message or rebuild.phase}"))
    previous = {c.type: c for c in status.conditions}
    conditions = []
    for kind, state, reason, message in wanted:
        before = previous.get(kind)
        since = before.last_transition_time if before and before.status == state and before.last_transition_time \
            else iso(now)
        conditions.append(Condition(type=kind, status=state, reason=reason, message=message,
                                    last_transition_time=since, observed_generation=generation))

    handled = (
        (status.deployed is not None and status.deployed.spec == target and pending is None
         and (desired == "running" or suspended))
        or rolled_back
        or (suspended and status.deployed is None)
        or (status.blocked is not None and status.blocked.generation == generation)
    )
    error: str | Keep | None = KEEP
    if degraded is None and status.error:
        error = None
    elif degraded is not None and degraded[1] != status.error:
        error = degraded[1]
    return StatusChange(phase=phase, conditions=tuple(conditions),
                        observed_generation=generation if handled else KEEP, error=error)


__all__ = [
    "ACTIVE", "Action", "Adopt", "Cancel", "CreateRebuildJob", "Dispose", "Event", "JobObservation", "Observation",
    "PointInTime", "Record", "RollBack", "RollSession", "StopWithSavepoint", "Submit", "TriggerSavepoint", "decide",
    "decide_delete", "decide_rebuild", "observed_update", "prune", "restore_point", "submitting_phase", "summarize",
]
