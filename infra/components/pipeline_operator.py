"""The coffee-rt operator (CRD, ServiceAccount, Role/RoleBinding, Deployment) and the CoffeePipeline
it reconciles, wired to Kafka, Flink, Postgres and Redis.

The CRD and RBAC objects are read from operator/manifests at `pulumi up` time, never copied: the
operator issue owns them (and tests them against a real API server). Only their namespace is
rewritten to the stack's. The module is not called ``operator``: that would shadow the stdlib.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from coffee_jobconfig.args import ENTRY_MODULE
from coffee_orders import topics
from infra import hardening as h
from infra.context import (
    APP_OPERATOR,
    FLINK_DEPLOYMENTS,
    INGEST_AUTH_SECRET,
    INGEST_TOKENS_KEY,
    POSTGRES_AUDITOR_SECRET,
    POSTGRES_JOB_SECRET,
    REDIS_AUDITOR_SECRET,
    REDIS_JOB_SECRET,
    Context,
)
from infra.paths import REPO_ROOT

MANIFESTS = REPO_ROOT / "operator" / "manifests"


def _shipped_port(name: str) -> int:
    """A named port of the shipped operator container (its NetworkPolicy and monitors use it)."""
    (doc,) = [d for d in yaml.safe_load_all((MANIFESTS / "deployment.yaml").read_text()) if d]
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return int(next(p["containerPort"] for p in container["ports"] if p["name"] == name))


METRICS_PORT = _shipped_port("metrics")
AUDITOR_PORT = 9195  # coffee_operator.children.AUDITOR_PORT: the auditor's /metrics


def load_manifests(path: Path, namespace: str) -> list[dict[str, Any]]:
    """The YAML documents of a shipped manifest, moved into ``namespace``."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if "namespace" in doc.get("metadata", {}):
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            if "namespace" in subject:
                subject["namespace"] = namespace
    return docs


def operator_deployment(doc: dict[str, Any], namespace: str, image: str, resources: dict[str, Any],
                        reconcile_interval: float) -> dict[str, Any]:
    """The shipped operator Deployment with what the stack config decides; the rest stays as shipped."""
    doc = copy.deepcopy(doc)
    doc["metadata"]["labels"] = {**doc["metadata"]["labels"], **h.labels(APP_OPERATOR, "operator")}
    template = doc["spec"]["template"]
    template["metadata"]["labels"] = {**template["metadata"]["labels"], **h.labels(APP_OPERATOR, "operator")}
    (container,) = template["spec"]["containers"]
    container["image"] = image
    container["resources"] = resources
    container["args"] = [f"--namespace={namespace}" if arg.startswith("--namespace=") else arg
                         for arg in container["args"]]
    values = {"COFFEE_OPERATOR_RECONCILE_INTERVAL": str(reconcile_interval)}
    container["env"] = [{**var, "value": values.get(var["name"], var["value"])} for var in container["env"]]
    return doc


def pipeline_spec(ctx: Context, kafka_bootstrap: str, flink_rest_url: str) -> dict[str, Any]:
    p, images = ctx.cfg.pipeline, ctx.cfg.images
    job: dict[str, Any] = {
        "restUrl": flink_rest_url,
        "entry": {"module": ENTRY_MODULE},
        "parallelism": p.parallelism,
        "checkpointInterval": p.checkpoint_interval,
        "upgradeMode": "savepoint",
        "state": "running",
        "allowNonRestoredState": False,
        "savepointHistory": {"maxCount": p.savepoint_max_count},
        # The operator owns the session cluster's image: a new one reaches it through a savepoint.
        "image": images.flink,
        "sessionDeployments": list(FLINK_DEPLOYMENTS),
    }
    if p.periodic_savepoint_interval:
        job["periodicSavepointInterval"] = p.periodic_savepoint_interval
    spec: dict[str, Any] = {
        "ingest": {"image": images.ingest, "replicas": p.ingest_replicas, "resources": p.ingest_resources.manifest(),
                   "authSecretRef": {"name": INGEST_AUTH_SECRET, "key": INGEST_TOKENS_KEY},
                   # The operator puts it on the ingest Pod template: a changed token Secret rolls the Pods.
                   "authSecretChecksum": h.checksum({INGEST_TOKENS_KEY: _secret(ctx.cfg.secrets.ingest_tokens)})},
        "job": job,
        "kafka": {"bootstrap": kafka_bootstrap,
                  "topics": {"orders": topics.ORDERS.name, "dlq": topics.ORDERS_DLQ.name}},
        # The job's own credentials (Postgres coffee_job, Redis coffee-job); the auditor has its own.
        "sinks": {"postgres": {"secretRef": {"name": POSTGRES_JOB_SECRET, "key": "dsn"}},
                  "redis": {"secretRef": {"name": REDIS_JOB_SECRET, "key": "url"}}},
    }
    if images.auditor is not None:
        spec["audit"] = {"enabled": True, "image": images.auditor, "interval": p.audit_interval,
                         "postgresSecretRef": {"name": POSTGRES_AUDITOR_SECRET, "key": "dsn"},
                         "redisSecretRef": {"name": REDIS_AUDITOR_SECRET, "key": "url"}}
    return spec


