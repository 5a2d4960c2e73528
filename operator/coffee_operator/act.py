"""Carry out ``decide``'s actions against the real Flink REST API, writing each result to status at once.

A thin executor: each action says what to do (job id, restore point, phase, recovery count,
adopt rather than submit) and act does it, recording the outcome; it chooses nothing. Every
action writes its outcome before the next one starts, and a submission writes its intent
(``status.pending``, with the deterministic job id's submission number) *before* asking Flink:
a crash anywhere leaves status saying exactly what to retry, and the retry cannot start a second
job. Failures are outcomes too (blocked, pending with an error, disposeError), never silent.
Status is typed here too; ``write`` is where a change becomes the JSON merge patch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx

from coffee_flink import lifecycle
from coffee_flink.rest import FlinkRest, FlinkRestError
from coffee_jobconfig.model import FromTimestamp, JobConfig
from coffee_jobconfig.secrets import POSTGRES_PASSWORD_KEY, mounted_file
from coffee_operator import children, metrics
from coffee_operator.decide import (
    Action,
    Adopt,
    Cancel,
    CreateRebuildJob,
    Dispose,
    Event,
    Record,
    RollBack,
    RollSession,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from coffee_operator.observation import SessionDeployment
from coffee_operator.settings import OperatorSettings
from coffee_operator.spec import flink_duration
from coffee_operator.status import (
    KEEP,
    Blocked,
    Deployed,
    JobStatus,
    Pending,
    PipelineStatus,
    Savepoint,
    StatusChange,
    Stopped,
    iso,
)
from coffee_operator.target import JobTarget

FLINK_ERRORS = (FlinkRestError, httpx.HTTPError, TimeoutError)


class StatusStore(Protocol):
    """Where status lives: the status subresource, or a dict in tests."""

    def patch(self, merge_patch: dict[str, Any]) -> None: ...


class Secrets(Protocol):
    def __call__(self, name: str, key: str) -> str: ...


class ActError(RuntimeError):
    pass


class JobCreator(Protocol):
    """Creates a Kubernetes Job owned by the pipeline (kopf.adopt, then create); an existing Job of the
    same name counts as created."""

    def __call__(self, job: dict[str, Any]) -> None: ...


class ImageSetter(Protocol):
    """Sets ``image`` on every container and init container of one session cluster Deployment."""

    def __call__(self, deployment: SessionDeployment, image: str) -> None: ...


def group_id(namespace: str, name: str, settings: OperatorSettings) -> str:
    """The job's Kafka consumer group (the job config's ``group_id``)."""
    return str(settings.job_config_overrides.get("group_id", f"coffee-rt-{namespace}-{name}"))


def merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns ``old`` into ``new`` (None removes a key; lists are replaced)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_diff(before, value)
            if inner:
                patch[key] = inner
        elif value != before or key not in old:
            patch[key] = value
    return patch


def postgres_parts(dsn: str) -> tuple[str, str]:
    """postgresql://user:password@host:port/db?opts -> (jdbc url, user); the password is not taken."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.username:
        raise ActError("the Postgres secret must hold a DSN like postgresql://user:password@host:5432/db")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    query = f"?{parts.query}" if parts.query else ""
    return f"jdbc:postgresql://{netloc}{parts.path}{query}", unquote(parts.username)


