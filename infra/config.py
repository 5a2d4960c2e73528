"""The stack's configuration: read from Pulumi config once, validated once, typed everywhere after.

Every key lives in the ``coffee-rt:`` namespace (``pulumi config set coffee-rt:kafka ...``). Objects
are structured config (YAML maps in ``Pulumi.<stack>.yaml``). An unknown key, a bad value or a
missing secret stops the program before any resource is registered, with the key named, so a
typo never silently falls back to a default. Credentials are accepted only as Pulumi secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from coffee_orders.topics import MAX_ORDERS_RETENTION_DAYS, MIN_ORDERS_RETENTION_DAYS, ORDERS_RETENTION_DAYS

PROJECT = "coffee-rt"

# Kubernetes resource.Quantity, the same pattern the CoffeePipeline CRD uses.
_QUANTITY = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
             r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_FLINK_MEMORY = r"^[1-9][0-9]*(m|g|mb|gb)$"
_DURATION = r"^[1-9][0-9]*(ms|s|min|m|h|d)$"
_PASSWORD = r"^[A-Za-z0-9._~-]{16,128}$"  # safe unquoted in URLs, redis.conf and shell here-documents
_BOOTSTRAP = r"^[^\s,:]+:[0-9]{1,5}(,[^\s,:]+:[0-9]{1,5})*$"
_SESSION_KEY = r"^[A-Za-z0-9._~+/=-]{32,256}$"


class ConfigError(ValueError):
    """The stack config is not usable; the message names every bad key (``coffee-rt:<path>``)."""


def _image(value: str) -> str:
    """A pinned image: a tag other than ``latest``, or a digest. Registry ports are not tags."""
    if re.search(r"\s", value) or not value:
        raise ValueError("must be an image reference without spaces")
    if "@sha256:" in value:
        if not re.fullmatch(r".+@sha256:[0-9a-f]{64}", value):
            raise ValueError(f"{value!r}: a digest is sha256: and 64 hex digits")
        return value
    last = value.rsplit("/", 1)[-1]
    if ":" not in last:
        raise ValueError(f"{value!r} has no tag: pin a version tag or a digest")
    if last.rsplit(":", 1)[1] == "latest":
        raise ValueError(f"{value!r}: 'latest' is not a pin; use a version tag or a digest")
    return value


Image = Annotated[str, AfterValidator(_image)]
Quantity = Annotated[str, Field(pattern=_QUANTITY)]

# The runbook folder alerts/*.rules.yaml link to; the default of monitoring.runbookBaseUrl.
RUNBOOK_BASE = "https://github.com/coffee-rt/coffee-rt/blob/main/runbooks"


def _runbook_base(value: str) -> str:
    """The http(s) folder the alerts' runbook links point into; returned without a trailing slash."""
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment or re.search(r"\s", value):
        raise ValueError("must be the http(s) URL of the folder holding the runbooks, without query or fragment "
                         f"(e.g. {RUNBOOK_BASE}), got {value!r}")
    return value.rstrip("/")


