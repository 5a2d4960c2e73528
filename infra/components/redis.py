"""Redis: a StatefulSet of the official image with AOF persistence on a PVC and a password from a
Secret, or an external (managed) Redis URL; either way the ``coffee-rt-redis`` Secret.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening as h
from infra.context import APP_REDIS, REDIS_SECRET, REDIS_SERVICE, Context

REDIS_UID = 999  # redis in the official image
PORT = 6379

DATA_DIR = "/data"

# The password reaches redis-server on stdin (`redis-server -` reads config from it), so it is
# neither in the Pod spec nor in the process's arguments; `exec` makes redis PID 1, so SIGTERM
# reaches it and it shuts down cleanly (AOF flushed).
START = """exec redis-server - --port "$REDIS_PORT" --dir "$REDIS_DATA_DIR" --appendonly yes \\
  --appendfsync everysec --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction --protected-mode no <<EOF
requirepass $REDIS_PASSWORD
EOF
"""


class Redis(pulumi.ComponentResource):
    """``secret`` holds ``url`` (with the password) and ``password``."""

    secret: k8s.core.v1.Secret
    statefulset: k8s.apps.v1.StatefulSet | None
    host: str
    port: int

    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:Redis", "redis", None, opts)
        cfg, ns, secrets = ctx.cfg.redis, ctx.ns, ctx.cfg.secrets
        self.statefulset = None
        lbls, sel = h.labels(APP_REDIS, "cache"), h.selector(APP_REDIS, "cache")
        if cfg.mode == "external":
            assert secrets.redis_url is not None  # guaranteed by the config's cross-checks
            url = secrets.redis_url.get_secret_value()
            parts = urlsplit(url)
            self.host, self.port = parts.hostname or "", parts.port or PORT
            data = {"url": url, "password": unquote(parts.password or "")}
        else:
            assert secrets.redis_password is not None
            password = secrets.redis_password.get_secret_value()
            self.host, self.port = ctx.host(REDIS_SERVICE), PORT
            data = {"url": f"redis://:{quote(password, safe='')}@{self.host}:{PORT}/0", "password": password}
        self.secret = k8s.core.v1.Secret(
            "redis", metadata=h.meta(REDIS_SECRET, ns, lbls), type="Opaque",
            string_data=pulumi.Output.secret(data), opts=h.child(self, ctx.namespace))
        if cfg.mode == "in-cluster":
            opts = h.child(self, ctx.namespace)
            k8s.core.v1.Service("redis", metadata=h.meta(REDIS_SERVICE, ns, lbls),
                                spec={"selector": sel, "ports": [{"name": "redis", "port": PORT}]}, opts=opts)
            ping = {"exec": {"command": ["redis-cli", "ping"]}}  # REDISCLI_AUTH carries the password
            server = h.container(
                "redis", ctx.cfg.images.redis, cfg.resources, REDIS_UID,
                command=["sh", "-c", START],
                ports=[{"name": "redis", "containerPort": PORT}],
                env=[h.secret_env("REDIS_PASSWORD", REDIS_SECRET, "password"),
                     h.secret_env("REDISCLI_AUTH", REDIS_SECRET, "password"),
                     {"name": "REDIS_MAXMEMORY", "value": cfg.max_memory},
                     {"name": "REDIS_PORT", "value": str(PORT)}, {"name": "REDIS_DATA_DIR", "value": DATA_DIR}],
                readinessProbe={**ping, "periodSeconds": 5},
                livenessProbe={**ping, "periodSeconds": 15, "failureThreshold": 4},
                volumeMounts=[{"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"}])
            self.statefulset = k8s.apps.v1.StatefulSet(
                "redis", metadata=h.meta("redis", ns, lbls),
                spec={"serviceName": REDIS_SERVICE, "replicas": 1, "selector": {"matchLabels": sel},
                      "template": {"metadata": {"labels": lbls},
                                   "spec": h.pod_spec([server], REDIS_UID, fs_group=REDIS_UID,
                                                      volumes=[h.tmp_volume()])},
                      "volumeClaimTemplates": [h.pvc_template("data", cfg.storage.size, cfg.storage.storage_class)],
                      "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
                opts=h.child(self, ctx.namespace, self.secret))
        self.register_outputs({"host": self.host, "secret": REDIS_SECRET})