def job_config(namespace: str, name: str, target: JobTarget, secrets: Secrets,
               settings: OperatorSettings, startup_ms: int | None = None) -> JobConfig:
    """The job's JobConfig from a job target and the Secrets it names.

    The Postgres DSN gives the JDBC URL and the user; the credentials themselves stay in the
    Secrets, which the session cluster mounts (``settings.secrets_dir``): the config names the
    Postgres Secret's ``password`` file and the Redis Secret's URL file, never their content.
    """
    postgres, redis = target.sinks.postgres, target.sinks.redis
    if postgres is None or redis is None:
        raise ActError("spec.sinks.postgres.secretRef and spec.sinks.redis.secretRef are required to run the job")
    jdbc, user = postgres_parts(secrets(postgres.secret_ref.name, postgres.secret_ref.key))
    try:
        password_file = mounted_file(postgres.secret_ref.name, POSTGRES_PASSWORD_KEY, settings.secrets_dir)
        redis_url_file = mounted_file(redis.secret_ref.name, redis.secret_ref.key, settings.secrets_dir)
    except ValueError as exc:
        raise ActError(str(exc)) from None
    values: dict[str, Any] = {
        "job_name": f"coffee-rt-{namespace}-{name}",
        "group_id": f"coffee-rt-{namespace}-{name}",
        "kafka_bootstrap": target.kafka.bootstrap,
        "orders_topic": target.kafka.topics.orders,
        "dlq_topic": target.kafka.topics.dlq,
        "postgres_jdbc_url": jdbc,
        "postgres_user": user,
        "postgres_password_file": password_file,
        "redis_url_file": redis_url_file,
        "parallelism": target.parallelism,
        "checkpoint_interval": flink_duration(target.checkpoint_interval),
        **settings.job_config_overrides,
    }
    if startup_ms is not None:
        values["startup"] = FromTimestamp(timestamp_ms=startup_ms)
    try:
        return JobConfig(**values)
    except ValueError as exc:
        raise ActError(f"invalid job config: {exc}") from None



@dataclass
class Pipeline:
    """One CoffeePipeline as the actor sees it."""

    namespace: str
    name: str
    uid: str
    status: dict[str, Any]  # the raw status as last written


