"""Carry out ``decide``'s actions against the real Flink REST API, writing each result to status at once.

Every action writes its outcome before the next one starts, and a submission writes its intent
(``status.pending``, with the deterministic job id's submission number) *before* asking Flink:
a crash anywhere leaves status saying exactly what to retry, and the retry cannot start a second
job. Failures are outcomes too (blocked, pending with an error, disposeError), never silent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx

from coffee_job.config import JobConfig
from coffee_operator import jobids, metrics
from coffee_operator.decide import (
    TERMINAL,
    Action,
    Cancel,
    Dispose,
    Event,
    Record,
    RollBack,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from coffee_operator.observe import observe_job
from coffee_operator.settings import OperatorSettings
from coffee_operator.spec import Entry, flink_duration
from coffee_operator.status import Deployed, JobStatus, Pending, PipelineStatus, Savepoint, Stopped, iso
from coffee_rt.flink.rest import PYTHON_DRIVER, FlinkRest, FlinkRestError

FLINK_ERRORS = (FlinkRestError, httpx.HTTPError, TimeoutError)


class StatusStore(Protocol):
    """Where status lives: the status subresource, or a dict in tests."""

    def patch(self, merge_patch: dict[str, Any]) -> None: ...


class Secrets(Protocol):
    def __call__(self, name: str, key: str) -> str: ...


class ActError(RuntimeError):
    pass


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


def postgres_parts(dsn: str) -> tuple[str, str, str]:
    """postgresql://user:password@host:port/db?opts -> (jdbc url, user, password)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.username:
        raise ActError("the Postgres secret must hold a DSN like postgresql://user:password@host:5432/db")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    query = f"?{parts.query}" if parts.query else ""
    return f"jdbc:postgresql://{netloc}{parts.path}{query}", unquote(parts.username), unquote(parts.password or "")


def job_config(namespace: str, name: str, job_spec: dict[str, Any], secrets: Secrets,
               settings: OperatorSettings) -> JobConfig:
    """The job's JobConfig from a job fingerprint (decide.job_fingerprint) and the Secrets it names."""
    sinks = job_spec.get("sinks") or {}
    if "postgres" not in sinks or "redis" not in sinks:
        raise ActError("spec.sinks.postgres.secretRef and spec.sinks.redis.secretRef are required to run the job")
    pg, rd = sinks["postgres"]["secretRef"], sinks["redis"]["secretRef"]
    jdbc, user, password = postgres_parts(secrets(pg["name"], pg["key"]))
    values: dict[str, Any] = {
        "job_name": f"coffee-rt-{namespace}-{name}",
        "group_id": f"coffee-rt-{namespace}-{name}",
        "kafka_bootstrap": job_spec["kafka"]["bootstrap"],
        "orders_topic": job_spec["kafka"]["topics"]["orders"],
        "dlq_topic": job_spec["kafka"]["topics"]["dlq"],
        "postgres_jdbc_url": jdbc,
        "postgres_user": user,
        "postgres_password": password,
        "redis_url": secrets(rd["name"], rd["key"]),
        "parallelism": job_spec["parallelism"],
        "checkpoint_interval": flink_duration(job_spec["checkpointInterval"]),
        **settings.job_config_overrides,
    }
    try:
        return JobConfig(**values)
    except ValueError as exc:
        raise ActError(f"invalid job config: {exc}") from None


