"""The ingest workload of a pipeline as plain Kubernetes objects (Deployment, Service, ConfigMap, PDB).

Pure rendering, no API calls: handlers adopt these (ownerReferences) and server-side apply them.
The order-ingest container is configured only through ``INGEST_*`` variables (docs/ingest.md);
the token file comes from the Secret the pipeline names, mounted read-only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from coffee_operator.spec import PipelineSpec

INGEST_PORT = 8080
TOKENS_DIR = "/etc/coffee-ingest"
TOKENS_FILE = "tokens.json"
RUN_AS = 10001  # the ingest image's non-root user


def ingest_name(pipeline: str) -> str:
    return f"{pipeline}-ingest"


def labels(pipeline: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "coffee-ingest",
        "app.kubernetes.io/instance": pipeline,
        "app.kubernetes.io/part-of": "coffee-rt",
        "app.kubernetes.io/managed-by": "coffee-rt-operator",
    }


def selector(pipeline: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "coffee-ingest", "app.kubernetes.io/instance": pipeline}


def config_map(pipeline: str, spec: PipelineSpec) -> dict[str, Any]:
    data = {
        "INGEST_HOST": "0.0.0.0",  # noqa: S104 - inside the Pod, behind the Service
        "INGEST_PORT": str(INGEST_PORT),
        "INGEST_KAFKA_BOOTSTRAP": spec.kafka.bootstrap,
        "INGEST_TOPIC": spec.kafka.topics.orders,
    }
    if spec.ingest.auth_secret_ref is not None:
        data["INGEST_TOKENS_FILE"] = f"{TOKENS_DIR}/{TOKENS_FILE}"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": ingest_name(pipeline), "labels": labels(pipeline)}, "data": data}


def _config_hash(obj: dict[str, Any]) -> str:
    """Changing the ConfigMap changes the Pod template, so the Deployment rolls its Pods."""
    return hashlib.sha256(json.dumps(obj["data"], sort_keys=True).encode()).hexdigest()[:16]


def deployment(pipeline: str, spec: PipelineSpec) -> dict[str, Any]:
    name = ingest_name(pipeline)
    container: dict[str, Any] = {
        "name": "ingest",
        "image": spec.ingest.image,
        "ports": [{"name": "http", "containerPort": INGEST_PORT}],
        "envFrom": [{"configMapRef": {"name": name}}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10,
                          "failureThreshold": 3},
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    if spec.ingest.resources:
        container["resources"] = spec.ingest.resources
    pod: dict[str, Any] = {"containers": [container], "automountServiceAccountToken": False}
    ref = spec.ingest.auth_secret_ref
    if ref is not None:
        container["volumeMounts"] = [{"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": True}]
        pod["volumes"] = [{"name": "tokens", "secret": {"secretName": ref.name,
                                                         "items": [{"key": ref.key, "path": TOKENS_FILE}]}}]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(pipeline)},
        "spec": {
            "replicas": spec.ingest.replicas,
            "selector": {"matchLabels": selector(pipeline)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(pipeline),
                             "annotations": {"coffee-rt.dev/config-hash": _config_hash(config_map(pipeline, spec))}},
                "spec": pod,
            },
        },
    }


def service(pipeline: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": ingest_name(pipeline), "labels": labels(pipeline)},
            "spec": {"type": "ClusterIP", "selector": selector(pipeline),
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def pod_disruption_budget(pipeline: str) -> dict[str, Any]:
    # maxUnavailable (not minAvailable): a one-replica pipeline must not block node drains forever.
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": ingest_name(pipeline), "labels": labels(pipeline)},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(pipeline)}}}


def render(pipeline: str, spec: PipelineSpec) -> list[dict[str, Any]]:
    """Every child, in the order they are applied (config before the Pods that read it)."""
    return [config_map(pipeline, spec), deployment(pipeline, spec), service(pipeline), pod_disruption_budget(pipeline)]
