"""The whole deployment, in dependency order; returns the stack outputs.

Namespace -> Postgres, Redis, Kafka (+ topics, migrations) -> Flink -> operator + CoffeePipeline
-> dashboard -> monitoring -> NetworkPolicies.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from coffee_db import roles
from infra import credentials
from infra import hardening as h
from infra.components.dashboard import Dashboard
from infra.components.flink import Flink
from infra.components.kafka import Kafka
from infra.components.monitoring import Monitoring
from infra.components.network import NetworkPolicies
from infra.components.pipeline_operator import PipelineOperator
from infra.components.postgres import Postgres
from infra.components.redis import Redis
from infra.config import StackConfig
from infra.context import Context


def namespace(cfg: StackConfig) -> k8s.core.v1.Namespace:
    # The API server refuses any Pod below the restricted Pod Security Standard: every Pod this
    # program makes meets it (infra/policy/rules.py checks each), and so do the ones the operator
    # makes (coffee_operator.children, checked by tests/unit/operator/test_pod_security.py).
    return k8s.core.v1.Namespace("namespace", metadata={"name": cfg.namespace, "labels": {
        **h.labels("coffee-rt", "namespace"),
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted"}})


def explicit_provider() -> None:
    """With the stack config ``kubernetes:kubeconfig`` (a path or the file's content; ``coffee-rt deploy``
    sets it), every Kubernetes resource goes through one provider for that cluster, never the ambient
    kubectl context. Without it, the default provider as before."""
    kubeconfig = pulumi.Config("kubernetes").get("kubeconfig")
    if kubeconfig is None:
        return
    provider = k8s.Provider("kubernetes", kubeconfig=kubeconfig)

    def use(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not args.type_.startswith("kubernetes:"):
            return None
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(provider=provider)))

    pulumi.runtime.register_stack_transformation(use)


# What holds the shop's data: the namespace (deleting it deletes every claim in it), the stateful
# servers (their claims) and Flink's checkpoints and savepoints. Keyed by (type, resource name).
DATA_RESOURCES = frozenset({
    ("kubernetes:core/v1:Namespace", "namespace"),
    ("kubernetes:apps/v1:StatefulSet", "kafka"),
    ("kubernetes:apps/v1:StatefulSet", "postgres"),
    ("kubernetes:apps/v1:StatefulSet", "redis"),
    ("kubernetes:core/v1:PersistentVolumeClaim", "flink-state"),
})


def keep_data(cfg: StackConfig) -> None:
    """prod: the resources holding data are ``protect``ed (``pulumi destroy`` and a replacing change
    stop with their names) and ``retainOnDelete`` (once unprotected, Pulumi forgets them but the
    cluster keeps them). dev: a ``pulumi destroy`` removes everything."""
    if not cfg.prod:
        return

    def keep(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if (args.type_, args.name) not in DATA_RESOURCES:
            return None
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True,
                                                                                        retain_on_delete=True)))

    pulumi.runtime.register_stack_transformation(keep)


def build(cfg: StackConfig) -> dict[str, Any]:
    explicit_provider()
    keep_data(cfg)
    ctx = Context(cfg, namespace(cfg))
    postgres = Postgres(ctx)
    redis = Redis(ctx)
    kafka = Kafka(ctx)
    flink = Flink(ctx, depends_on=[postgres.role_secrets[roles.JOB], redis.client_secrets[credentials.REDIS_JOB]])
    ready: list[pulumi.Resource] = [postgres.migrations, flink.jobmanager, flink.taskmanager,
                                    postgres.role_secrets[roles.AUDITOR],
                                    redis.client_secrets[credentials.REDIS_AUDITOR]]
    if kafka.topics_job is not None:
        ready.append(kafka.topics_job)
    operator = PipelineOperator(ctx, kafka.bootstrap, flink.rest_url, depends_on=ready)
    dashboard_url: str | None = None
    if cfg.dashboard.enabled:
        dashboard_url = Dashboard(ctx, flink.jobmanager_metrics_url, operator.auditor_metrics_url,
                                  depends_on=[postgres.migrations, postgres.role_secrets[roles.DASHBOARD],
                                              redis.client_secrets[credentials.REDIS_DASHBOARD]]).url
    Monitoring(ctx, kafka.bootstrap, postgres.address, redis.host, redis.port,
               depends_on=[postgres.migrations, postgres.role_secrets[roles.MONITOR],
                           redis.client_secrets[credentials.REDIS_MONITOR]])
    if cfg.network.policies:
        NetworkPolicies(ctx)
    return {
        "namespace": cfg.namespace,
        "ingestUrl": operator.ingest_url,
        "dashboardUrl": dashboard_url,
        "flinkUiUrl": flink.rest_url,
        "kafkaBootstrap": kafka.bootstrap,
    }
