"""One reconcile step of one pipeline: observe -> decide -> act -> summarize. The Kopf timer calls
``step`` and the delete handler ``finalize``; tests call the same functions with an in-memory store.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coffee_flink.rest import FlinkRest
from coffee_operator import metrics
from coffee_operator.act import Actor, ImageSetter, JobCreator, Pipeline, Secrets, StatusStore
from coffee_operator.decide import Event, decide, decide_delete, summarize
from coffee_operator.observation import Observation, RebuildJobObservation, SessionDeployment
from coffee_operator.observe import observe
from coffee_operator.settings import OperatorSettings
from coffee_operator.spec import PipelineSpec, parse_spec
from coffee_operator.status import IngestStatus, PipelineStatus, parse_time


class FlinkClients:
    """One REST client per Flink URL (a pipeline may move clusters)."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._clients: dict[str, FlinkRest] = {}

    def __call__(self, url: str) -> FlinkRest:
        if url not in self._clients:
            self._clients[url] = FlinkRest(url, timeout=self.timeout)
        return self._clients[url]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _rest_url(spec: PipelineSpec, status: PipelineStatus) -> str:
    """Where the current job lives (the deployed spec's cluster), else where the spec says."""
    if status.deployed is not None:
        return status.deployed.spec.rest_url
    return spec.job.rest_url


def step(
    pipeline: Pipeline,
    spec_raw: dict[str, Any],
    generation: int,
    *,
    store: StatusStore,
    secrets: Secrets,
    settings: OperatorSettings,
    flink: FlinkClients,
    emit: Callable[[Event], None],
    ingest: IngestStatus | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    rebuild_job: Callable[[str], RebuildJobObservation] | None = None,
    create_job: JobCreator | None = None,
    session: Callable[[str], SessionDeployment] | None = None,
    set_image: ImageSetter | None = None,
) -> Observation:
    """Observe, decide and carry out one round of actions, then write phase and conditions.
    ``rebuild_job`` reads a rebuild's Kubernetes Job by name, ``create_job`` creates one (owned by the pipeline);
    ``session`` reads a session cluster Deployment by name, ``set_image`` sets the job's image on one."""
    spec = parse_spec(spec_raw)
    actor = Actor(pipeline, store, secrets, settings, flink, emit, now, create_job, set_image)
    status = actor.status
    obs = observe(flink(_rest_url(spec, status)), pipeline.uid, status, ingest)
    running = status.rebuild
    if rebuild_job is not None and running is not None and running.phase == "Running" and running.job:
        obs = dataclasses.replace(obs, rebuild_job=rebuild_job(running.job))
    if session is not None and spec.job.image and spec.job.session_deployments:
        obs = dataclasses.replace(obs, session=_session(session, spec.job.session_deployments))
    for action in decide(spec, generation, status, obs, now(), settings):
        if not actor.run(action):
            break
    actor.write(summarize(spec, generation, actor.status, obs, now(), settings))
    _export(pipeline, actor.status, now())
    return obs


def finalize(
    pipeline: Pipeline,
    spec_raw: dict[str, Any],
    *,
    store: StatusStore,
    secrets: Secrets,
    settings: OperatorSettings,
    flink: FlinkClients,
    emit: Callable[[Event], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> str | None:
    """Stop the job for deletion (final savepoint when it runs). Returns None when done, or why
    Flink could not be asked (the caller retries a few times, then lets the resource go)."""
    spec = parse_spec(spec_raw)
    actor = Actor(pipeline, store, secrets, settings, flink, emit, now)
    status = actor.status
    obs = observe(flink(_rest_url(spec, status)), pipeline.uid, status, deleting=True)
    if obs.flink_error is not None:
        return obs.flink_error
    actions = decide_delete(spec, status, obs)
    if not actions:
        emit(Event("Normal", "Deleted", f"job {status.job_status.job_id or '(none)'} is not running: nothing to stop"))
    # A failed step is written to status (a final savepoint that failed: blocked); deciding once more
    # on that status takes the next step (cancel instead) in the same call.
    for _ in range(2):
        if all(actor.run(action) for action in actions):
            metrics.forget(pipeline.namespace, pipeline.name)
            return None
        obs = observe(flink(_rest_url(spec, actor.status)), pipeline.uid, actor.status, deleting=True)
        if obs.flink_error is not None:
            return obs.flink_error
        actions = decide_delete(spec, actor.status, obs)
    return f"could not stop job {status.job_status.job_id}"


def _session(read: Callable[[str], SessionDeployment], names: tuple[str, ...]) -> tuple[SessionDeployment, ...] | None:
    """The session cluster's Deployments; None when the API server cannot say (the submission waits)."""
    try:
        return tuple(read(name) for name in names)
    except Exception as exc:  # noqa: BLE001 - an API error this round: decide waits, the next round reads again
        logging.getLogger(__name__).warning("cannot read the session cluster's Deployments: %s", exc)
        return None


def _export(pipeline: Pipeline, status: PipelineStatus, now: datetime) -> None:
    js = status.job_status
    metrics.update(
        pipeline.namespace, pipeline.name, js.job_id, js.state, js.restarts,
        parse_time(js.last_checkpoint.time) if js.last_checkpoint else None,
        parse_time(js.last_savepoint.time) if js.last_savepoint else None,
        now,
    )
