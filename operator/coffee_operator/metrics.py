"""Prometheus metrics of the operator (the alert rules read these names).

Per pipeline (labels namespace, name): job state as a one-hot gauge, ages of the last checkpoint
and savepoint, Flink restarts, submissions, rollbacks; per handler: reconciles and errors.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, start_http_server

JOB_STATES = ("INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "FAILING", "FAILED", "CANCELLING", "CANCELED",
              "FINISHED", "SUSPENDED", "RECONCILING", "MISSING", "NONE")

RECONCILES = Counter("coffee_operator_reconciles_total", "Reconcile steps taken, by handler", ["handler"])
RECONCILE_ERRORS = Counter("coffee_operator_reconcile_errors_total",
                           "Reconcile steps that raised (retried by kopf), by handler", ["handler"])
JOB_STATE = Gauge("coffee_operator_job_state", "1 for the Flink job's current state, 0 for the others",
                  ["namespace", "name", "state"])
LAST_CHECKPOINT_AGE = Gauge("coffee_operator_last_checkpoint_age_seconds",
                            "Seconds since the job's last completed checkpoint", ["namespace", "name"])
LAST_SAVEPOINT_AGE = Gauge("coffee_operator_last_savepoint_age_seconds",
                           "Seconds since the pipeline's last savepoint", ["namespace", "name"])
JOB_RESTARTS = Counter("coffee_operator_job_restarts_total",
                       "Restarts of the Flink job observed (Flink's own restarts and resubmissions after a failure)",
                       ["namespace", "name"])
SUBMISSIONS = Counter("coffee_operator_job_submissions_total", "Job submissions, by reason and outcome",
                      ["namespace", "name", "reason", "outcome"])
ROLLBACKS = Counter("coffee_operator_rollbacks_total", "Specs rolled back after missing the deadline",
                    ["namespace", "name"])

_last_restarts: dict[tuple[str, str, str], int] = {}
_savepoint_times: dict[tuple[str, str], datetime] = {}


def observe_savepoint(namespace: str, name: str, when: datetime) -> None:
    _savepoint_times[(namespace, name)] = when


def update(namespace: str, name: str, job_id: str | None, state: str | None, restarts: int,
           last_checkpoint: datetime | None, last_savepoint: datetime | None, now: datetime) -> None:
    """Gauges from the status after a reconcile; the restarts counter grows by what Flink added."""
    current = state or "NONE"
    for known in JOB_STATES:
        JOB_STATE.labels(namespace, name, known).set(1 if known == current else 0)
    if last_checkpoint is not None:
        LAST_CHECKPOINT_AGE.labels(namespace, name).set(max(0.0, (now - last_checkpoint).total_seconds()))
    newest = max((t for t in (last_savepoint, _savepoint_times.get((namespace, name))) if t), default=None)
    if newest is not None:
        LAST_SAVEPOINT_AGE.labels(namespace, name).set(max(0.0, (now - newest).total_seconds()))
    if job_id:
        key = (namespace, name, job_id)
        before = _last_restarts.get(key, 0)
        if restarts > before:
            JOB_RESTARTS.labels(namespace, name).inc(restarts - before)
        _last_restarts[key] = max(before, restarts)


def forget(namespace: str, name: str) -> None:
    """A deleted pipeline's series go away."""
    for gauge in (LAST_CHECKPOINT_AGE, LAST_SAVEPOINT_AGE, JOB_RESTARTS, ROLLBACKS):
        try:
            gauge.remove(namespace, name)
        except KeyError:
            pass
    for known in JOB_STATES:
        try:
            JOB_STATE.remove(namespace, name, known)
        except KeyError:
            pass
    _savepoint_times.pop((namespace, name), None)


def serve(host: str, port: int) -> None:
    start_http_server(port, addr=host)