class PipelineOperator(pulumi.ComponentResource):
    """``ingest_url`` is the in-cluster URL of the pipeline's ingest Service (made by the operator);
    ``auditor_metrics_url`` its ledger auditor's metrics (None without ``images.auditor``)."""

    crd: k8s.apiextensions.v1.CustomResourceDefinition
    deployment: k8s.apps.v1.Deployment
    pipeline: k8s.apiextensions.CustomResource
    ingest_url: str
    auditor_metrics_url: str | None

    def __init__(self, ctx: Context, kafka_bootstrap: str, flink_rest_url: str, depends_on: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:PipelineOperator", "operator", None, opts)
        ns, cfg = ctx.ns, ctx.cfg
        (crd_doc,) = load_manifests(MANIFESTS / "crd.yaml", ns)
        self.crd = k8s.apiextensions.v1.CustomResourceDefinition(
            "coffeepipelines", metadata=crd_doc["metadata"], spec=crd_doc["spec"], opts=h.child(self))
        rbac: dict[str, pulumi.Resource] = {}
        for doc in load_manifests(MANIFESTS / "rbac.yaml", ns):
            kind, name = doc["kind"], doc["metadata"]["name"]
            opts_ = h.child(self, ctx.namespace, *rbac.values())
            if kind == "ServiceAccount":
                rbac[kind] = k8s.core.v1.ServiceAccount(f"operator-{name}", metadata=doc["metadata"], opts=opts_)
            elif kind == "Role":
                rbac[kind] = k8s.rbac.v1.Role(f"operator-{name}", metadata=doc["metadata"], rules=doc["rules"],
                                              opts=opts_)
            elif kind == "RoleBinding":
                rbac[kind] = k8s.rbac.v1.RoleBinding(f"operator-{name}", metadata=doc["metadata"],
                                                     role_ref=doc["roleRef"], subjects=doc["subjects"], opts=opts_)
            else:
                raise ValueError(f"{MANIFESTS / 'rbac.yaml'}: unexpected kind {kind}")

        ingest_auth = k8s.core.v1.Secret(
            "ingest-auth", metadata=h.meta(INGEST_AUTH_SECRET, ns, h.labels("coffee-ingest", "auth")), type="Opaque",
            string_data=pulumi.Output.secret({INGEST_TOKENS_KEY: _secret(cfg.secrets.ingest_tokens)}),
            opts=h.child(self, ctx.namespace))

        (deployment_doc,) = load_manifests(MANIFESTS / "deployment.yaml", ns)
        deployment = operator_deployment(deployment_doc, ns, cfg.images.operator, cfg.operator.resources.manifest(),
                                         cfg.operator.reconcile_interval)
        self.deployment = k8s.apps.v1.Deployment(
            "coffee-rt-operator", metadata=deployment["metadata"], spec=deployment["spec"],
            opts=h.child(self, self.crd, *rbac.values()))

        name = cfg.pipeline.name
        self.ingest_url = f"http://{ctx.host(f'{name}-ingest')}"  # port 80
        # The auditor the operator runs for the pipeline when an auditor image is configured.
        self.auditor_metrics_url = (f"http://{ctx.host(f'{name}-auditor')}:{AUDITOR_PORT}/metrics"
                                    if cfg.images.auditor is not None else None)
        self.pipeline = k8s.apiextensions.CustomResource(
            "coffeepipeline", api_version="coffee-rt.dev/v1alpha1", kind="CoffeePipeline",
            metadata={"name": name, "namespace": ns, "labels": h.labels("coffee-rt-pipeline", "pipeline")},
            spec=pipeline_spec(ctx, kafka_bootstrap, flink_rest_url),
            opts=h.child(self, self.crd, self.deployment, ingest_auth, *depends_on))
        self.register_outputs({"ingestUrl": self.ingest_url, "pipeline": name})


def _secret(value: Any) -> str:
    assert value is not None  # required by the config's cross-checks
    return str(value.get_secret_value())
