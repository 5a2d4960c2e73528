"""The live dashboard (services/coffee_dashboard): a Deployment and Service reading Redis, Postgres
and the JobManager's metrics, configured only through ``DASHBOARD_*`` variables, secrets from Secrets.

Its token digests and session key are files of the ``coffee-rt-dashboard-auth`` Secret, mounted
read-only: the dashboard re-reads the token file when it changes, and the Secret's checksum on the
Pod template rolls the Pods when the Secret changes. Its metrics are on the internal port, which
only Prometheus may reach (infra/components/network.py); the Service exposes the page's port only.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening as h
from infra.context import (
    APP_DASHBOARD,
    AUTH_CHECKSUM_ANNOTATION,
    DASHBOARD_AUTH_SECRET,
    DASHBOARD_SERVICE,
    POSTGRES_DASHBOARD_SECRET,
    REDIS_DASHBOARD_SECRET,
    Context,
)

DASHBOARD_UID = 10001
PORT = 8090
INTERNAL_PORT = 9090  # /metrics
AUTH_DIR = "/etc/coffee-dashboard"


class Dashboard(pulumi.ComponentResource):
    url: str
    deployment: k8s.apps.v1.Deployment

    def __init__(self, ctx: Context, flink_metrics_url: str, auditor_metrics_url: str | None,
                 depends_on: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:Dashboard", "dashboard", None, opts)
        cfg, ns = ctx.cfg, ctx.ns
        assert cfg.images.dashboard is not None and cfg.secrets.dashboard_tokens_sha256 is not None
        lbls, sel = h.labels(APP_DASHBOARD, "dashboard"), h.selector(APP_DASHBOARD, "dashboard")
        opts_ = h.child(self, ctx.namespace)
        data = {"tokens-sha256": cfg.secrets.dashboard_tokens_sha256.get_secret_value()}
        if cfg.secrets.dashboard_session_key is not None:
            data["session-key"] = cfg.secrets.dashboard_session_key.get_secret_value()
        auth = k8s.core.v1.Secret(
            "dashboard-auth", metadata=h.meta(DASHBOARD_AUTH_SECRET, ns, lbls), type="Opaque",
            string_data=pulumi.Output.secret(data), opts=opts_)
        probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10}
        session_key = ([{"name": "DASHBOARD_SESSION_KEY_FILE", "value": f"{AUTH_DIR}/session-key"}]
                       if "session-key" in data else [])
        main = h.container(
            "dashboard", cfg.images.dashboard, cfg.dashboard.resources, DASHBOARD_UID,
            ports=[{"name": "http", "containerPort": PORT}, {"name": "internal", "containerPort": INTERNAL_PORT}],
            env=[{"name": "DASHBOARD_HOST", "value": "0.0.0.0"},  # noqa: S104 - the Pod's port
                 {"name": "DASHBOARD_PORT", "value": str(PORT)},
                 {"name": "DASHBOARD_INTERNAL_HOST", "value": "0.0.0.0"},  # noqa: S104 - Prometheus only
                 {"name": "DASHBOARD_INTERNAL_PORT", "value": str(INTERNAL_PORT)},
                 # Its own read-only credentials: Postgres coffee_dashboard, Redis coffee-dashboard.
                 h.secret_env("DASHBOARD_REDIS_URL", REDIS_DASHBOARD_SECRET, "url"),
                 h.secret_env("DASHBOARD_POSTGRES_DSN", POSTGRES_DASHBOARD_SECRET, "dsn"),
                 {"name": "DASHBOARD_AUTH", "value": "token"},
                 {"name": "DASHBOARD_TOKENS_FILE", "value": f"{AUTH_DIR}/tokens-sha256"},
                 *session_key,
                 {"name": "DASHBOARD_SESSION_TTL", "value": cfg.dashboard.session_ttl},
                 {"name": "DASHBOARD_COOKIE_SECURE", "value": str(cfg.dashboard.cookie_secure).lower()},
                 {"name": "DASHBOARD_FLINK_JOBMANAGER_METRICS_URL", "value": flink_metrics_url},
                 {"name": "DASHBOARD_DEFAULT_TIMEZONE", "value": cfg.dashboard.default_timezone},
                 *([{"name": "DASHBOARD_AUDITOR_METRICS_URL", "value": auditor_metrics_url}]
                   if auditor_metrics_url else [])],
            readinessProbe=probe,
            livenessProbe={"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 15, "failureThreshold": 4},
            volumeMounts=[{"name": "tmp", "mountPath": "/tmp"},
                          {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True}])
        replicas = cfg.dashboard.replicas
        self.deployment = k8s.apps.v1.Deployment(
            "coffee-dashboard", metadata=h.meta(APP_DASHBOARD, ns, lbls),
            spec={"replicas": replicas, "selector": {"matchLabels": sel},
                  "template": {"metadata": {"labels": lbls,
                                            "annotations": {AUTH_CHECKSUM_ANNOTATION: h.checksum(data)}},
                               "spec": h.pod_spec([main], DASHBOARD_UID, fs_group=DASHBOARD_UID,
                                                  volumes=[h.tmp_volume(), {"name": "auth", "secret": {
                                                      "secretName": DASHBOARD_AUTH_SECRET, "defaultMode": 0o440}}],
                                                  **h.spread(sel, replicas))}},
            opts=h.child(self, ctx.namespace, auth, *depends_on))
        k8s.core.v1.Service("coffee-dashboard", metadata=h.meta(DASHBOARD_SERVICE, ns, lbls),
                            spec={"selector": sel, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
                            opts=opts_)
        h.pdb("coffee-dashboard", ns, sel, lbls, replicas, opts_)
        self.url = f"http://{ctx.host(DASHBOARD_SERVICE)}"
        self.register_outputs({"url": self.url})
