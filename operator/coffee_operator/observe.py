"""Read what Flink (and Kubernetes) say about a pipeline into a plain ``Observation``.

Only reads. Which job is "ours" comes from status (the current job id) and the deterministic ids
(any other active job with one of them is an orphan to cancel).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from coffee_flink import lifecycle
from coffee_flink.lifecycle import ACTIVE
from coffee_flink.rest import FlinkRest, FlinkRestError, root_cause
from coffee_operator.observation import JobObservation, Observation, PointInTime
from coffee_operator.status import CheckpointCounts, IngestStatus, PipelineStatus


def _ms(value: Any) -> datetime | None:
    try:
        millis = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(millis / 1000, UTC) if millis > 0 else None


def _point(entry: dict[str, Any] | None) -> PointInTime | None:
    if not entry or not entry.get("external_path") or entry.get("discarded"):
        return None
    when = _ms(entry.get("latest_ack_timestamp")) or _ms(entry.get("trigger_timestamp"))
    return PointInTime(str(entry["external_path"]), when) if when else None


def _exception(rest: FlinkRest, job_id: str) -> str | None:
    """The newest failure's first line: what a person reading `kubectl describe` needs."""
    try:
        body = rest.exceptions(job_id)
    except FlinkRestError:
        return None
    entries = (body.get("exceptionHistory") or {}).get("entries") or []
    text = ""
    if entries:
        text = str(entries[0].get("exceptionName") or "") + ": " + str(entries[0].get("stacktrace") or "")
    elif body.get("root-exception"):
        text = str(body["root-exception"])
    return root_cause(text)[:500] or None


def observe_job(rest: FlinkRest, job_id: str) -> JobObservation | None:
    """One job's state, restarts, checkpoints and newest exception; None if Flink doesn't know it."""
    try:
        details = rest.job(job_id)
    except FlinkRestError as exc:
        if exc.status == 404:
            return None
        raise
    state = str(details["state"])
    running = _ms((details.get("timestamps") or {}).get("RUNNING")) if state == "RUNNING" else None
    counts = CheckpointCounts()
    latest_checkpoint = latest_savepoint = None
    restored_from = None
    try:
        stats = rest.checkpoints(job_id)
    except FlinkRestError:
        stats = {}
    if stats:
        raw = stats.get("counts") or {}
        counts = CheckpointCounts(completed=int(raw.get("completed", 0)), failed=int(raw.get("failed", 0)),
                                  in_progress=int(raw.get("in_progress", 0)))
        latest = stats.get("latest") or {}
        latest_checkpoint = _point(latest.get("completed"))
        latest_savepoint = _point(latest.get("savepoint"))
        restored = latest.get("restored") or {}
        restored_from = restored.get("external_path") or None
    restarts = 0
    if state not in ("FINISHED", "CANCELED"):
        try:
            restarts = int(float(rest.job_metric(job_id, "numRestarts") or 0))
        except (FlinkRestError, ValueError):
            restarts = 0
    exception = _exception(rest, job_id) if state in ("FAILED", "FAILING", "RESTARTING") else None
    return JobObservation(job_id=job_id, state=state, running_since=running, restarts=restarts, checkpoints=counts,
                          latest_checkpoint=latest_checkpoint, latest_savepoint=latest_savepoint,
                          restored_from=restored_from, exception=exception)


KNOWN_WINDOW = 10  # how far past the last submission number job ids are looked up


def observe(rest: FlinkRest, uid: str, status: PipelineStatus, ingest: IngestStatus | None = None,
            deleting: bool = False) -> Observation:
    """Flink's view of this pipeline's jobs. An unreachable or erroring Flink is an observation too.
    A job of a submission in flight is not an orphan, unless the pipeline is being deleted."""
    try:
        jobs = rest.jobs()
        current = status.job_status.job_id
        ours = lifecycle.known_ids(uid, status.submissions)
        window = lifecycle.known_ids(uid, status.submissions + KNOWN_WINDOW)
        known = {window[str(j["jid"])]: str(j["state"]) for j in jobs if str(j["jid"]) in window}
        pending = lifecycle.job_id(uid, status.pending.submission) if status.pending and not deleting else None
        orphans = tuple(sorted(
            str(j["jid"]) for j in jobs
            if j["jid"] in ours and j["jid"] not in (current, pending) and j["state"] in ACTIVE))
        job = observe_job(rest, current) if current else None
    except (httpx.HTTPError, FlinkRestError, KeyError, ValueError) as exc:
        return Observation(flink_error=f"Flink REST at {rest.base_url}: {_describe(exc)}", ingest=ingest)
    return Observation(job=job, orphans=orphans, known=known, ingest=ingest)


def _describe(exc: Exception) -> str:
    if isinstance(exc, FlinkRestError):
        return f"answered {exc.status}: {exc.cause}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
