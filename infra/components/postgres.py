"""Postgres: a StatefulSet of the official image with a PVC, or an external (managed) server's DSN;
either way the ``coffee-rt-postgres`` Secret the pipeline references, and a migrations Job.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote, unquote, urlsplit

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening as h
from infra.config import resources
from infra.context import APP_MIGRATE, APP_POSTGRES, POSTGRES_SECRET, POSTGRES_SERVICE, Context
from infra.migrations import SCRIPT_NAME, configmap_data

POSTGRES_UID = 999  # postgres in the official image
PORT = 5432
MIGRATE_RESOURCES = resources("50m", "64Mi", "500m", "128Mi")


def password_of(dsn: str) -> str:
    return unquote(urlsplit(dsn).password or "")


class Postgres(pulumi.ComponentResource):
    """``secret`` holds ``dsn`` and ``password``; ``migrations`` completes once the schema is current."""

    secret: k8s.core.v1.Secret
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
        self.secret = k8s.core.v1.Secret(
            "postgres", metadata=h.meta(POSTGRES_SECRET, ns, lbls), type="Opaque",
            string_data=pulumi.Output.secret(data), opts=h.child(self, ctx.namespace))
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
            env=[{"name": "POSTGRES_USER", "value": cfg.user}, {"name": "POSTGRES_DB", "value": cfg.database},
                 h.secret_env("POSTGRES_PASSWORD", POSTGRES_SECRET, "password"),
                 {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
            readinessProbe={**ready, "periodSeconds": 5},
            livenessProbe={**ready, "periodSeconds": 15, "failureThreshold": 6},
            volumeMounts=[{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                          {"name": "run", "mountPath": "/var/run/postgresql"},
                          {"name": "tmp", "mountPath": "/tmp"}])
        self.statefulset = k8s.apps.v1.StatefulSet(
            "postgres", metadata=h.meta("postgres", ns, lbls),
            spec={"serviceName": POSTGRES_SERVICE, "replicas": 1, "selector": {"matchLabels": sel},
                  "template": {"metadata": {"labels": lbls},
                               "spec": h.pod_spec([server], POSTGRES_UID, fs_group=POSTGRES_UID,
                                                  terminationGracePeriodSeconds=60,
                                                  volumes=[h.tmp_volume("run", "16Mi"), h.tmp_volume()])},
                  "volumeClaimTemplates": [h.pvc_template("data", cfg.storage.size, cfg.storage.storage_class)],
                  "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
            opts=h.child(self, ctx.namespace, self.secret))

    def _migrations(self, ctx: Context) -> None:
        ns = ctx.ns
        data = configmap_data()
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]
        lbls = h.labels(APP_MIGRATE, "setup")
        files = k8s.core.v1.ConfigMap(
            "postgres-migrations", metadata=h.meta(f"postgres-migrations-{digest}", ns, lbls), data=data,
            immutable=True, opts=h.child(self, ctx.namespace))
        runner = h.container(
            "migrate", ctx.cfg.images.postgres, MIGRATE_RESOURCES, POSTGRES_UID,
            # psql takes the DSN (a URI) as its database argument; the password stays in the Secret.
            command=["sh", "-c", f'exec psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -f /migrations/{SCRIPT_NAME}'],
            env=[h.secret_env("DATABASE_URL", POSTGRES_SECRET, "dsn")],
            volumeMounts=[{"name": "migrations", "mountPath": "/migrations", "readOnly": True}])
        # A Job is immutable: new migrations are a new Job (named by their content).
        self.migrations = k8s.batch.v1.Job(
            "postgres-migrate", metadata=h.meta(f"postgres-migrate-{digest}", ns, lbls),
            spec={"backoffLimit": 20, "activeDeadlineSeconds": 900,
                  "template": {"metadata": {"labels": lbls},
                               "spec": h.pod_spec([runner], POSTGRES_UID, restartPolicy="OnFailure",
                                                  volumes=[{"name": "migrations",
                                                            "configMap": {"name": f"postgres-migrations-{digest}"}}])}},
            opts=h.child(self, files, self.secret, self.statefulset))
