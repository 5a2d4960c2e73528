"""Typed, validated settings of the local stack: ports, folders, versions.

Read once from ``COFFEE_RT_*`` environment variables (e.g. ``COFFEE_RT_KAFKA_PORT``);
tests build their own instance with other ports and a throwaway state folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from coffee_db import roles
from coffee_orders.topics import MAX_ORDERS_RETENTION_DAYS, MIN_ORDERS_RETENTION_DAYS, ORDERS_RETENTION_DAYS
from coffee_rt.alerts.rules import RUNBOOK_BASE, check_runbook_base
from coffee_rt.errors import UsageError
from coffee_rt.local.secret_files import generated_secret
from coffee_rt.paths import cache_dir, default_state_dir
from coffee_settings.env import SettingsError, settings_from_env

ENV_PREFIX = "COFFEE_RT_"
# COFFEE_RT_* variables read by other code, not settings of this model: the folders
# (coffee_rt.paths), the test stack (tests/conftest.py), the failure suite's whole matrix
# (tests/failure) and the API server wait (coffee_rt.k8s).
READ_ELSEWHERE = frozenset({"COFFEE_RT_CACHE", "COFFEE_RT_STATE", "COFFEE_RT_TEST_PORT_OFFSET",
                            "COFFEE_RT_TEST_KEEP", "COFFEE_RT_FAILURE_MATRIX", "COFFEE_RT_AWAIT_READY_TIMEOUT"})

Port = int
REDIS_DASHBOARD_USER = "coffee-dashboard"  # the dashboard's Redis ACL user (the job uses the default user)


class LocalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    state_dir: Path = Field(default_factory=default_state_dir)
    cache_dir: Path = Field(default_factory=cache_dir)

    kafka_port: Port = Field(19092, ge=1024, le=65535)
    kafka_controller_port: Port = Field(19093, ge=1024, le=65535)
    flink_rest_port: Port = Field(18081, ge=1024, le=65535)
    flink_rpc_port: Port = Field(16123, ge=1024, le=65535)
    # Ranges of five for the TaskManager/blob/metrics ports so several stacks can coexist.
    flink_aux_port_base: Port = Field(16130, ge=1024, le=65500)
    postgres_port: Port = Field(15432, ge=1024, le=65535)
    redis_port: Port = Field(16379, ge=1024, le=65535)
    ingest_port: Port = Field(18080, ge=1024, le=65535)
    ingest_internal_port: Port = Field(18088, ge=1024, le=65535)  # its /metrics and /openapi.json
    dashboard_port: Port = Field(18090, ge=1024, le=65535)
    dashboard_internal_port: Port = Field(18098, ge=1024, le=65535)  # its /metrics
    auditor_port: Port = Field(19195, ge=1024, le=65535)  # the ledger auditor's metrics
    k8s_apiserver_port: Port = Field(16443, ge=1024, le=65535)
    etcd_port: Port = Field(12379, ge=1024, le=65535)
    etcd_peer_port: Port = Field(12380, ge=1024, le=65535)
    prometheus_port: Port = Field(19190, ge=1024, le=65535)
    alertmanager_port: Port = Field(19193, ge=1024, le=65535)
    redis_exporter_port: Port = Field(19121, ge=1024, le=65535)
    postgres_exporter_port: Port = Field(19187, ge=1024, le=65535)
    # The real one-node cluster (`local up cluster`, coffee_rt.local.components.cluster): its API
    # server, kubelet and DNS on the node IP (its bridge's first address), health ports on loopback.
    cluster_apiserver_port: Port = Field(16444, ge=1024, le=65535)
    cluster_etcd_port: Port = Field(12381, ge=1024, le=65535)
    cluster_etcd_peer_port: Port = Field(12382, ge=1024, le=65535)
    kubelet_port: Port = Field(16250, ge=1024, le=65535)
    kube_proxy_port: Port = Field(16256, ge=1024, le=65535)
    kube_proxy_metrics_port: Port = Field(16249, ge=1024, le=65535)
    coredns_port: Port = Field(16053, ge=1024, le=65535)
    coredns_ready_port: Port = Field(16181, ge=1024, le=65535)
    kube_router_metrics_port: Port = Field(16258, ge=1024, le=65535)  # kube-router's metrics on loopback
    cluster_bridge: str = Field("coffeert0", pattern=r"^[a-z][a-z0-9]{1,14}$")
    cluster_pod_cidr: str = "172.31.0.0/24"

    # The passwords are generated, one per state folder: properties below, files under secrets/.
    postgres_user: str = "coffee"
    postgres_db: str = "coffee"

    kafka_heap: str = "512m"
    orders_retention_days: int = Field(
        ORDERS_RETENTION_DAYS, ge=MIN_ORDERS_RETENTION_DAYS, le=MAX_ORDERS_RETENTION_DAYS,
        description="how long the orders topic keeps every order (how far back the audit and the rebuilds "
                    "reach; docs/ledger.md); applied to an existing topic when Kafka starts")
    flink_taskmanager_slots: int = Field(4, ge=1, le=64)
    flink_taskmanager_memory: str = "2048m"
    flink_jobmanager_memory: str = "1024m"
    # On a small machine the order-taking path (ingest service, Kafka) keeps nice 0 and the rest
    # yields to it; see coffee_rt.local.process.lower_group_priority for why the session's group too.
    flink_niceness: int = Field(10, ge=0, le=19, description="CPU niceness of the Flink processes (0: none)")
    background_niceness: int = Field(
        5, ge=0, le=19,
        description="CPU niceness of the servers off the order-taking path: Postgres, Redis, the dashboard, "
                    "Prometheus, Alertmanager and the exporters (0: none)")
    background_cpu: Literal["weight", "idle", "nice"] = Field(
        "weight",
        description="weight: the servers with a niceness above 0 also run in a cgroup weighted as one ordinary "
                    "process (coffee_rt.local.cpu), where the machine allows one; idle: in an idle cgroup instead "
                    "(starved by any other busy process); nice: niceness only")
    runbook_base_url: str = Field(
        RUNBOOK_BASE,
        description="the http(s) folder the alerts' runbook_url links point into (<folder>/<AlertName>.md); "
                    "the local Prometheus loads the rules with it")
    order_path_cpus: Literal["split", "shared"] = Field(
        "split",
        description="split: on two or more CPUs the ingest service runs on the first CPU and Kafka on the others "
                    "(coffee_rt.local.cpu.order_path_cpus); shared: both may run anywhere")

    @field_validator("runbook_base_url")
    @classmethod
    def _runbook_base(cls, value: str) -> str:
        return check_runbook_base(value)

    @model_validator(mode="after")
    def _ports_distinct(self) -> LocalSettings:
        ports = self.ports()
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port in seen:
                raise ValueError(f"{name} and {seen[port]} both use port {port}")
            seen[port] = name
        return self

    def ports(self) -> dict[str, int]:
        aux = self.flink_aux_port_base
        return {
            "kafka_port": self.kafka_port,
            "kafka_controller_port": self.kafka_controller_port,
            "flink_rest_port": self.flink_rest_port,
            "flink_rpc_port": self.flink_rpc_port,
            "flink_blob_port": aux,
            "flink_taskmanager_rpc_port": aux + 1,
            "flink_taskmanager_data_port": aux + 2,
            "flink_jobmanager_metrics_port": aux + 3,
            "flink_taskmanager_metrics_port": aux + 4,
            "postgres_port": self.postgres_port,
            "redis_port": self.redis_port,
            "ingest_port": self.ingest_port,
            "ingest_internal_port": self.ingest_internal_port,
            "dashboard_port": self.dashboard_port,
            "dashboard_internal_port": self.dashboard_internal_port,
            "auditor_port": self.auditor_port,
            "k8s_apiserver_port": self.k8s_apiserver_port,
            "etcd_port": self.etcd_port,
            "etcd_peer_port": self.etcd_peer_port,
            "prometheus_port": self.prometheus_port,
            "alertmanager_port": self.alertmanager_port,
            "redis_exporter_port": self.redis_exporter_port,
            "postgres_exporter_port": self.postgres_exporter_port,
            "cluster_apiserver_port": self.cluster_apiserver_port,
            "cluster_etcd_port": self.cluster_etcd_port,
            "cluster_etcd_peer_port": self.cluster_etcd_peer_port,
            "kubelet_port": self.kubelet_port,
            "kube_proxy_port": self.kube_proxy_port,
            "kube_proxy_metrics_port": self.kube_proxy_metrics_port,
            "coredns_port": self.coredns_port,
            "coredns_ready_port": self.coredns_ready_port,
            "kube_router_metrics_port": self.kube_router_metrics_port,
        }

    # Addresses clients use.
    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def ingest_url(self) -> str:
        return f"http://{self.host}:{self.ingest_port}"

    @property
    def ingest_internal_url(self) -> str:
        """The ingest's /metrics, /openapi.json and probes (not on the order port)."""
        return f"http://{self.host}:{self.ingest_internal_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.dashboard_port}"

    @property
    def dashboard_internal_url(self) -> str:
        """The dashboard's /metrics and probes (not on the page's port)."""
        return f"http://{self.host}:{self.dashboard_internal_port}"

    @property
    def flink_rest_url(self) -> str:
        return f"http://{self.host}:{self.flink_rest_port}"

    # Secrets, generated on first use (coffee_rt.local.secret_files). Never print these: the
    # addresses the stack shows are postgres_address and redis_address.
    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def postgres_password(self) -> str:
        return generated_secret(self.secrets_dir / "postgres-password")

    @property
    def redis_password(self) -> str:
        return generated_secret(self.secrets_dir / "redis-password")

    @property
    def dashboard_session_key_file(self) -> Path:
        """The key the dashboard signs its session cookies with (generated, 0600)."""
        generated_secret(self.secrets_dir / "dashboard-session-key")
        return self.secrets_dir / "dashboard-session-key"

    @property
    def redis_dashboard_password(self) -> str:
        return generated_secret(self.secrets_dir / "redis-dashboard-password")

    @property
    def redis_dashboard_url(self) -> str:
        """The dashboard's Redis user: reads and subscribes, nothing else (coffee_rt.local.components.redis)."""
        return (f"redis://{REDIS_DASHBOARD_USER}:{quote(self.redis_dashboard_password, safe='')}"
                f"@{self.host}:{self.redis_port}/0")

    def postgres_role_password(self, role: str) -> str:
        """The password of one of the database's roles (coffee_db.roles), set at every Postgres start."""
        if role not in roles.ROLES:
            raise ValueError(f"{role!r} is not one of the database's roles {roles.ROLES}")
        return generated_secret(self.secrets_dir / f"postgres-{role}-password")

    def postgres_dsn_of(self, role: str) -> str:
        """The DSN of one of the database's roles (the owner's is ``postgres_dsn``)."""
        return (f"postgresql://{role}:{quote(self.postgres_role_password(role), safe='')}"
                f"@{self.host}:{self.postgres_port}/{self.postgres_db}")

    @property
    def postgres_dsn(self) -> str:
        return (
            f"postgresql://{quote(self.postgres_user, safe='')}:{quote(self.postgres_password, safe='')}"
            f"@{self.host}:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def redis_url(self) -> str:
        return f"redis://:{quote(self.redis_password, safe='')}@{self.host}:{self.redis_port}/0"

    @property
    def postgres_address(self) -> str:
        """The DSN without its password, to show."""
        return f"postgresql://{self.postgres_user}@{self.host}:{self.postgres_port}/{self.postgres_db}"

    @property
    def redis_address(self) -> str:
        """The URL without its password, to show."""
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.host}:{self.alertmanager_port}"

    @property
    def k8s_apiserver_url(self) -> str:
        return f"https://{self.host}:{self.k8s_apiserver_port}"

    @classmethod
    def shifted(cls, offset: int, state_dir: Path) -> LocalSettings:
        """A second stack beside the developer's: every port ``offset`` above its default (the test
        stack, the benchmarks' stack)."""
        ports = {name: field.default + offset for name, field in cls.model_fields.items()
                 if name.endswith(("_port", "_port_base"))}
        # The cluster's bridge and subnet are machine-wide too: offset 10,000 -> coffeert1, 172.31.1.0/24.
        index = offset // 10_000 % 256
        return cls(state_dir=state_dir, cluster_bridge=f"coffeert{index}", cluster_pod_cidr=f"172.31.{index}.0/24",
                   **ports)

    def with_env(self, env: dict[str, str] | None = None) -> LocalSettings:
        """These ports and folders, every other setting from ``COFFEE_RT_<FIELD>`` variables (a
        benchmark's stack at a port offset, run with a developer's choices, e.g. the CPU policy)."""
        placement = ("state_dir", "cluster_bridge", "cluster_pod_cidr")
        kept = {name: getattr(self, name) for name in type(self).model_fields
                if name.endswith(("_port", "_port_base")) or name in placement}
        return type(self).from_env(env, **kept)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> LocalSettings:
        """Settings from ``COFFEE_RT_<FIELD>`` variables; an unknown or invalid one is a usage error."""
        try:
            return settings_from_env(cls, ENV_PREFIX, "local stack", env, also_read=READ_ELSEWHERE,
                                     overrides=overrides)
        except SettingsError as exc:
            raise UsageError(str(exc)) from None
