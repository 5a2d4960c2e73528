"""The workloads of a pipeline as plain Kubernetes objects: the ingest API (Deployment, Service,
ConfigMap, PDB) and, when ``spec.audit`` asks for it, the ledger auditor (Deployment, Service).

Pure rendering, no API calls: handlers adopt these (ownerReferences) and server-side apply them.
The order-ingest container is configured only through ``INGEST_*`` variables (docs/ingest.md);
the token file comes from the Secret the pipeline names, mounted read-only. The auditor is
configured only through ``AUDITOR_*`` variables (docs/ledger.md): the pipeline's Kafka topic, its
sinks' Secrets as environment variables, and the job's time zones and dedup window, which are the
operator-wide job config overrides over ``JobConfig``'s defaults (as ``act.job_config`` builds the
job's), so the audit files every order under the day the job does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from coffee_jobconfig.model import JobConfig
from coffee_operator import rebuild as rebuild_rules
from coffee_operator.spec import PipelineSpec, SecretKeyRef
from coffee_operator.status import RebuildStatus

INGEST_APP = "coffee-ingest"
INGEST_PORT = 8080
INGEST_INTERNAL_PORT = 9080  # /metrics and /openapi.json: Prometheus only (not in the Service)
AUTH_CHECKSUM_ANNOTATION = "coffee-rt.dev/auth-secret-checksum"
TOKENS_DIR = "/etc/coffee-ingest"
TOKENS_FILE = "tokens.json"
RUN_AS = 10001  # the ingest and auditor images' non-root user
AUDITOR_APP = "coffee-auditor"
AUDITOR_PORT = 9195  # /metrics and /healthz
REBUILD_APP = "coffee-rebuild"
AUDITOR_SECRETS_DIR = "/etc/coffee-auditor/secrets"  # <dir>/postgres/dsn, <dir>/redis/url: the sinks' Secret keys
REBUILD_BACKOFF_LIMIT = 1  # one retry: both rebuilds are idempotent
REBUILD_DEADLINE_SECONDS = 3 * 3600
REBUILD_TTL_SECONDS = 7 * 86400  # a finished Job (and its Pod's log) is kept a week
JOB_CALENDAR = ("default_timezone", "store_timezones", "dedup_ttl")  # the JobConfig fields the audit shares
# Pod Security "restricted" for every Pod the operator creates (its namespace enforces it).
SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}}


def ingest_name(pipeline: str) -> str:
    return f"{pipeline}-ingest"


def auditor_name(pipeline: str) -> str:
    return f"{pipeline}-auditor"


def labels(pipeline: str, app: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": pipeline,
        "app.kubernetes.io/part-of": "coffee-rt",
        "app.kubernetes.io/managed-by": "coffee-rt-operator",
    }


def selector(pipeline: str, app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": pipeline}


def config_map(pipeline: str, spec: PipelineSpec) -> dict[str, Any]:
    data = {
        "INGEST_HOST": "0.0.0.0",  # noqa: S104 - inside the Pod, behind the Service
        "INGEST_PORT": str(INGEST_PORT),
        "INGEST_INTERNAL_HOST": "0.0.0.0",  # noqa: S104 - the Pod's port, which only Prometheus may reach
        "INGEST_INTERNAL_PORT": str(INGEST_INTERNAL_PORT),
        "INGEST_KAFKA_BOOTSTRAP": spec.kafka.bootstrap,
        "INGEST_TOPIC": spec.kafka.topics.orders,
    }
    if spec.ingest.auth_secret_ref is not None:
        data["INGEST_TOKENS_FILE"] = f"{TOKENS_DIR}/{TOKENS_FILE}"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": ingest_name(pipeline), "labels": labels(pipeline, INGEST_APP)}, "data": data}


def _config_hash(obj: dict[str, Any]) -> str:
    """Changing the ConfigMap changes the Pod template, so the Deployment rolls its Pods."""
    return hashlib.sha256(json.dumps(obj["data"], sort_keys=True).encode()).hexdigest()[:16]


def _pod_annotations(pipeline: str, spec: PipelineSpec) -> dict[str, str]:
    """A changed ConfigMap, or a changed token Secret (its checksum, ``spec.ingest.authSecretChecksum``,
    set by whoever writes the Secret), changes the Pod template: the Deployment rolls its Pods."""
    out = {"coffee-rt.dev/config-hash": _config_hash(config_map(pipeline, spec))}
    if spec.ingest.auth_secret_checksum:
        out[AUTH_CHECKSUM_ANNOTATION] = spec.ingest.auth_secret_checksum
    return out


def deployment(pipeline: str, spec: PipelineSpec) -> dict[str, Any]:
    name = ingest_name(pipeline)
    container: dict[str, Any] = {
        "name": "ingest",
        "image": spec.ingest.image,
        "ports": [{"name": "http", "containerPort": INGEST_PORT},
                  {"name": "internal", "containerPort": INGEST_INTERNAL_PORT}],
        "envFrom": [{"configMapRef": {"name": name}}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10,
                          "failureThreshold": 3},
        "securityContext": SECURITY_CONTEXT,
    }
    if spec.ingest.resources:
        container["resources"] = spec.ingest.resources
    pod: dict[str, Any] = {"containers": [container], "automountServiceAccountToken": False,
                           "securityContext": POD_SECURITY_CONTEXT}
    ref = spec.ingest.auth_secret_ref
    if ref is not None:
        container["volumeMounts"] = [{"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": True}]
        pod["volumes"] = [{"name": "tokens", "secret": {"secretName": ref.name,
                                                         "items": [{"key": ref.key, "path": TOKENS_FILE}]}}]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(pipeline, INGEST_APP)},
        "spec": {
            "replicas": spec.ingest.replicas,
            "selector": {"matchLabels": selector(pipeline, INGEST_APP)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(pipeline, INGEST_APP),
                             "annotations": _pod_annotations(pipeline, spec)},
                "spec": pod,
            },
        },
    }


def service(pipeline: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": ingest_name(pipeline), "labels": labels(pipeline, INGEST_APP)},
            "spec": {"type": "ClusterIP", "selector": selector(pipeline, INGEST_APP),
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def pod_disruption_budget(pipeline: str) -> dict[str, Any]:
    # maxUnavailable (not minAvailable): a one-replica pipeline must not block node drains forever.
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": ingest_name(pipeline), "labels": labels(pipeline, INGEST_APP)},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(pipeline, INGEST_APP)}}}


def job_calendar(job_config_overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The job's time zones and dedup window: ``JobConfig``'s defaults, as the overrides change them."""
    fields = JobConfig.model_fields
    return {name: job_config_overrides.get(name, fields[name].get_default(call_default_factory=True))
            for name in JOB_CALENDAR}


