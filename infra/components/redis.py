"""Redis: a StatefulSet of the official image with AOF persistence on a PVC and ACL users from a
mounted Secret, or an external (managed) Redis URL; either way the admin's ``coffee-rt-redis`` Secret
and one Secret per client (the job, the auditor, the dashboard, the exporter: infra/credentials.py).
"""

from __future__ import annotations

import json
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pulumi
import pulumi_kubernetes as k8s

from infra import credentials
from infra import hardening as h
from infra.context import (
    APP_REDIS,
    REDIS_AUDITOR_SECRET,
    REDIS_DASHBOARD_SECRET,
    REDIS_JOB_SECRET,
    REDIS_MONITOR_SECRET,
    REDIS_SECRET,
    REDIS_SERVER_SECRET,
    REDIS_SERVICE,
    Context,
)

REDIS_UID = 999  # redis in the official image
PORT = 6379

DATA_DIR = "/data"
USERS_DIR = "/etc/coffee-redis"  # users.conf (the ACL users) and admin-password (for the probes)
USERS_FILE = "users.conf"

# The ACL users come from a config file of a mounted Secret (passwords as SHA-256 only), so no
# password is in the Pod spec or the process's arguments; `exec` makes redis PID 1, so SIGTERM
# reaches it and it shuts down cleanly (AOF flushed).
START = (f'exec redis-server {USERS_DIR}/{USERS_FILE} --port "$REDIS_PORT" --dir "$REDIS_DATA_DIR" '
         '--appendonly yes --appendfsync everysec --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction '
         '--protected-mode no')
# The probes log in as the admin (the default user), the shell reading the password from its file.
PING = f'REDISCLI_AUTH="$(cat {USERS_DIR}/admin-password)" redis-cli ping | grep -qx PONG'
# Each client user's Secret (keys url, password, user; the monitor's also passwords.json).
CLIENT_SECRETS = {credentials.REDIS_JOB: REDIS_JOB_SECRET, credentials.REDIS_AUDITOR: REDIS_AUDITOR_SECRET,
                  credentials.REDIS_DASHBOARD: REDIS_DASHBOARD_SECRET, credentials.REDIS_MONITOR: REDIS_MONITOR_SECRET}


