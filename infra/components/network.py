"""NetworkPolicies: deny everything in the namespace, then allow exactly the flows the pipeline needs.

ingest -> Kafka; job (Flink) -> Kafka/Postgres/Redis; dashboard -> Redis/Postgres/the JobManager's
metrics/the auditor's metrics; auditor -> Kafka/Postgres/Redis;
operator -> API server/Flink REST; plus the setup Jobs and exporters to what they serve, Kafka
and Flink among their own Pods, DNS for everyone, and Prometheus (its namespace) to metrics ports.
Each flow is declared once as (source, destination, ports) and becomes the source's egress rule
and the destination's ingress rule, so the two sides cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening as h
from infra.components import flink as fl
from infra.components import kafka as kf
from infra.components import monitoring as mon
from infra.components import pipeline_operator as op
from infra.components.dashboard import INTERNAL_PORT as DASHBOARD_INTERNAL_PORT
from infra.components.dashboard import PORT as DASHBOARD_PORT
from infra.config import NetworkConfig
from infra.context import (
    APP_AUDITOR,
    APP_DASHBOARD,
    APP_FLINK,
    APP_INGEST,
    APP_KAFKA,
    APP_KAFKA_EXPORTER,
    APP_MIGRATE,
    APP_OPERATOR,
    APP_POSTGRES,
    APP_POSTGRES_EXPORTER,
    APP_REDIS,
    APP_REDIS_EXPORTER,
    APP_TOPICS,
    Context,
)

INGEST_PORT = 8080  # coffee_operator.children.INGEST_PORT
INGEST_INTERNAL_PORT = 9080  # coffee_operator.children.INGEST_INTERNAL_PORT: /metrics, /openapi.json

APP_REBUILD = "coffee-rebuild"  # the operator's rebuild Job Pods (coffee_operator.children.REBUILD_APP)


@dataclass(frozen=True)
class Pods:
    app: str

    def selector(self) -> dict[str, Any]:
        return {"matchLabels": {"app.kubernetes.io/name": self.app}}


@dataclass(frozen=True)
class Cidrs:
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class Namespace:
    name: str


ANYWHERE = Cidrs(())  # an ingress rule without `from`


def _peers(peer: Pods | Cidrs | Namespace) -> list[dict[str, Any]]:
    if isinstance(peer, Pods):
        return [{"podSelector": peer.selector()}]
    if isinstance(peer, Namespace):
        return [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": peer.name}}}]
    return [{"ipBlock": {"cidr": c}} for c in peer.cidrs]


def _ports(ports: list[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in sorted(set(ports))]


class Flows:
    def __init__(self) -> None:
        self.ingress: dict[str, list[dict[str, Any]]] = {}
        self.egress: dict[str, list[dict[str, Any]]] = {}

    def allow(self, src: Pods | Cidrs | Namespace, dst: Pods | Cidrs, ports: list[int]) -> None:
        if isinstance(src, Pods):
            self.egress.setdefault(src.app, []).append({"to": _peers(dst), "ports": _ports(ports)})
        if isinstance(dst, Pods):
            rule: dict[str, Any] = {"ports": _ports(ports)}
            if src != ANYWHERE:
                rule["from"] = _peers(src)
            self.ingress.setdefault(dst.app, []).append(rule)


def _port_of(url: str, default: int) -> int:
    return urlsplit(url).port or default


def flows(ctx: Context) -> Flows:
    cfg, net = ctx.cfg, ctx.cfg.network
    f = Flows()
    external = Cidrs(tuple(net.external_cidrs))
    api_server = Cidrs(tuple(net.api_server_cidrs))
    kafka, flink, postgres, redis = Pods(APP_KAFKA), Pods(APP_FLINK), Pods(APP_POSTGRES), Pods(APP_REDIS)
    ingest, operator, dashboard = Pods(APP_INGEST), Pods(APP_OPERATOR), Pods(APP_DASHBOARD)
    auditor = Pods(APP_AUDITOR) if cfg.images.auditor is not None else None
    # The rebuild Jobs the operator runs for spec.rebuild (auditor image) read and write what the auditor reads.
    rebuild = [Pods(APP_REBUILD)] if auditor else []

    # Kafka and its clients.
    kafka_clients = [ingest, flink, Pods(APP_TOPICS), *([auditor] if auditor else []), *rebuild]
    kafka_exporter = cfg.monitoring.exporters and cfg.images.kafka_exporter is not None
    if kafka_exporter:
        kafka_clients.append(Pods(APP_KAFKA_EXPORTER))
    if cfg.kafka.mode == "in-cluster":
        for client in kafka_clients:
            f.allow(client, kafka, [kf.CLIENT_PORT])
        f.allow(kafka, kafka, [kf.CLIENT_PORT, kf.CONTROLLER_PORT])
    else:
        assert cfg.kafka.bootstrap is not None
        ports = [int(hp.rsplit(":", 1)[1]) for hp in cfg.kafka.bootstrap.split(",")]
        for client in kafka_clients:
            f.allow(client, external, ports)

    # Postgres and Redis and their clients.
    pg_clients = [flink, dashboard, Pods(APP_MIGRATE), *([auditor] if auditor else []), *rebuild]
    redis_clients = [flink, dashboard, *([auditor] if auditor else []), *rebuild]
    if cfg.monitoring.exporters:
        pg_clients.append(Pods(APP_POSTGRES_EXPORTER))
        redis_clients.append(Pods(APP_REDIS_EXPORTER))
    if cfg.postgres.mode == "in-cluster":
        pg_target: Pods | Cidrs = postgres
        pg_port = 5432
    else:
        assert cfg.secrets.postgres_dsn is not None
        pg_target, pg_port = external, _port_of(cfg.secrets.postgres_dsn.get_secret_value(), 5432)
    if cfg.redis.mode == "in-cluster":
        redis_target: Pods | Cidrs = redis
        redis_port = 6379
    else:
        assert cfg.secrets.redis_url is not None
        redis_target, redis_port = external, _port_of(cfg.secrets.redis_url.get_secret_value(), 6379)
    for client in pg_clients:
        f.allow(client, pg_target, [pg_port])
    for client in redis_clients:
        f.allow(client, redis_target, [redis_port])

    # Flink among itself, its REST API for the operator; the dashboard reads the job's state from
    # the JobManager's metrics (no access to the REST API, which can upload and run code).
    f.allow(flink, flink, [fl.RPC_PORT, fl.BLOB_PORT, fl.TM_RPC_PORT, fl.TM_DATA_PORT])
    f.allow(operator, flink, [fl.REST_PORT])
    f.allow(dashboard, flink, [fl.METRICS_PORT])
    if auditor:
        f.allow(dashboard, auditor, [op.AUDITOR_PORT])
    if cfg.flink.high_availability:
        f.allow(flink, api_server, net.api_server_ports)
    if cfg.flink.state_uri:
        endpoint = cfg.flink.s3_endpoint
        f.allow(flink, external, [_port_of(endpoint, 443) if endpoint else 443])

    # The operator watches its resources and reads Secrets through the API server.
    f.allow(operator, api_server, net.api_server_ports)

    # The public faces: anyone in or outside the cluster may call ingest and the dashboard.
    f.allow(ANYWHERE, ingest, [INGEST_PORT])
    f.allow(ANYWHERE, dashboard, [DASHBOARD_PORT])

    # Prometheus scrapes from its own namespace; the ingest's and the dashboard's internal ports
    # (metrics, OpenAPI) admit nothing else.
    prometheus = Namespace(cfg.monitoring.prometheus_namespace)
    f.allow(prometheus, ingest, [INGEST_INTERNAL_PORT])
    f.allow(prometheus, dashboard, [DASHBOARD_INTERNAL_PORT])
    f.allow(prometheus, flink, [fl.METRICS_PORT])
    f.allow(prometheus, operator, [op.METRICS_PORT])
    if auditor:
        f.allow(prometheus, auditor, [op.AUDITOR_PORT])
    if kafka_exporter:
        f.allow(prometheus, Pods(APP_KAFKA_EXPORTER), [mon.KAFKA_EXPORTER_PORT])
    if cfg.monitoring.exporters:
        f.allow(prometheus, Pods(APP_POSTGRES_EXPORTER), [mon.POSTGRES_EXPORTER_PORT])
        f.allow(prometheus, Pods(APP_REDIS_EXPORTER), [mon.REDIS_EXPORTER_PORT])
    return f


def dns_egress(net: NetworkConfig) -> list[dict[str, Any]]:
    """DNS for every Pod: kube-system's Pods on 53, and ``dnsCidrs`` (a DNS server outside Pods) on ``dnsPorts``."""
    rules: list[dict[str, Any]] = [
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
         "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
    if net.dns_cidrs:
        rules.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in net.dns_cidrs],
                      "ports": [{"protocol": protocol, "port": port} for port in net.dns_ports
                                for protocol in ("UDP", "TCP")]})
    return rules


class NetworkPolicies(pulumi.ComponentResource):
    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:NetworkPolicies", "network", None, opts)
        ns = ctx.ns
        lbls = h.labels("coffee-rt-network", "network")
        opts_ = h.child(self, ctx.namespace)
        self.names: list[str] = ["default-deny", "allow-dns"]
        k8s.networking.v1.NetworkPolicy(
            "default-deny", metadata=h.meta("default-deny", ns, lbls),
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, opts=opts_)
        k8s.networking.v1.NetworkPolicy(
            "allow-dns", metadata=h.meta("allow-dns", ns, lbls),
            spec={"podSelector": {}, "policyTypes": ["Egress"], "egress": dns_egress(ctx.cfg.network)}, opts=opts_)
        table = flows(ctx)
        for app in sorted(set(table.ingress) | set(table.egress)):
            name = f"allow-{app}"
            self.names.append(name)
            k8s.networking.v1.NetworkPolicy(
                name, metadata=h.meta(name, ns, lbls),
                spec={"podSelector": Pods(app).selector(), "policyTypes": ["Ingress", "Egress"],
                      "ingress": table.ingress.get(app, []), "egress": table.egress.get(app, [])},
                opts=opts_)
        self.register_outputs({"policies": self.names})