def _credential_files(postgres: SecretKeyRef, redis: SecretKeyRef) -> tuple[list[dict[str, Any]], ...]:
    """The auditor's credentials as read-only files of their Secrets (env, volumeMounts, volumes), never in
    its environment. Secret files belong to root: 0440 and the Pod's fsGroup let its user read them."""
    env = [{"name": "AUDITOR_POSTGRES_DSN_FILE", "value": f"{AUDITOR_SECRETS_DIR}/postgres/dsn"},
           {"name": "AUDITOR_REDIS_URL_FILE", "value": f"{AUDITOR_SECRETS_DIR}/redis/url"}]
    mounts = [{"name": name, "mountPath": f"{AUDITOR_SECRETS_DIR}/{name}", "readOnly": True}
              for name in ("postgres", "redis")]
    volumes = [{"name": name, "secret": {"secretName": ref.name, "defaultMode": 0o440,
                                         "items": [{"key": ref.key, "path": path}]}}
               for name, ref, path in (("postgres", postgres, "dsn"), ("redis", redis, "url"))]
    return env, mounts, volumes


def auditor_deployment(pipeline: str, spec: PipelineSpec, job_config_overrides: Mapping[str, Any]) -> dict[str, Any]:
    """One auditor Pod (none while ``enabled`` is false); its tally lives in Postgres, so a new Pod resumes."""
    audit, postgres, redis = spec.audit, spec.sinks.postgres, spec.sinks.redis
    if audit is None:
        raise ValueError("the pipeline has no spec.audit")
    if postgres is None or redis is None:
        raise ValueError("spec.audit needs spec.sinks.postgres.secretRef and spec.sinks.redis.secretRef: "
                         "the views it audits")
    calendar = job_calendar(job_config_overrides)
    env: list[dict[str, Any]] = [
        {"name": "AUDITOR_HOST", "value": "0.0.0.0"},  # noqa: S104 - inside the Pod, behind the Service
        {"name": "AUDITOR_PORT", "value": str(AUDITOR_PORT)},
        {"name": "AUDITOR_INTERVAL", "value": audit.interval},
        {"name": "AUDITOR_KAFKA_BOOTSTRAP", "value": spec.kafka.bootstrap},
        {"name": "AUDITOR_TOPIC", "value": spec.kafka.topics.orders},
        {"name": "AUDITOR_DEFAULT_TIMEZONE", "value": str(calendar["default_timezone"])},
        {"name": "AUDITOR_STORE_TIMEZONES", "value": json.dumps(calendar["store_timezones"], sort_keys=True)},
        {"name": "AUDITOR_DEDUP_TTL", "value": str(calendar["dedup_ttl"])},
    ]
    files, mounts, volumes = _credential_files(audit.postgres_secret_ref or postgres.secret_ref,
                                               audit.redis_secret_ref or redis.secret_ref)
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10}
    container: dict[str, Any] = {
        "name": "auditor",
        "image": audit.image,
        "ports": [{"name": "metrics", "containerPort": AUDITOR_PORT}],
        "env": env + files,
        "volumeMounts": mounts,
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 3},
        "securityContext": SECURITY_CONTEXT,
    }
    if audit.resources:
        container["resources"] = audit.resources
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": auditor_name(pipeline), "labels": labels(pipeline, AUDITOR_APP)},
        "spec": {
            "replicas": 1 if audit.enabled else 0,
            "selector": {"matchLabels": selector(pipeline, AUDITOR_APP)},
            # One round at a time (a second Pod would only wait for the tally's lock in Postgres).
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": labels(pipeline, AUDITOR_APP)},
                "spec": {"containers": [container], "automountServiceAccountToken": False,
                         "securityContext": {**POD_SECURITY_CONTEXT, "fsGroup": RUN_AS}, "volumes": volumes},
            },
        },
    }


