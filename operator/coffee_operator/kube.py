"""The few Kubernetes API calls the operator makes (each one a verb its Role grants).

Children are server-side applied (``patch`` with application/apply-patch: creates or updates,
``create`` + ``patch`` in RBAC terms); status is written with JSON merge patches on the status
subresource; Secrets are read by name only.
"""

from __future__ import annotations

import base64
import os
from typing import Any, cast

import kubernetes

from coffee_operator.observation import RebuildJobObservation, SessionDeployment
from coffee_operator.status import IngestStatus

GROUP, VERSION, PLURAL = "coffee-rt.dev", "v1alpha1", "coffeepipelines"
FIELD_MANAGER = "coffee-rt-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


class SecretError(RuntimeError):
    pass


def load_config() -> None:
    """In a Pod: the ServiceAccount; outside (kopf run on a laptop, tests): KUBECONFIG."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]


class Kube:
    def __init__(self) -> None:
        self.core = kubernetes.client.CoreV1Api()
        self.apps = kubernetes.client.AppsV1Api()
        self.policy = kubernetes.client.PolicyV1Api()
        self.batch = kubernetes.client.BatchV1Api()
        self.custom = kubernetes.client.CustomObjectsApi()

    def apply(self, namespace: str, obj: dict[str, Any]) -> None:
        """Server-side apply one child (ConfigMap, Deployment, Service or PodDisruptionBudget)."""
        name = obj["metadata"]["name"]
        body = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        common: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY}
        match obj["kind"]:
            case "ConfigMap":
                self.core.patch_namespaced_config_map(name, namespace, body, **common)
            case "Service":
                self.core.patch_namespaced_service(name, namespace, body, **common)
            case "Deployment":
                self.apps.patch_namespaced_deployment(name, namespace, body, **common)
            case "PodDisruptionBudget":
                self.policy.patch_namespaced_pod_disruption_budget(name, namespace, body, **common)
            case kind:
                raise ValueError(f"not a child kind the operator manages: {kind}")

    def secret(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except kubernetes.client.ApiException as exc:
            raise SecretError(f"cannot read Secret {namespace}/{name}: {exc.status} {exc.reason} "
                              "(does it exist, and does the operator's Role name it?)") from None
        data = secret.data or {}
        if key not in data:
            raise SecretError(f"Secret {namespace}/{name} has no key {key!r} (keys: {', '.join(sorted(data))})")
        return base64.b64decode(data[key]).decode()

    def ingest_status(self, namespace: str, name: str) -> IngestStatus | None:
        try:
            deployment = self.apps.read_namespaced_deployment(name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return IngestStatus(replicas=deployment.spec.replicas if deployment.spec else None,
                            ready_replicas=(deployment.status.ready_replicas or 0) if deployment.status else 0)

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": patch}, _content_type=MERGE)

    def create_job(self, namespace: str, job: dict[str, Any]) -> None:
        """Create a rebuild Job; one that already exists under its name (one name per nonce) is it."""
        body = {**job, "metadata": {**job["metadata"], "namespace": namespace}}
        try:
            self.batch.create_namespaced_job(namespace, cast(Any, body), field_manager=FIELD_MANAGER)  # a dict body
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise

    def rebuild_job(self, namespace: str, name: str) -> RebuildJobObservation:
        """A rebuild Job as the Job controller reports it: its Complete or Failed condition."""
        try:
            job = self.batch.read_namespaced_job(name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return RebuildJobObservation(name, "missing")
            raise
        for condition in (job.status.conditions if job.status else None) or []:
            if condition.status != "True":
                continue
            if condition.type == "Complete":
                return RebuildJobObservation(name, "succeeded")
            if condition.type == "Failed":
                return RebuildJobObservation(name, "failed", f"{condition.reason}: {condition.message}")
        return RebuildJobObservation(name, "running")

    def session_deployment(self, namespace: str, name: str) -> SessionDeployment:
        """A session cluster Deployment's images (all containers) and whether it has rolled out."""
        try:
            deployment = self.apps.read_namespaced_deployment(name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return SessionDeployment(name)
            raise
        pod = deployment.spec.template.spec
        assert pod is not None and deployment.metadata is not None  # the API server always sets them
        containers, inits = list(pod.containers or []), list(pod.init_containers or [])
        want = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        seen = deployment.status
        settled = bool(seen and (seen.observed_generation or 0) >= (deployment.metadata.generation or 0)
                       and (seen.updated_replicas or 0) == want and (seen.ready_replicas or 0) == want
                       and (seen.replicas or 0) == want)
        return SessionDeployment(name, frozenset(str(c.image) for c in containers + inits),
                                 tuple(c.name for c in containers), tuple(c.name for c in inits), settled)

    def set_image(self, namespace: str, deployment: SessionDeployment, image: str) -> None:
        """``image`` on every container and init container (a strategic merge patch: by container name)."""
        spec: dict[str, Any] = {"containers": [{"name": c, "image": image} for c in deployment.containers]}
        if deployment.init_containers:
            spec["initContainers"] = [{"name": c, "image": image} for c in deployment.init_containers]
        self.apps.patch_namespaced_deployment(deployment.name, namespace, {"spec": {"template": {"spec": spec}}},
                                              field_manager=FIELD_MANAGER)