class Model(BaseModel):
    """camelCase keys as written in the stack file, snake_case attributes in Python; no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class CpuMemory(Model):
    cpu: Quantity
    memory: Quantity


class Resources(Model):
    requests: CpuMemory
    limits: CpuMemory

    def manifest(self) -> dict[str, dict[str, str]]:
        return {"requests": self.requests.model_dump(), "limits": self.limits.model_dump()}


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str | None = None) -> Resources:
    return Resources(requests=CpuMemory(cpu=cpu, memory=memory),
                     limits=CpuMemory(cpu=cpu_limit, memory=memory_limit or memory))


class Images(Model):
    # Built from this repository (docs/deployment.md): no default, the registry is the user's.
    ingest: Image
    flink: Image
    operator: Image
    dashboard: Image | None = None
    auditor: Image | None = None  # set: the pipeline runs the ledger auditor (docs/ledger.md)
    # Official images, pinned by version tag (pin a digest in the stack file where you can).
    kafka: Image = "apache/kafka:4.1.1"
    postgres: Image = "postgres:15.14-bookworm"
    redis: Image = "redis:7.4.6-bookworm"
    # null: no Kafka exporter (a cluster that cannot pull it); the lag alerts then have no data.
    kafka_exporter: Image | None = "danielqsj/kafka-exporter:v1.9.0"
    postgres_exporter: Image = "quay.io/prometheuscommunity/postgres-exporter:v0.17.1"
    redis_exporter: Image = "oliver006/redis_exporter:v1.74.0"


class Storage(Model):
    size: Quantity = "5Gi"
    storage_class: str | None = None


class KafkaConfig(Model):
    mode: Literal["in-cluster", "external"] = "in-cluster"
    bootstrap: str | None = Field(default=None, pattern=_BOOTSTRAP)  # external only: host:port[,host:port]
    brokers: int = Field(default=1, ge=1, le=9)
    replication_factor: int = Field(default=1, ge=1, le=9)
    min_insync_replicas: int = Field(default=1, ge=1, le=9)
    storage: Storage = Storage()
    heap: str = Field(default="512m", pattern=r"^[1-9][0-9]*[mg]$")
    resources: Resources = resources("250m", "1Gi", "1")
    create_topics: bool = True
    # How long the orders topic keeps every order: how far back the ledger audit and the rebuilds
    # reach (docs/ledger.md). Applied to an existing topic too by the topics Job.
    orders_retention_days: int = Field(default=ORDERS_RETENTION_DAYS, ge=MIN_ORDERS_RETENTION_DAYS,
                                       le=MAX_ORDERS_RETENTION_DAYS)


class FlinkConfig(Model):
    task_managers: int = Field(default=1, ge=1, le=64)
    slots_per_task_manager: int = Field(default=2, ge=1, le=64)
    job_manager_memory: str = Field(default="1024m", pattern=_FLINK_MEMORY)
    task_manager_memory: str = Field(default="2048m", pattern=_FLINK_MEMORY)
    state_backend: Literal["hashmap", "rocksdb"] = "hashmap"
    # Checkpoints and savepoints: an S3-compatible URI (s3://bucket/prefix) or, when unset, a PVC.
    state_uri: str | None = Field(default=None, pattern=r"^s3a?://[^\s/]+(/[^\s]*)?$")
    s3_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    state_storage: Storage = Storage(size="10Gi")
    state_access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
    high_availability: bool = False
    job_manager_resources: Resources = resources("250m", "1Gi", "1")
    task_manager_resources: Resources = resources("500m", "2Gi", "2")


class PostgresConfig(Model):
    mode: Literal["in-cluster", "external"] = "in-cluster"
    database: str = Field(default="coffee", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    user: str = Field(default="coffee", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    storage: Storage = Storage()
    resources: Resources = resources("100m", "256Mi", "1", "512Mi")


class RedisConfig(Model):
    mode: Literal["in-cluster", "external"] = "in-cluster"
    storage: Storage = Storage(size="1Gi")
    max_memory: str = Field(default="200mb", pattern=r"^[1-9][0-9]*(kb|mb|gb)$")
    resources: Resources = resources("50m", "128Mi", "500m", "256Mi")


class OperatorConfig(Model):
    resources: Resources = resources("50m", "128Mi", "500m", "256Mi")
    reconcile_interval: float = Field(default=5.0, gt=0, le=3600)


class PipelineConfig(Model):
    name: str = Field(default="roastery", pattern=_DNS_LABEL)
    ingest_replicas: int = Field(default=1, ge=0, le=20)
    ingest_resources: Resources = resources("100m", "128Mi", "1", "256Mi")
    parallelism: int = Field(default=1, ge=1, le=64)
    checkpoint_interval: str = Field(default="10s", pattern=_DURATION)
    periodic_savepoint_interval: str | None = Field(default="1h", pattern=_DURATION)
    savepoint_max_count: int = Field(default=5, ge=1, le=100)
    audit_interval: str = Field(default="30s", pattern=_DURATION)  # the ledger auditor's round


class MonitoringConfig(Model):
    # Create PrometheusRule / AlertmanagerConfig / monitors: only when the Prometheus Operator's CRDs exist.
    prometheus_operator: bool = False
    exporters: bool = True
    slack_channel: str = Field(default="#coffee-rt-alerts", pattern=r"^#[a-z0-9][a-z0-9._-]{0,79}$")
    # Where the runbooks are published: every alert's runbook_url becomes <this>/<AlertName>.md.
    runbook_base_url: Annotated[str, AfterValidator(_runbook_base)] = RUNBOOK_BASE
    # Labels your Prometheus / Alertmanager select rules and configs by (e.g. release: kube-prometheus-stack).
    rule_labels: dict[str, str] = Field(default_factory=dict)
    prometheus_namespace: str = Field(default="monitoring", pattern=_DNS_LABEL)
    exporter_resources: Resources = resources("20m", "32Mi", "200m", "64Mi")


class NetworkConfig(Model):
    policies: bool = True
    # Where the API server is, for the operator's (and Flink HA's) egress; narrow it if you know it.
    api_server_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    api_server_ports: list[int] = Field(default_factory=lambda: [443, 6443], min_length=1)
    # Where external services (managed Kafka/Postgres/Redis, S3) are, for egress to them.
    external_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    # Where DNS answers when it is not in kube-system's Pods (the local cluster's CoreDNS runs on its
    # node; `coffee-rt deploy` sets these): every Pod may also send DNS to these CIDRs on these ports.
    dns_cidrs: list[str] = Field(default_factory=list)
    dns_ports: list[int] = Field(default_factory=lambda: [53], min_length=1)


class DashboardConfig(Model):
    enabled: bool = False
    replicas: int = Field(default=1, ge=1, le=10)
    resources: Resources = resources("50m", "128Mi", "500m", "256Mi")
    default_timezone: str = "UTC"
    # How long a browser's session cookie lasts after it opened the link with a token (1min to 30d).
    session_ttl: str = Field(default="12h", pattern=_DURATION)
    # The cookie's Secure flag: the browser sends it over HTTPS only. Required in prod (behind HTTPS).
    cookie_secure: bool = False


class SecretsConfig(Model):
    """Credentials: each must be set with ``pulumi config set --secret``; which are needed depends on modes."""

    postgres_password: SecretStr | None = None
    postgres_dsn: SecretStr | None = None
    redis_password: SecretStr | None = None
    redis_url: SecretStr | None = None
    ingest_tokens: SecretStr | None = None
    dashboard_tokens_sha256: SecretStr | None = None
    dashboard_session_key: SecretStr | None = None  # signs the session cookies; shared by every replica
    # Every role's password (Postgres roles, Redis ACL users) is derived from it (infra/credentials.py).
    credentials_key: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None


SECRET_KEYS = frozenset(to_camel(name) for name in SecretsConfig.model_fields)
OBJECT_KEYS = {"images": Images, "kafka": KafkaConfig, "flink": FlinkConfig, "postgres": PostgresConfig,
               "redis": RedisConfig, "operator": OperatorConfig, "pipeline": PipelineConfig,
               "monitoring": MonitoringConfig, "network": NetworkConfig, "dashboard": DashboardConfig}
SCALAR_KEYS = frozenset({"profile", "namespace", "clusterDomain"})
KNOWN_KEYS = SECRET_KEYS | set(OBJECT_KEYS) | SCALAR_KEYS


class StackConfig(Model):
    profile: Literal["dev", "prod"]
    namespace: str = Field(default="coffee-rt", pattern=_DNS_LABEL)
    cluster_domain: str = Field(default="cluster.local", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    images: Images
    kafka: KafkaConfig = KafkaConfig()
    flink: FlinkConfig = FlinkConfig()
    postgres: PostgresConfig = PostgresConfig()
    redis: RedisConfig = RedisConfig()
    operator: OperatorConfig = OperatorConfig()
    pipeline: PipelineConfig = PipelineConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    network: NetworkConfig = NetworkConfig()
    dashboard: DashboardConfig = DashboardConfig()
    secrets: SecretsConfig = SecretsConfig()

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        problems = _cross_checks(self)
        if problems:
            raise ValueError("; ".join(f"{key}: {msg}" for key, msg in problems))
        return self

    @property
    def prod(self) -> bool:
        return self.profile == "prod"


def _cross_checks(c: StackConfig) -> list[tuple[str, str]]:
    """Rules that span keys. Each names the key to change."""
    p: list[tuple[str, str]] = []
    k, s = c.kafka, c.secrets
    if k.mode == "external" and not k.bootstrap:
        p.append(("kafka.bootstrap", "required when kafka.mode is external (host:port[,host:port])"))
    if k.mode == "in-cluster":
        if k.bootstrap:
            p.append(("kafka.bootstrap", "only for kafka.mode external (in-cluster Kafka has its own)"))
        if k.replication_factor > k.brokers:
            p.append(("kafka.replicationFactor", f"{k.replication_factor} is more than kafka.brokers ({k.brokers})"))
        if k.min_insync_replicas > k.replication_factor:
            p.append(("kafka.minInsyncReplicas",
                      f"{k.min_insync_replicas} is more than kafka.replicationFactor ({k.replication_factor})"))
        if c.prod:
            if k.brokers < 3:
                p.append(("kafka.brokers", f"prod needs at least 3 brokers (got {k.brokers})"))
            if k.replication_factor < 3:
                p.append(("kafka.replicationFactor", f"prod needs replication factor 3 (got {k.replication_factor})"))
            if k.min_insync_replicas < 2 or k.min_insync_replicas >= k.replication_factor:
                p.append(("kafka.minInsyncReplicas", "prod needs at least 2 and fewer than the replication factor "
                          f"(got {k.min_insync_replicas})"))
    f = c.flink
    if f.s3_endpoint and not f.state_uri:
        p.append(("flink.s3Endpoint", "only used with flink.stateUri"))
    if c.prod:
        if not f.high_availability:
            p.append(("flink.highAvailability", "prod needs Kubernetes HA services (true)"))
        if f.state_uri is None and f.state_access_mode != "ReadWriteMany" and f.task_managers > 1:
            p.append(("flink.stateUri", "prod with several TaskManagers needs shared state: an s3:// URI or "
                      "flink.stateAccessMode ReadWriteMany"))
        if c.pipeline.ingest_replicas < 2:
            p.append(("pipeline.ingestReplicas", f"prod needs at least 2 (got {c.pipeline.ingest_replicas})"))
    if c.pipeline.parallelism > f.task_managers * f.slots_per_task_manager:
        p.append(("pipeline.parallelism", f"{c.pipeline.parallelism} is more than the cluster's slots "
                  f"({f.task_managers} x {f.slots_per_task_manager})"))
    needed = {
        "postgresPassword": c.postgres.mode == "in-cluster",
        "postgresDsn": c.postgres.mode == "external",
        "redisPassword": c.redis.mode == "in-cluster",
        "redisUrl": c.redis.mode == "external",
        "ingestTokens": True,
        "credentialsKey": True,
        "dashboardTokensSha256": c.dashboard.enabled,
        # Several replicas must sign and check cookies with one key; one replica may use its own.
        "dashboardSessionKey": c.dashboard.enabled and c.dashboard.replicas > 1,
        "slackWebhookUrl": c.monitoring.prometheus_operator,
        "s3AccessKeyId": f.state_uri is not None,
        "s3SecretAccessKey": f.state_uri is not None,
    }
    optional = {"dashboardSessionKey": c.dashboard.enabled}  # allowed though not needed
    for key, wanted in needed.items():
        present = getattr(s, _snake(key)) is not None
        if present and not wanted and optional.get(key):
            continue
        if wanted and not present:
            p.append((key, f"missing: set it with `pulumi config set --secret {PROJECT}:{key} <value>`"))
        elif present and not wanted:
            p.append((key, "set but not used with this configuration (remove it)"))
    for key in ("postgresPassword", "redisPassword"):
        value = getattr(s, _snake(key))
        if value is not None and not re.fullmatch(_PASSWORD, value.get_secret_value()):
            p.append((key, "must be 16 to 128 characters of A-Z a-z 0-9 . _ ~ - (e.g. openssl rand -hex 24)"))
    if s.postgres_dsn is not None:
        dsn = urlsplit(s.postgres_dsn.get_secret_value())
        if dsn.scheme not in ("postgresql", "postgres") or not dsn.hostname or not dsn.username:
            p.append(("postgresDsn", "must look like postgresql://user:password@host:5432/db"))
    if s.redis_url is not None:
        url = urlsplit(s.redis_url.get_secret_value())
        if url.scheme not in ("redis", "rediss") or not url.hostname:
            p.append(("redisUrl", "must look like redis://:password@host:6379/0"))
    if s.ingest_tokens is not None:
        try:
            tokens = json.loads(s.ingest_tokens.get_secret_value())
            if not isinstance(tokens, dict) or not isinstance(tokens.get("tokens"), list):
                raise ValueError
        except ValueError:
            p.append(("ingestTokens", 'must be the token file JSON: {"tokens": [{"store_id": ..., "sha256": ...}]}'))
    session_key = s.dashboard_session_key
    if session_key is not None and not re.fullmatch(_SESSION_KEY, session_key.get_secret_value()):
        p.append(("dashboardSessionKey", "must be 32 to 256 characters of A-Z a-z 0-9 . _ ~ + / = - "
                  "(e.g. openssl rand -hex 32)"))
    credentials_key = s.credentials_key
    if credentials_key is not None and not re.fullmatch(_SESSION_KEY, credentials_key.get_secret_value()):
        p.append(("credentialsKey", "must be 32 to 256 characters of A-Z a-z 0-9 . _ ~ + / = - "
                  "(e.g. openssl rand -hex 32): every role's password is derived from it"))
    ttl = duration_seconds(c.dashboard.session_ttl)
    if not 60 <= ttl <= 30 * 86400:
        p.append(("dashboard.sessionTtl", f"must be between 1min and 30d (got {c.dashboard.session_ttl})"))
    if c.prod and c.dashboard.enabled and not c.dashboard.cookie_secure:
        p.append(("dashboard.cookieSecure", "prod serves the dashboard behind HTTPS: set it to true"))
    if c.dashboard.enabled and c.images.dashboard is None:
        p.append(("images.dashboard", "required when dashboard.enabled is true"))
    if c.monitoring.prometheus_operator and c.monitoring.exporters and c.images.kafka_exporter is None:
        p.append(("images.kafkaExporter",
                  "required when monitoring.prometheusOperator is true (the lag alerts read it)"))
    return p


def duration_seconds(text: str) -> float:
    """A duration of the stack config's form (``_DURATION``: ``500ms``, ``10s``, ``5min``, ``12h``, ``7d``)."""
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|min|m|h|d)", text).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}[unit]


