"""The whole deployment, in dependency order; returns the stack outputs.

Namespace -> Postgres, Redis, Kafka (+ topics, migrations) -> Flink -> operator + CoffeePipeline
-> dashboard -> monitoring -> NetworkPolicies.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

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
    # baseline is enforced, restricted is warned about and audited: every Pod this program makes
    # meets restricted; the operator's ingest Pods set no seccomp profile, which restricted refuses.
    return k8s.core.v1.Namespace("namespace", metadata={"name": cfg.namespace, "labels": {
        **h.labels("coffee-rt", "namespace"),
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted"}})


def build(cfg: StackConfig) -> dict[str, Any]:
    ctx = Context(cfg, namespace(cfg))
    postgres = Postgres(ctx)
    redis = Redis(ctx)
    kafka = Kafka(ctx)
    flink = Flink(ctx, depends_on=[postgres.secret, redis.secret])
    ready: list[pulumi.Resource] = [postgres.migrations, flink.jobmanager, flink.taskmanager]
    if kafka.topics_job is not None:
        ready.append(kafka.topics_job)
    operator = PipelineOperator(ctx, kafka.bootstrap, flink.rest_url, depends_on=ready)
    dashboard_url: str | None = None
    if cfg.dashboard.enabled:
        dashboard_url = Dashboard(ctx, flink.rest_url, depends_on=[postgres.migrations, redis.secret]).url
    Monitoring(ctx, kafka.bootstrap, redis.host, redis.port, depends_on=[postgres.secret, redis.secret])
    if cfg.network.policies:
        NetworkPolicies(ctx)
    return {
        "namespace": cfg.namespace,
        "ingestUrl": operator.ingest_url,
        "dashboardUrl": dashboard_url,
        "flinkUiUrl": flink.rest_url,
        "kafkaBootstrap": kafka.bootstrap,
    }