def auditor_service(pipeline: str) -> dict[str, Any]:
    """Where Prometheus and the dashboard read the verdict: ``http://<pipeline>-auditor:9195/metrics``."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": auditor_name(pipeline), "labels": labels(pipeline, AUDITOR_APP)},
            "spec": {"type": "ClusterIP", "selector": selector(pipeline, AUDITOR_APP),
                     "ports": [{"name": "metrics", "port": AUDITOR_PORT, "targetPort": "metrics",
                                "protocol": "TCP"}]}}


def rebuild_job_name(pipeline: str, nonce: str) -> str:
    return rebuild_rules.job_name(pipeline, nonce)


def rebuild_args(rebuild: RebuildStatus, spec: PipelineSpec, group_id: str) -> list[str]:
    """What the Job runs after ``python -m coffee_auditor`` (docs/ledger.md)."""
    if rebuild.kind == "live":
        if rebuild.days is None or rebuild.replay_from_ms is None:
            raise ValueError(f"live rebuild {rebuild.nonce} has no day or replay start")
        return ["rebuild", "--live", "--day", rebuild.days, "--replay-from-ms", str(rebuild.replay_from_ms),
                "--group", group_id]
    history = spec.rebuild.history if spec.rebuild is not None else None
    if history is None or spec.rebuild is None or spec.rebuild.nonce != rebuild.nonce:
        raise ValueError(f"history rebuild {rebuild.nonce} is no longer what spec.rebuild asks")
    args = ["rebuild", "--from", history.first.isoformat(), "--to", (history.last or history.first).isoformat()]
    return args + (["--store", history.store] if history.store else [])


def rebuild_job(pipeline: str, spec: PipelineSpec, rebuild: RebuildStatus, group_id: str,
                job_config_overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The Job of one rebuild: ``python -m coffee_auditor rebuild ...`` in the auditor's image, configured as
    the auditor is (``AUDITOR_*``: the pipeline's topic, the job's zones), the sinks' credentials as files of
    their Secrets mounted read-only, never in its environment or arguments."""
    audit, postgres, redis = spec.audit, spec.sinks.postgres, spec.sinks.redis
    if audit is None or postgres is None or redis is None:
        raise ValueError("spec.rebuild needs spec.audit and spec.sinks.postgres and spec.sinks.redis")
    # The auditor's own credentials when the pipeline names them (its image runs the rebuilds).
    postgres_ref = audit.postgres_secret_ref or postgres.secret_ref
    redis_ref = audit.redis_secret_ref or redis.secret_ref
    calendar = job_calendar(job_config_overrides)
    env: list[dict[str, Any]] = [
        {"name": "AUDITOR_KAFKA_BOOTSTRAP", "value": spec.kafka.bootstrap},
        {"name": "AUDITOR_TOPIC", "value": spec.kafka.topics.orders},
        {"name": "AUDITOR_DEFAULT_TIMEZONE", "value": str(calendar["default_timezone"])},
        {"name": "AUDITOR_STORE_TIMEZONES", "value": json.dumps(calendar["store_timezones"], sort_keys=True)},
        {"name": "AUDITOR_DEDUP_TTL", "value": str(calendar["dedup_ttl"])},
    ]
    files, mounts, volumes = _credential_files(postgres_ref, redis_ref)
    container: dict[str, Any] = {
        "name": "rebuild",
        "image": audit.image,
        "args": rebuild_args(rebuild, spec, group_id),
        "env": env + files,
        "volumeMounts": mounts,
        "securityContext": SECURITY_CONTEXT,
    }
    if audit.resources:
        container["resources"] = audit.resources
    job_labels = {**labels(pipeline, REBUILD_APP), "coffee-rt.dev/rebuild": rebuild.kind}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": rebuild_job_name(pipeline, rebuild.nonce), "labels": job_labels,
                     "annotations": {"coffee-rt.dev/rebuild-nonce": rebuild.nonce}},
        "spec": {
            "backoffLimit": REBUILD_BACKOFF_LIMIT,
            "activeDeadlineSeconds": REBUILD_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": REBUILD_TTL_SECONDS,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {**POD_SECURITY_CONTEXT, "fsGroup": RUN_AS},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def render(pipeline: str, spec: PipelineSpec, job_config_overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every child, in the order they are applied (config before the Pods that read it)."""
    objects = [config_map(pipeline, spec), deployment(pipeline, spec), service(pipeline),
               pod_disruption_budget(pipeline)]
    if spec.audit is not None:
        objects += [auditor_deployment(pipeline, spec, job_config_overrides), auditor_service(pipeline)]
    return objects