@dataclass
class Actor:
    pipeline: Pipeline
    store: StatusStore
    secrets: Secrets
    settings: OperatorSettings
    rest_for: Callable[[str], FlinkRest]
    emit: Callable[[Event], None]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    create_job: JobCreator | None = None  # where rebuild Jobs are created (the API server; tests: a list)
    set_image: ImageSetter | None = None  # how the session cluster's Deployments get the job's image

    # ---- status ----------------------------------------------------------------------------
    @property
    def status(self) -> PipelineStatus:
        return PipelineStatus.parse(self.pipeline.status)

    def write(self, change: StatusChange) -> None:
        """Make ``change`` (the status boundary: here it becomes JSON) and patch only what changed."""
        new = dict(self.pipeline.status)
        for key, value in change.dump().items():
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        patch = merge_diff(self.pipeline.status, new)
        if not patch:
            return
        new["revision"] = int(new.get("revision", 0)) + 1
        patch["revision"] = new["revision"]
        self.store.patch(patch)
        self.pipeline.status = new

    def _job_status(self, **fields: Any) -> JobStatus:
        return self.status.job_status.model_copy(update=fields)

    def _flink(self) -> FlinkRest:
        deployed = self.status.deployed
        if deployed is None:
            raise ActError("no job has been deployed")
        return self.rest_for(deployed.spec.rest_url)

    # ---- dispatch ----------------------------------------------------------------------------
    def run(self, action: Action) -> bool:
        """Carry out one action; False means stop this round (the outcome is in status)."""
        match action:
            case Record():
                self.write(action)
                for event in action.events:
                    self.emit(event)
                return True
            case Submit():
                return self.submit(action)
            case Adopt():
                return self.adopt(action)
            case StopWithSavepoint():
                return self.stop_with_savepoint(action)
            case Cancel():
                return self.cancel(action)
            case TriggerSavepoint():
                return self.trigger_savepoint(action)
            case Dispose():
                return self.dispose(action)
            case RollBack():
                return self.roll_back(action)
            case CreateRebuildJob():
                return self.create_rebuild_job(action)
            case RollSession():
                return self.roll_session(action)
        raise AssertionError(f"unknown action {action!r}")

    # ---- submit ------------------------------------------------------------------------------
    def submit(self, action: Submit) -> bool:
        """Write the intent, ask Flink to run the job under its deterministic id, record the outcome."""
        status, now = self.status, self.clock()
        before = status.pending if status.pending and status.pending.submission == action.submission else None
        pending = Pending(submission=action.submission, generation=action.generation, spec=action.target,
                          restore_path=action.restore_path, reason=action.reason,
                          since=before.since if before else iso(now), attempts=before.attempts if before else 0,
                          startup_ms=action.startup_ms)
        self.write(StatusChange(pending=pending, submissions=max(status.submissions, action.submission),
                                upgrade=action.upgrade, phase=action.phase))
        job_id = lifecycle.job_id(self.pipeline.uid, action.submission)
        rest = self.rest_for(action.target.rest_url)
        try:
            cfg = job_config(self.pipeline.namespace, self.pipeline.name, action.target, self.secrets, self.settings,
                             startup_ms=action.startup_ms)
            jar = Path(self.settings.flink_python_jar) if self.settings.flink_python_jar else None
            lifecycle.submit(rest, cfg, job_id, restore_path=action.restore_path,
                             allow_non_restored_state=action.allow_non_restored_state,
                             entry=action.target.entry.driver_args(), jar=jar,
                             timeout=self.settings.submit_timeout_seconds)
            state = rest.job_state(job_id) or "CREATED"
        except (*FLINK_ERRORS, ActError, RuntimeError) as exc:
            cause = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
            retry_at = now + timedelta(seconds=self.settings.submit_retry_seconds)
            self.write(StatusChange(pending=pending.model_copy(update={
                "attempts": pending.attempts + 1, "error": cause[:1000], "retry_at": iso(retry_at)})))
            metrics.SUBMISSIONS.labels(self.pipeline.namespace, self.pipeline.name, action.reason, "failed").inc()
            self.emit(Event("Warning", "SubmitFailed",
                            f"submission {action.submission} ({action.reason}) of job {job_id} failed: {cause[:500]}"))
            return False
        self._accepted(action, job_id, state, now, "submitted")
        return True

    def adopt(self, action: Adopt) -> bool:
        """Record the submission in flight as accepted: Flink already runs it, nothing is asked of it."""
        submit = action.submit
        job_id = lifecycle.job_id(self.pipeline.uid, submit.submission)
        self._accepted(submit, job_id, action.state, self.clock(), "found")
        return True

    def _accepted(self, action: Submit, job_id: str, state: str, now: datetime, verb: str) -> None:
        """The job of ``action`` is Flink's now: it is the deployed job, and the steps before it are done."""
        status = self.status
        self.write(StatusChange(
            pending=None, stopped=None, blocked=None, halted=None, upgrade=action.upgrade,
            submissions=max(status.submissions, action.submission),
            job_status=JobStatus(job_id=job_id, state=state, submission=action.submission,
                                 restored_from=action.restore_path, last_savepoint=status.job_status.last_savepoint),
            deployed=Deployed(generation=action.generation, spec=action.target, restore_path=action.restore_path,
                              submitted_at=iso(now), startup_ms=action.startup_ms),
            nonces=action.nonces, recoveries=action.recoveries,
            rebuild=action.rebuild if action.rebuild is not None else KEEP,
        ))
        metrics.SUBMISSIONS.labels(self.pipeline.namespace, self.pipeline.name, action.reason, "ok").inc()
        if action.reason == "recover":
            metrics.JOB_RESTARTS.labels(self.pipeline.namespace, self.pipeline.name).inc()
        origin = f"from {action.restore_path}" if action.restore_path else "with no state (fresh)"
        if action.restore_path is None and action.startup_ms is not None:
            origin += f", its Kafka source from {iso(datetime.fromtimestamp(action.startup_ms / 1000, tz=UTC))}"
        self.emit(Event("Normal", "JobSubmitted",
                        f"{verb} job {job_id} (submission {action.submission}, {action.reason}, "
                        f"generation {action.generation}) {origin}"))

    # ---- stop ---------------------------------------------------------------------------------
    def _savepoint(self, rest: FlinkRest, job_id: str, stop: bool) -> str:
        return lifecycle.savepoint(rest, job_id, stop=stop, tasks_timeout=0,
                                   savepoint_timeout=self.settings.savepoint_timeout_seconds,
                                   stop_timeout=self.settings.cancel_timeout_seconds)

    def _record_savepoint(self, path: str, trigger: str, **more: Any) -> Savepoint:
        savepoint = Savepoint(path=path, time=iso(self.clock()), trigger=trigger)
        history = (*self.status.savepoint_history, savepoint)
        self.write(StatusChange(job_status=self._job_status(last_savepoint=savepoint, **more),
                                savepoint_history=history))
        metrics.observe_savepoint(self.pipeline.namespace, self.pipeline.name, self.clock())
        return savepoint

    def stop_with_savepoint(self, action: StopWithSavepoint) -> bool:
        rest = self._flink()
        now = self.clock()
        try:
            # No fallback here: decide chooses what follows a failed savepoint (cancel, or wait).
            stopped = lifecycle.stop(rest, action.job_id, fallback=False, tasks_timeout=0,
                                     savepoint_timeout=self.settings.savepoint_timeout_seconds,
                                     stop_timeout=self.settings.cancel_timeout_seconds)
        except FLINK_ERRORS as exc:
            cause = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
            if action.reason == "delete":
                then = "the job is cancelled instead, without a final savepoint"
            elif action.reason == "rebuild":
                then = "the job keeps running and the rebuild waits; retrying"
            elif action.fallback_to_checkpoint:
                then = "upgradeMode last-state: the job is cancelled and resumes from its latest checkpoint"
            else:
                then = ("the job keeps running; retrying. Use upgradeMode last-state or stateless to go on "
                        "without one")
            message = f"cannot {action.reason}: the savepoint of job {action.job_id} failed: {cause[:500]}; {then}."
            retry = now + timedelta(seconds=self.settings.savepoint_retry_seconds)
            self.write(StatusChange(blocked=Blocked(action=action.reason, generation=action.generation,
                                                    message=message, retry_at=iso(retry))))
            self.emit(Event("Warning", "SavepointFailed", message))
            return False
        assert stopped.path is not None  # a savepoint: without fallback nothing else returns
        path = stopped.path
        self._record_savepoint(path, action.reason, state=stopped.state or "FINISHED", running_since=None)
        if action.reason != "delete":
            self.write(StatusChange(stopped=Stopped(reason=action.reason, restore_path=path,
                                                    restore_kind="savepoint", at=iso(now)), blocked=None))
        verb = {"suspend": "Suspended", "upgrade": "StoppedForUpgrade", "delete": "StoppedForDelete",
                "rebuild": "StoppedForRebuild"}[action.reason]
        self.emit(Event("Normal", verb, f"stopped job {action.job_id} with savepoint {path}"))
        return True

    def cancel(self, action: Cancel) -> bool:
        rest = self.rest_for(self.status.deployed.spec.rest_url) if self.status.deployed else None
        if rest is None:
            raise ActError("no job has been deployed")
        try:
            state = lifecycle.cancel(rest, action.job_id, timeout=self.settings.cancel_timeout_seconds)
        except FLINK_ERRORS as exc:
            cause = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
            self.emit(Event("Warning", "CancelFailed", f"cancelling job {action.job_id} failed: {cause[:500]}"))
            return False
        if action.reason == "orphan":
            self.emit(Event("Warning", "OrphanCancelled",
                            f"cancelled job {action.job_id}: ours, but not the pipeline's current job"))
            return True
        path, kind = action.resume_from, action.resume_kind
        job_status = self._job_status(state=state or "CANCELED", running_since=None)
        if action.reason == "delete":
            self.write(StatusChange(job_status=job_status))
        else:
            self.write(StatusChange(job_status=job_status, blocked=None, stopped=Stopped(
                reason=action.reason, restore_path=path, restore_kind=kind, at=iso(self.clock()))))
        where = f"; will resume from {kind} {path}" if path else ""
        self.emit(Event("Normal", "JobCancelled", f"cancelled job {action.job_id} for {action.reason}{where}"))
        return True

    # ---- savepoints ---------------------------------------------------------------------------
    def trigger_savepoint(self, action: TriggerSavepoint) -> bool:
        rest = self._flink()
        status = self.status
        if action.trigger == "manual":
            settled = StatusChange(nonces=status.nonces.model_copy(update={"savepoint": action.nonce}))
        else:
            settled = StatusChange(last_periodic_savepoint=iso(self.clock()))
        try:
            path = self._savepoint(rest, action.job_id, stop=False)
        except FLINK_ERRORS as exc:
            cause = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
            self.write(settled)  # not retried in a loop: the event says it failed
            self.emit(Event("Warning", "SavepointFailed",
                            f"{action.trigger} savepoint of job {action.job_id} failed: {cause[:500]}"))
            return True
        self._record_savepoint(path, action.trigger)
        self.write(settled)
        self.emit(Event("Normal", "SavepointTaken", f"{action.trigger} savepoint of job {action.job_id}: {path}"))
        return True

    def dispose(self, action: Dispose) -> bool:
        target = action.savepoint
        history = self.status.savepoint_history
        try:
            rest = self._flink()
            rest.wait_disposal(rest.dispose_savepoint(target.path), timeout=self.settings.savepoint_timeout_seconds)
        except (*FLINK_ERRORS, ActError) as exc:
            cause = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
            kept = tuple(s.model_copy(update={"dispose_error": cause[:500], "dispose_failed_at": iso(self.clock())})
                         if s.path == target.path else s for s in history)
            self.write(StatusChange(savepoint_history=kept))
            self.emit(Event("Warning", "SavepointDisposalFailed",
                            f"could not dispose of savepoint {target.path}: {cause[:500]}; kept in the history"))
            return True
        self.write(StatusChange(savepoint_history=tuple(s for s in history if s.path != target.path)))
        self.emit(Event("Normal", "SavepointDisposed", f"disposed of savepoint {target.path} ({target.trigger})"))
        return True

    # ---- rollback -----------------------------------------------------------------------------
    def roll_back(self, action: RollBack) -> bool:
        if action.cancel is not None and not self.cancel(action.cancel):
            return False
        self.write(StatusChange(rollback=action.rollback, upgrade=None, pending=None, stopped=None))
        metrics.ROLLBACKS.labels(self.pipeline.namespace, self.pipeline.name).inc()
        self.emit(Event("Warning", "RolledBack", action.rollback.message))
        return self.submit(action.submit)

    # ---- the session cluster's image ------------------------------------------------------------
    def roll_session(self, action: RollSession) -> bool:
        """Set the job's image on the session cluster's Deployments; the submission waits for their rollout."""
        names = ", ".join(d.name for d in action.deployments)
        if self.set_image is None:
            raise ActError("no way to set the session cluster's image was given to the actor")
        try:
            for deployment in action.deployments:
                self.set_image(deployment, action.image)
        except Exception as exc:  # noqa: BLE001 - the API server's refusal, reported and retried next round
            self.emit(Event("Warning", "SessionImageFailed", f"could not set image {action.image} on {names}: "
                                                             f"{str(exc)[:500]}; retrying"))
            return False
        self.emit(Event("Normal", "SessionImageSet", f"image {action.image} set on {names}; the job is submitted "
                                                      "once they have rolled out"))
        return False  # nothing more this round: the submission waits for the rollout

    # ---- rebuilds --------------------------------------------------------------------------------
    def create_rebuild_job(self, action: CreateRebuildJob) -> bool:
        """Create the rebuild's Job (an existing one of its name is it), then record it in status."""
        rebuild = action.rebuild
        name = children.rebuild_job_name(self.pipeline.name, rebuild.nonce)
        if self.create_job is None:
            raise ActError("no way to create Jobs was given to the actor")
        try:
            job = children.rebuild_job(self.pipeline.name, action.spec, rebuild,
                                       group_id(self.pipeline.namespace, self.pipeline.name, self.settings),
                                       self.settings.job_config_overrides)
            self.create_job(job)
        except Exception as exc:  # noqa: BLE001 - the API server's refusal, reported and retried next round
            self.emit(Event("Warning", "RebuildJobFailed", f"could not create Job {name} for rebuild "
                                                            f"{rebuild.nonce}: {str(exc)[:500]}; retrying"))
            return False
        self.write(StatusChange(rebuild=rebuild.model_copy(update={"job": name})))
        what = (f"history rebuild {rebuild.nonce} of {rebuild.days}" if rebuild.kind == "history" else
                f"live rebuild {rebuild.nonce} of {rebuild.days}: following the replay")
        self.emit(Event("Normal", "RebuildJobCreated", f"{what}: Job {name}"))
        return True
