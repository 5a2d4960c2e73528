"""Postgres: a StatefulSet of the official image with a PVC, or an external (managed) server's DSN;
either way the owner's ``coffee-rt-postgres`` Secret, one Secret per client role (the job, the
auditor, the dashboard, the exporter: infra/credentials.py) and a migrations Job that runs as the
owner and sets each role's password from its SCRAM verifier (``coffee-rt-postgres-roles``).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pulumi
import pulumi_kubernetes as k8s

from coffee_db import roles
from infra import credentials
from infra import hardening as h
from infra.config import resources
from infra.context import (
    APP_MIGRATE,
    APP_POSTGRES,
    POSTGRES_AUDITOR_SECRET,
    POSTGRES_DASHBOARD_SECRET,
    POSTGRES_JOB_SECRET,
    POSTGRES_MONITOR_SECRET,
    POSTGRES_ROLES_SECRET,
    POSTGRES_SECRET,
    POSTGRES_SERVICE,
    Context,
)
from infra.migrations import SCRIPT_NAME, configmap_data

POSTGRES_UID = 999  # postgres in the official image
PORT = 5432
MIGRATE_RESOURCES = resources("50m", "64Mi", "500m", "128Mi")
ROLES_SCRIPT = "roles.psql"  # in the migrations ConfigMap: run after SCRIPT_NAME
OWNER_DIR = "/etc/coffee-rt/postgres-owner"  # the migrations Job: the owner's password file
VERIFIERS_DIR = "/etc/coffee-rt/postgres-roles"  # the migrations Job: one SCRAM verifier file per role
# Each client role's Secret (keys dsn, password, user).
ROLE_SECRETS = {roles.JOB: POSTGRES_JOB_SECRET, roles.AUDITOR: POSTGRES_AUDITOR_SECRET,
                roles.DASHBOARD: POSTGRES_DASHBOARD_SECRET, roles.MONITOR: POSTGRES_MONITOR_SECRET}
# The migrations Job: the owner's password from its file into psql's environment (never the Pod's).
MIGRATE = (f'export PGPASSWORD="$(cat {OWNER_DIR}/password)" && exec psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 '
           f'-f /migrations/{SCRIPT_NAME} -f /migrations/{ROLES_SCRIPT}')


def password_of(dsn: str) -> str:
    return unquote(urlsplit(dsn).password or "")


def with_user(dsn: str, user: str, password: str | None) -> str:
    """``dsn`` (postgresql://owner:pw@host:port/db?opts) for another user; without a password: None."""
    parts = urlsplit(dsn)
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    host = parts.hostname or ""
    netloc = f"{auth}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Postgres(pulumi.ComponentResource):
    """``secret`` holds the owner's ``dsn`` and ``password``; ``migrations`` completes once the schema is
    current and every role has its password."""

    secret: k8s.core.v1.Secret
    roles_secret: k8s.core.v1.Secret  # each role's SCRAM verifier
    role_secrets: dict[str, k8s.core.v1.Secret]  # role -> its own Secret (ROLE_SECRETS)
    owner_dsn: str
    address: str
    verifiers: dict[str, str]
    statefulset: k8s.apps.v1.StatefulSet | None
    migrations: k8s.batch.v1.Job
    host: str
    port: int

    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:Postgres", "postgres", None, opts)
        cfg, ns, secrets = ctx.cfg.postgres, ctx.ns, ctx.cfg.secrets
        self.statefulset = None
        lbls = h.labels(APP_POSTGRES, "database")
        if cfg.mode == "external":
            assert secrets.postgres_dsn is not None  # guaranteed by the config's cross-checks
            dsn = secrets.postgres_dsn.get_secret_value()
            parts = urlsplit(dsn)
            self.host, self.port = parts.hostname or "", parts.port or PORT
            data = {"dsn": dsn, "password": password_of(dsn)}
        else:
            assert secrets.postgres_password is not None
            password = secrets.postgres_password.get_secret_value()
            self.host, self.port = ctx.host(POSTGRES_SERVICE), PORT
            dsn = (f"postgresql://{quote(cfg.user, safe='')}:{quote(password, safe='')}@{self.host}:{PORT}/"
                   f"{cfg.database}?sslmode=disable")
            data = {"dsn": dsn, "password": password, "user": cfg.user, "database": cfg.database}
        self.owner_dsn = dsn
        parts = urlsplit(dsn)
        # host:port/db?options: the exporter's DATA_SOURCE_URI (its user and password file apart).
        self.address = f"{parts.hostname}:{parts.port or PORT}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        self.secret = k8s.core.v1.Secret(
            "postgres", metadata=h.meta(POSTGRES_SECRET, ns, lbls), type="Opaque",
            string_data=pulumi.Output.secret(data), opts=h.child(self, ctx.namespace))
        assert secrets.credentials_key is not None  # required by the config's cross-checks
        key = secrets.credentials_key.get_secret_value()
        self.verifiers = {role: credentials.postgres_verifier(key, role) for role in roles.ALL_ROLES}
        self.roles_secret = k8s.core.v1.Secret(
            "postgres-roles", metadata=h.meta(POSTGRES_ROLES_SECRET, ns, lbls), type="Opaque",
            string_data=pulumi.Output.secret(self.verifiers), opts=h.child(self, ctx.namespace))
        self.role_secrets: dict[str, k8s.core.v1.Secret] = {}
        for role, name in ROLE_SECRETS.items():
            password = credentials.postgres_password(key, role)
            self.role_secrets[role] = k8s.core.v1.Secret(
                f"postgres-{role.removeprefix('coffee_')}", metadata=h.meta(name, ns, lbls), type="Opaque",
                string_data=pulumi.Output.secret({"dsn": with_user(dsn, role, password), "password": password,
                                                  "user": role}),
                opts=h.child(self, ctx.namespace))
        if cfg.mode == "in-cluster":
            self._in_cluster(ctx)
        self._migrations(ctx)
        self.register_outputs({"host": self.host, "secret": POSTGRES_SECRET})

    def _in_cluster(self, ctx: Context) -> None:
        cfg, ns = ctx.cfg.postgres, ctx.ns
        lbls, sel = h.labels(APP_POSTGRES, "database"), h.selector(APP_POSTGRES, "database")
        opts = h.child(self, ctx.namespace)
        k8s.core.v1.Service("postgres", metadata=h.meta(POSTGRES_SERVICE, ns, lbls),
                            spec={"selector": sel, "ports": [{"name": "postgres", "port": PORT}]}, opts=opts)
        ready = {"exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-U", cfg.user, "-d", cfg.database]}}
        server = h.container(
            "postgres", ctx.cfg.images.postgres, cfg.resources, POSTGRES_UID,
            ports=[{"name": "postgres", "containerPort": PORT}],
            # The image's entrypoint reads the owner's password from the file (first start only).
            env=[{"name": "POSTGRES_USER", "value": cfg.user}, {"name": "POSTGRES_DB", "value": cfg.database},
                 {"name": "POSTGRES_PASSWORD_FILE", "value": f"{OWNER_DIR}/password"},
                 {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
            readinessProbe={**ready, "periodSeconds": 5},
            livenessProbe={**ready, "periodSeconds": 15, "failureThreshold": 6},
            volumeMounts=[{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                          {"name": "run", "mountPath": "/var/run/postgresql"},
                          {"name": "tmp", "mountPath": "/tmp"},
                          {"name": "owner", "mountPath": OWNER_DIR, "readOnly": True}])
        self.statefulset = k8s.apps.v1.StatefulSet(
            "postgres", metadata=h.meta("postgres", ns, lbls),
            spec={"serviceName": POSTGRES_SERVICE, "replicas": 1, "selector": {"matchLabels": sel},
                  "template": {"metadata": {"labels": lbls},
                               "spec": h.pod_spec([server], POSTGRES_UID, fs_group=POSTGRES_UID,
                                                  terminationGracePeriodSeconds=60,
                                                  volumes=[h.tmp_volume("run", "16Mi"), h.tmp_volume(),
                                                           owner_password_volume()])},
                  "volumeClaimTemplates": [h.pvc_template("data", cfg.storage.size, cfg.storage.storage_class)],
                  "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
            opts=h.child(self, ctx.namespace, self.secret))

    def _migrations(self, ctx: Context) -> None:
        ns = ctx.ns
        data = {**configmap_data(), ROLES_SCRIPT: credentials.roles_script(VERIFIERS_DIR)}
        files_digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]
        # New verifiers (a rotated credentialsKey) are a new Job too, which sets them.
        digest = hashlib.sha256(json.dumps([data, self.verifiers], sort_keys=True).encode()).hexdigest()[:8]
        lbls = h.labels(APP_MIGRATE, "setup")
        files = k8s.core.v1.ConfigMap(
            "postgres-migrations", metadata=h.meta(f"postgres-migrations-{files_digest}", ns, lbls), data=data,
            immutable=True, opts=h.child(self, ctx.namespace))
        runner = h.container(
            "migrate", ctx.cfg.images.postgres, MIGRATE_RESOURCES, POSTGRES_UID,
            # psql takes the owner's DSN without its password (a URI) as its database argument; the
            # password comes from its file, the roles' verifiers from theirs (ROLES_SCRIPT).
            command=["sh", "-c", MIGRATE],
            env=[{"name": "DATABASE_URL", "value": with_user(
                self.owner_dsn, unquote(urlsplit(self.owner_dsn).username or ""), None)}],
            volumeMounts=[{"name": "migrations", "mountPath": "/migrations", "readOnly": True},
                          {"name": "owner", "mountPath": OWNER_DIR, "readOnly": True},
                          {"name": "verifiers", "mountPath": VERIFIERS_DIR, "readOnly": True}])
        # A Job is immutable: new migrations are a new Job (named by their content).
        self.migrations = k8s.batch.v1.Job(
            "postgres-migrate", metadata=h.meta(f"postgres-migrate-{digest}", ns, lbls),
            spec={"backoffLimit": 20, "activeDeadlineSeconds": 900,
                  "template": {"metadata": {"labels": lbls},
                               "spec": h.pod_spec([runner], POSTGRES_UID, fs_group=POSTGRES_UID,
                                                  restartPolicy="OnFailure",
                                                  volumes=[{"name": "migrations", "configMap": {
                                                               "name": f"postgres-migrations-{files_digest}"}},
                                                           owner_password_volume(),
                                                           {"name": "verifiers", "secret": {
                                                               "secretName": POSTGRES_ROLES_SECRET,
                                                               "defaultMode": 0o440}}])}},
            opts=h.child(self, files, self.secret, self.roles_secret, self.statefulset))


def owner_password_volume() -> dict[str, object]:
    """The owner's password, only that key of its Secret, readable by the Pod's group (fsGroup)."""
    return {"name": "owner", "secret": {"secretName": POSTGRES_SECRET, "defaultMode": 0o440,
                                        "items": [{"key": "password", "path": "password"}]}}
