"""Kopf wiring, kept thin: each handler hands one event to ``children`` or ``reconcile``.

Run: ``kopf run -m coffee_operator.handlers --standalone -n coffee-rt --liveness=http://0.0.0.0:8080/healthz``.

- create / update / resume: server-side apply the children (ingest, auditor), owned by the pipeline.
- a timer per pipeline: observe the Flink job and take the next lifecycle step (all Flink
  actions happen here, so they never race each other).
- delete (kopf's finalizer): a final savepoint if the job runs, then let the resource go;
  the children go with it (garbage collection via ownerReferences).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import kopf

from coffee_operator import children, metrics, reconcile
from coffee_operator.act import Pipeline
from coffee_operator.decide import Event
from coffee_operator.kube import GROUP, PLURAL, VERSION, Kube, load_config
from coffee_operator.settings import OperatorSettings
from coffee_operator.spec import SpecError, parse_spec

SETTINGS = OperatorSettings.from_env()
RESOURCE = (GROUP, VERSION, PLURAL)
FINALIZER = "coffee-rt.dev/operator"

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(uid: str) -> threading.Lock:
    """One lock per pipeline: the timer and the delete handler never act on one job at once."""
    with _locks_guard:
        return _locks.setdefault(uid, threading.Lock())


class _StatusSubresource:
    def __init__(self, kube: Kube, namespace: str, name: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name

    def patch(self, merge_patch: dict[str, Any]) -> None:
        self.kube.patch_status(self.namespace, self.name, merge_patch)


def _freshest_status(memo: kopf.Memo, body: kopf.Body) -> dict[str, Any]:
    """Status as we last wrote it, unless the watch stream already shows that (or newer)."""
    seen = dict(body.get("status") or {})
    mine: dict[str, Any] = getattr(memo, "status", None) or {}
    return mine if int(mine.get("revision", 0)) > int(seen.get("revision", 0)) else seen


def _create_owned_job(kube: Kube, namespace: str, job: dict[str, Any], owner: kopf.Body) -> None:
    """A rebuild Job as a child of the pipeline (ownerReferences: collected with it)."""
    kopf.adopt(job, owner=owner)
    kube.create_job(namespace, job)


def _emitter(body: kopf.Body) -> Any:
    def emit(event: Event) -> None:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    return emit


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Namespaced and least-privilege: no cluster-wide scanning, no peering objects.
    settings.scanning.disabled = True
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="coffee-rt.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="coffee-rt.dev", key="last-handled-configuration")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Flink REST call is noise
    load_config()
    memo.kube = Kube()
    memo.flink = reconcile.FlinkClients()
    if SETTINGS.metrics_port:
        metrics.serve(SETTINGS.metrics_host, SETTINGS.metrics_port)


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    memo.flink.close()


@kopf.on.probe(id="now")
def probe_now(**_: Any) -> str:
    return datetime.now(UTC).isoformat()


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
def apply_children(spec: kopf.Spec, name: str, namespace: str | None, body: kopf.Body, memo: Any,
                   **_: Any) -> None:
    namespace = namespace or "default"
    metrics.RECONCILES.labels("children").inc()
    try:
        objects = children.render(name, parse_spec(dict(spec)), SETTINGS.job_config_overrides)
        kopf.adopt(objects, owner=body)
        for obj in objects:
            memo.kube.apply(namespace, obj)
    except Exception:
        metrics.RECONCILE_ERRORS.labels("children").inc()
        raise
    kopf.info(body, reason="ChildrenApplied",
              message=", ".join(f"{o['kind']} {o['metadata']['name']}" for o in objects))


@kopf.timer(*RESOURCE, interval=SETTINGS.reconcile_interval, backoff=SETTINGS.reconcile_interval)
def reconcile_job(spec: kopf.Spec, meta: kopf.Meta, name: str, namespace: str | None, uid: str, body: kopf.Body,
                  memo: Any, **_: Any) -> None:
    namespace = namespace or "default"
    if meta.get("deletionTimestamp"):
        return
    metrics.RECONCILES.labels("job").inc()
    with _lock(uid):
        pipeline = Pipeline(namespace, name, uid, _freshest_status(memo, body))
        try:
            reconcile.step(
                pipeline, dict(spec), int(meta.get("generation") or 0),
                store=_StatusSubresource(memo.kube, namespace, name),
                secrets=lambda secret, key: memo.kube.secret(namespace, secret, key),  # type: ignore[no-any-return]
                settings=SETTINGS, flink=memo.flink, emit=_emitter(body),
                ingest=memo.kube.ingest_status(namespace, children.ingest_name(name)),
                rebuild_job=lambda job: memo.kube.rebuild_job(namespace, job),  # type: ignore[no-any-return]
                create_job=lambda job: _create_owned_job(memo.kube, namespace, job, body),
                session=lambda deployment: memo.kube.session_deployment(namespace, deployment),  # type: ignore[no-any-return]
                set_image=lambda deployment, image: memo.kube.set_image(namespace, deployment, image),
            )
        except SpecError as exc:
            metrics.RECONCILE_ERRORS.labels("job").inc()
            raise kopf.PermanentError(f"invalid spec: {exc}") from None
        except Exception:
            metrics.RECONCILE_ERRORS.labels("job").inc()
            raise
        finally:
            memo.status = pipeline.status


@kopf.on.delete(*RESOURCE, backoff=10)
def delete_pipeline(spec: kopf.Spec, name: str, namespace: str | None, uid: str, body: kopf.Body, memo: Any,
                    retry: int, **_: Any) -> None:
    namespace = namespace or "default"
    metrics.RECONCILES.labels("delete").inc()
    with _lock(uid):
        pipeline = Pipeline(namespace, name, uid, _freshest_status(memo, body))
        problem = reconcile.finalize(
            pipeline, dict(spec),
            store=_StatusSubresource(memo.kube, namespace, name),
            secrets=lambda secret, key: memo.kube.secret(namespace, secret, key),  # type: ignore[no-any-return]
            settings=SETTINGS, flink=memo.flink, emit=_emitter(body),
        )
    if problem is None:
        return
    metrics.RECONCILE_ERRORS.labels("delete").inc()
    if retry + 1 < SETTINGS.delete_flink_attempts:
        raise kopf.TemporaryError(f"{problem}; attempt {retry + 1} of {SETTINGS.delete_flink_attempts}", delay=10)
    kopf.warn(body, reason="DeletedWithoutStop",
              message=f"{problem}; gave up after {retry + 1} attempts and let the resource go: "
                      f"if job {pipeline.status.get('jobStatus', {}).get('jobId')} still runs, cancel it by hand")