def with_user(url: str, user: str, password: str) -> str:
    """``url`` (redis://[user]:password@host:port/db) for another user."""
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname or ''}" + (
        f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Redis(pulumi.ComponentResource):
    """``secret`` holds the admin's ``url`` (with the password) and ``password``; ``client_secrets`` one
    Secret per client user."""

    secret: k8s.core.v1.Secret
    client_secrets: dict[str, k8s.core.v1.Secret]
    statefulset: k8s.apps.v1.StatefulSet | None
    host: str
    port: int

    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:Redis", "redis", None, opts)
        cfg, ns, secrets = ctx.cfg.redis, ctx.ns, ctx.cfg.secrets
        self.statefulset = None
        lbls, sel = h.labels(APP_REDIS, "cache"), h.selector(APP_REDIS, "cache")
        server: k8s.core.v1.Secret | None = None
        clients: dict[str, dict[str, str]] = {}
        acl_conf = ""
        if cfg.mode == "external":
            assert secrets.redis_url is not None  # guaranteed by the config's cross-checks
            url = secrets.redis_url.get_secret_value()
            parts = urlsplit(url)
            self.host, self.port = parts.hostname or "", parts.port or PORT
            data = {"url": url, "password": unquote(parts.password or "")}
            # A managed Redis's users are the provider's: every client gets this one URL, in its own Secret.
            for user in CLIENT_SECRETS:
                clients[user] = {"url": url, "password": data["password"],
                                 "user": unquote(parts.username or "") or "default"}
        else:
            assert secrets.redis_password is not None and secrets.credentials_key is not None
            password = secrets.redis_password.get_secret_value()
            key = secrets.credentials_key.get_secret_value()
            self.host, self.port = ctx.host(REDIS_SERVICE), PORT
            data = {"url": f"redis://:{quote(password, safe='')}@{self.host}:{PORT}/0", "password": password}
            for user in CLIENT_SECRETS:
                user_password = credentials.redis_password(key, user)
                clients[user] = {"url": with_user(data["url"], user, user_password), "password": user_password,
                                 "user": user}
            acl_conf = credentials.redis_acl_conf(password, key)
            server = k8s.core.v1.Secret(
                "redis-server", metadata=h.meta(REDIS_SERVER_SECRET, ns, lbls), type="Opaque",
                string_data=pulumi.Output.secret({USERS_FILE: acl_conf}),
                opts=h.child(self, ctx.namespace))
        # redis_exporter's password file (--redis.password-file): the address it scrapes -> the password.
        monitor = clients[credentials.REDIS_MONITOR]
        monitor["passwords.json"] = json.dumps({f"redis://{self.host}:{self.port}": monitor["password"]})
        self.secret = k8s.core.v1.Secret(
            "redis", metadata=h.meta(REDIS_SECRET, ns, lbls), type="Opaque",
            string_data=pulumi.Output.secret(data), opts=h.child(self, ctx.namespace))
        self.client_secrets = {
            user: k8s.core.v1.Secret(
                f"redis-{user.removeprefix('coffee-')}", metadata=h.meta(name, ns, lbls), type="Opaque",
                string_data=pulumi.Output.secret(clients[user]), opts=h.child(self, ctx.namespace))
            for user, name in CLIENT_SECRETS.items()}
        if cfg.mode == "in-cluster":
            opts = h.child(self, ctx.namespace)
            k8s.core.v1.Service("redis", metadata=h.meta(REDIS_SERVICE, ns, lbls),
                                spec={"selector": sel, "ports": [{"name": "redis", "port": PORT}]}, opts=opts)
            ping = {"exec": {"command": ["sh", "-c", PING]}}
            container = h.container(
                "redis", ctx.cfg.images.redis, cfg.resources, REDIS_UID,
                command=["sh", "-c", START],
                ports=[{"name": "redis", "containerPort": PORT}],
                env=[{"name": "REDIS_MAXMEMORY", "value": cfg.max_memory},
                     {"name": "REDIS_PORT", "value": str(PORT)}, {"name": "REDIS_DATA_DIR", "value": DATA_DIR}],
                readinessProbe={**ping, "periodSeconds": 5},
                livenessProbe={**ping, "periodSeconds": 15, "failureThreshold": 4},
                volumeMounts=[{"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"},
                              {"name": "users", "mountPath": USERS_DIR, "readOnly": True}])
            users = {"name": "users", "projected": {"defaultMode": 0o440, "sources": [
                {"secret": {"name": REDIS_SERVER_SECRET, "items": [{"key": USERS_FILE, "path": USERS_FILE}]}},
                {"secret": {"name": REDIS_SECRET, "items": [{"key": "password", "path": "admin-password"}]}}]}}
            self.statefulset = k8s.apps.v1.StatefulSet(
                "redis", metadata=h.meta("redis", ns, lbls),
                spec={"serviceName": REDIS_SERVICE, "replicas": 1, "selector": {"matchLabels": sel},
                      "template": {"metadata": {"labels": lbls,
                                                # A changed user list restarts Redis, which reads it at start.
                                                "annotations": {"coffee-rt.dev/users-checksum": h.checksum(
                                                    {USERS_FILE: acl_conf})}},
                                   "spec": h.pod_spec([container], REDIS_UID, fs_group=REDIS_UID,
                                                      volumes=[h.tmp_volume(), users])},
                      "volumeClaimTemplates": [h.pvc_template("data", cfg.storage.size, cfg.storage.storage_class)],
                      "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
                opts=h.child(self, ctx.namespace, self.secret, server))
        self.register_outputs({"host": self.host, "secret": REDIS_SECRET})