def _snake(camel: str) -> str:
    return _SECRET_FIELDS[camel]


_SECRET_FIELDS = {to_camel(name): name for name in SecretsConfig.model_fields}


def parse(values: Mapping[str, str], secret_keys: frozenset[str] | set[str]) -> StackConfig:
    """Validate raw Pulumi config (``coffee-rt:key`` -> string, objects as JSON) into a StackConfig."""
    problems: list[str] = []
    data: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    prefix = f"{PROJECT}:"
    for full_key, raw in sorted(values.items()):
        if not full_key.startswith(prefix):
            continue  # other namespaces (kubernetes:context, ...) are not ours
        key = full_key[len(prefix):]
        if key not in KNOWN_KEYS:
            problems.append(f"{full_key}: unknown key (known: {', '.join(sorted(KNOWN_KEYS))})")
        elif key in SECRET_KEYS:
            if full_key not in secret_keys:
                problems.append(f"{full_key}: must be a secret; set it with `pulumi config set --secret {full_key} ...`"
                                " (a plaintext value would sit in the stack file)")
            else:
                secrets[key] = raw
        elif key in OBJECT_KEYS:
            try:
                data[key] = json.loads(raw)
            except ValueError:
                problems.append(f"{full_key}: must be a map of settings (got {raw!r})")
        else:
            data[key] = raw
    if problems:
        raise ConfigError("invalid stack config:\n  " + "\n  ".join(problems))
    data["secrets"] = secrets
    try:
        return StackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid stack config:\n  " + "\n  ".join(_describe(e) for e in exc.errors())) from None


def _describe(error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    if loc and loc[0] == "secrets":
        loc = loc[1:]
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "value_error" and not loc:
        # Cross-key rules: "Value error, kafka.brokers: ...; flink.x: ..." -> one line per key.
        return "\n  ".join(f"{PROJECT}:{part}" for part in msg.split("; "))
    where = ".".join(loc)
    if error["type"] == "missing":
        msg = "missing (required)"
    elif error["type"] == "extra_forbidden":
        msg = "unknown key"
    if error["type"] not in ("missing", "extra_forbidden", "value_error") and "input" in error and not isinstance(
            error["input"], dict | list) and where not in SECRET_KEYS:
        msg += f" (got {error['input']!r})"
    return f"{PROJECT}:{where}: {msg}"


def load() -> StackConfig:
    """The running stack's config, from the Pulumi runtime (in-process mocks or the real engine)."""
    from pulumi.runtime import config as runtime_config

    values: dict[str, str] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = {k for k in values if runtime_config.is_config_secret(k)}
    secret_keys |= set(runtime_config.get_config_secret_keys_env())
    return parse(values, frozenset(secret_keys))