def program_args(entry: Entry, cfg: JobConfig, include_secrets: bool) -> list[str]:
    values = cfg.model_dump(mode="json")
    for secret in ("postgres_password", "redis_url"):
        if include_secrets:
            values[secret] = getattr(cfg, secret).get_secret_value()
        else:
            values.pop(secret)
    return [*entry.driver_args(), "--config-json", json.dumps(values, sort_keys=True)]


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

    # ---- status ----------------------------------------------------------------------------
    @property
    def status(self) -> PipelineStatus:
        return PipelineStatus.parse(self.pipeline.status)

    def write(self, update: dict[str, Any]) -> None:
        """Replace top-level status fields (None removes) and patch only what changed."""
        new = dict(self.pipeline.status)
        for key, value in update.items():
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

    def _job_status(self, **fields: Any) -> dict[str, Any]:
        return JobStatus.model_validate({**self.status.job_status.model_dump(), **fields}).dump()

    def _flink(self) -> FlinkRest:
        deployed = self.status.deployed
        if deployed is None:
            raise ActError("no job has been deployed")
        return self.rest_for(str(deployed.spec["restUrl"]))

    # ---- dispatch ----------------------------------------------------------------------------
    def run(self, action: Action) -> bool:
        """Carry out one action; False means stop this round (the outcome is in status)."""
        match action:
            case Record():
                self.write(action.update)
                for event in action.events:
                    self.emit(event)
                return True
            case Submit():
                return self.submit(action)
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
        raise AssertionError(f"unknown action {action!r}")

    # ---- submit ------------------------------------------------------------------------------
    def submit(self, action: Submit) -> bool:
        status, now = self.status, self.clock()
        before = status.pending if status.pending and status.pending.submission == action.submission else None
        pending = Pending(submission=action.submission, generation=action.generation, spec=action.spec,
                          restore_path=action.restore_path, reason=action.reason,
                          since=before.since if before else iso(now), attempts=before.attempts if before else 0)
        phase = {"rollback": "RollingBack", "upgrade": "Upgrading", "restart": "Restarting"}.get(action.reason,
                                                                                               "Deploying")
        self.write({"pending": pending.dump(), "submissions": max(status.submissions, action.submission),
                    "upgrade": action.upgrade.dump() if action.upgrade else None, "phase": phase})
        job_id = jobids.job_id(self.pipeline.uid, action.submission)
        rest = self.rest_for(str(action.spec["restUrl"]))
        try:
            state = rest.job_state(job_id)
            if state is not None and before is None:
                # Not a retry of ours, yet Flink knows the id (an orphan cancelled earlier): skip it.
                submission = action.submission
                while state is not None and submission < action.submission + 10:
                    submission += 1
                    job_id = jobids.job_id(self.pipeline.uid, submission)
                    state = rest.job_state(job_id)
                self.emit(Event("Warning", "JobIdInUse", f"Flink already knows the job id of submission "
                                                         f"{action.submission}; using submission {submission}"))
                action = replace(action, submission=submission)
                pending = pending.model_copy(update={"submission": submission})
                self.write({"pending": pending.dump(), "submissions": max(self.status.submissions, submission)})
            if state is None:
                cfg = job_config(self.pipeline.namespace, self.pipeline.name, action.spec, self.secrets, self.settings)
                args = program_args(Entry.model_validate(action.spec["entry"]), cfg,
                                    self.settings.secrets_in_program_args)
                jar_id = python_jar_id(rest, self.settings.flink_python_jar)
                rest.run_jar(jar_id, entry_class=PYTHON_DRIVER, program_args=args, job_id=job_id,
                             parallelism=cfg.parallelism, savepoint_path=action.restore_path,
                             allow_non_restored_state=action.allow_non_restored_state,
                             timeout=self.settings.submit_timeout_seconds)
                state = rest.job_state(job_id) or "CREATED"
                adopted = False
            else:
                adopted = True  # a previous attempt got through: Flink refuses a second job with this id
        except (*FLINK_ERRORS, ActError, RuntimeError) as exc:
            cause = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
            retry_at = now + timedelta(seconds=self.settings.submit_retry_seconds)
            self.write({"pending": pending.model_copy(update={
                "attempts": pending.attempts + 1, "error": cause[:1000], "retry_at": iso(retry_at)}).dump()})
            metrics.SUBMISSIONS.labels(self.pipeline.namespace, self.pipeline.name, action.reason, "failed").inc()
            self.emit(Event("Warning", "SubmitFailed",
                            f"submission {action.submission} ({action.reason}) of job {job_id} failed: {cause[:500]}"))
            return False
        self.write({
            "pending": None, "stopped": None, "blocked": None, "halted": None,
            "jobStatus": JobStatus(job_id=job_id, state=state, submission=action.submission,
                                   restored_from=action.restore_path,
                                   last_savepoint=status.job_status.last_savepoint).dump(),
            "deployed": Deployed(generation=action.generation, spec=action.spec, restore_path=action.restore_path,
                                 submitted_at=iso(now)).dump(),
            "nonces": action.nonces.dump(),
            "recoveries": status.recoveries + 1 if action.reason == "recover" else status.recoveries or None,
        })
        metrics.SUBMISSIONS.labels(self.pipeline.namespace, self.pipeline.name, action.reason, "ok").inc()
        if action.reason == "recover":
            metrics.JOB_RESTARTS.labels(self.pipeline.namespace, self.pipeline.name).inc()
        origin = f"from {action.restore_path}" if action.restore_path else "with no state (fresh)"
        self.emit(Event("Normal", "JobSubmitted",
                        f"{'found' if adopted else 'submitted'} job {job_id} (submission {action.submission}, "
                        f"{action.reason}, generation {action.generation}) {origin}"))
        return True

    # ---- stop ---------------------------------------------------------------------------------
    def _savepoint(self, rest: FlinkRest, job_id: str, stop: bool) -> str:
        """A savepoint (stopping the job with it when ``stop``), retried while tasks still deploy."""
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                trigger = rest.stop_with_savepoint(job_id) if stop else rest.trigger_savepoint(job_id)
                path = rest.wait_savepoint(job_id, trigger, timeout=self.settings.savepoint_timeout_seconds)
                if stop:
                    rest.wait_state(job_id, set(TERMINAL), timeout=self.settings.cancel_timeout_seconds)
                return path
            except FlinkRestError:
                if attempt == attempts or rest.job_state(job_id) != "RUNNING":
                    raise
                time.sleep(3)
        raise AssertionError("unreachable")

    def _record_savepoint(self, path: str, trigger: str, **more: Any) -> Savepoint:
        savepoint = Savepoint(path=path, time=iso(self.clock()), trigger=trigger)
        history = [*self.status.savepoint_history, savepoint]
        self.write({"jobStatus": self._job_status(last_savepoint=savepoint.model_dump(), **more),
                    "savepointHistory": [s.dump() for s in history]})
        metrics.observe_savepoint(self.pipeline.namespace, self.pipeline.name, self.clock())
        return savepoint

    def stop_with_savepoint(self, action: StopWithSavepoint) -> bool:
        rest = self._flink()
        now = self.clock()
        try:
            path = self._savepoint(rest, action.job_id, stop=True)
        except FLINK_ERRORS as exc:
            cause = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
            if action.fallback_to_checkpoint or action.reason == "delete":
                why = ("upgradeMode last-state: resuming from the latest checkpoint instead"
                       if action.reason != "delete" else "deleting anyway: cancelling the job")
                self.emit(Event("Warning", "SavepointFailed",
                                f"savepoint of job {action.job_id} for {action.reason} failed ({cause[:300]}); {why}"))
                return self.cancel(Cancel(action.job_id, action.reason, keep_checkpoint=action.reason != "delete"))
            message = (f"cannot {action.reason}: the savepoint of job {action.job_id} failed: {cause[:500]}. The job "
                       "keeps running; retrying. Use upgradeMode last-state or stateless to go on without one.")
            retry = now + timedelta(seconds=self.settings.savepoint_retry_seconds)
            self.write({"blocked": {"action": action.reason, "generation": action.generation, "message": message,
                                    "retryAt": iso(retry)}})
            self.emit(Event("Warning", "SavepointFailed", message))
            return False
        self._record_savepoint(path, action.reason, state=rest.job_state(action.job_id) or "FINISHED",
                               running_since=None)
        if action.reason != "delete":
            self.write({"stopped": Stopped(reason=action.reason, restore_path=path, restore_kind="savepoint",
                                           at=iso(now)).dump(), "blocked": None})
        verb = {"suspend": "Suspended", "upgrade": "StoppedForUpgrade", "delete": "StoppedForDelete"}[action.reason]
        self.emit(Event("Normal", verb, f"stopped job {action.job_id} with savepoint {path}"))
        return True

    def cancel(self, action: Cancel) -> bool:
        rest = self.rest_for(str(self.status.deployed.spec["restUrl"])) if self.status.deployed else None
        if rest is None:
            raise ActError("no job has been deployed")
        try:
            if rest.job_state(action.job_id) not in TERMINAL | {None}:
                try:
                    rest.cancel(action.job_id)
                except FlinkRestError as exc:
                    if exc.status != 404:
                        raise
                rest.wait_state(action.job_id, set(TERMINAL), timeout=self.settings.cancel_timeout_seconds)
            seen = observe_job(rest, action.job_id)
        except FLINK_ERRORS as exc:
            cause = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
            self.emit(Event("Warning", "CancelFailed", f"cancelling job {action.job_id} failed: {cause[:500]}"))
            return False
        if action.reason == "orphan":
            self.emit(Event("Warning", "OrphanCancelled",
                            f"cancelled job {action.job_id}: ours, but not the pipeline's current job"))
            return True
        path, kind, when = None, "none", None
        if action.keep_checkpoint and seen is not None:
            points = [(p.time, p.path, k) for p, k in ((seen.latest_checkpoint, "checkpoint"),
                                                         (seen.latest_savepoint, "savepoint")) if p is not None]
            if points:
                when, path, kind = max(points)
        fields: dict[str, Any] = {"state": seen.state if seen else "CANCELED", "running_since": None}
        if path and when and kind == "checkpoint":
            fields["last_checkpoint"] = {"path": path, "time": iso(when)}
        update: dict[str, Any] = {"jobStatus": self._job_status(**fields)}
        if action.reason != "delete":
            update["stopped"] = Stopped(reason=action.reason, restore_path=path, restore_kind=kind,
                                        at=iso(self.clock())).dump()
        self.write(update)
        where = f"; will resume from {kind} {path}" if path else ""
        self.emit(Event("Normal", "JobCancelled", f"cancelled job {action.job_id} for {action.reason}{where}"))
        return True

    # ---- savepoints ---------------------------------------------------------------------------
    def trigger_savepoint(self, action: TriggerSavepoint) -> bool:
        rest = self._flink()
        status = self.status
        settled: dict[str, Any] = {}
        if action.trigger == "manual":
            settled["nonces"] = status.nonces.model_copy(update={"savepoint": action.nonce}).dump()
        else:
            settled["lastPeriodicSavepoint"] = iso(self.clock())
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
            kept = [s.model_copy(update={"dispose_error": cause[:500], "dispose_failed_at": iso(self.clock())})
                    if s.path == target.path else s for s in history]
            self.write({"savepointHistory": [s.dump() for s in kept]})
            self.emit(Event("Warning", "SavepointDisposalFailed",
                            f"could not dispose of savepoint {target.path}: {cause[:500]}; kept in the history"))
            return True
        self.write({"savepointHistory": [s.dump() for s in history if s.path != target.path]})
        self.emit(Event("Normal", "SavepointDisposed", f"disposed of savepoint {target.path} ({target.trigger})"))
        return True

    # ---- rollback -----------------------------------------------------------------------------
    def roll_back(self, action: RollBack) -> bool:
        if action.cancel_job_id and not self.cancel(Cancel(action.cancel_job_id, "upgrade", keep_checkpoint=False)):
            return False
        self.write({"rollback": action.rollback.dump(), "upgrade": None, "pending": None, "stopped": None})
        metrics.ROLLBACKS.labels(self.pipeline.namespace, self.pipeline.name).inc()
        self.emit(Event("Warning", "RolledBack", action.rollback.message))
        return self.submit(action.submit)


_JAR_IDS: dict[str, str] = {}


def python_jar_id(rest: FlinkRest, configured: str | None = None) -> str:
    """The id of the flink-python jar on this cluster (uploaded once per cluster and process)."""
    cached = _JAR_IDS.get(rest.base_url)
    if cached and any(j.get("id") == cached for j in rest.list_jars()):
        return cached
    if configured:
        jar = Path(configured)
    else:
        from coffee_rt.local.components.flink import flink_python_jar  # needs PyFlink installed

        jar = flink_python_jar()
    for entry in rest.list_jars():
        if entry.get("name") == jar.name:
            _JAR_IDS[rest.base_url] = str(entry["id"])
            return _JAR_IDS[rest.base_url]
    _JAR_IDS[rest.base_url] = rest.upload_jar(jar)
    return _JAR_IDS[rest.base_url]
