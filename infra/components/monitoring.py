"""Monitoring: exporters the alerts need (Kafka consumer lag, Postgres, Redis) and, when the
Prometheus Operator's CRDs are installed (``monitoring.prometheusOperator``), one PrometheusRule per
rule file in alerts/, Pod/Service monitors, and an AlertmanagerConfig routing to Slack.

Rule files are read at `pulumi up` time (every ``alerts/*.rules.yaml`` / ``*.rules.yml``; zero is
fine), never copied; a malformed file stops the program with the file named. Each alert's
``runbook_url`` is rendered under ``monitoring.runbookBaseUrl``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import hardening as h
from infra.config import RUNBOOK_BASE
from infra.context import (
    APP_FLINK,
    APP_INGEST,
    APP_KAFKA_EXPORTER,
    APP_OPERATOR,
    APP_POSTGRES_EXPORTER,
    APP_REDIS_EXPORTER,
    POSTGRES_SECRET,
    REDIS_SECRET,
    SLACK_SECRET,
    Context,
)
from infra.paths import REPO_ROOT

ALERTS_DIR = REPO_ROOT / "alerts"
EXPORTER_UID = 65534  # nobody
REDIS_EXPORTER_UID = 59000  # the oliver006/redis_exporter image's user
KAFKA_EXPORTER_PORT = 9308
POSTGRES_EXPORTER_PORT = 9187
REDIS_EXPORTER_PORT = 9121
MONITORING_API = "monitoring.coreos.com/v1"


SCRIPTS_MOUNT = "/etc/redis-exporter"


def exporter_scripts(directory: Path | None = None) -> dict[str, str]:
    """redis_exporter Lua scripts the alerts rely on (alerts/exporters/*.lua), by file name."""
    directory = (ALERTS_DIR if directory is None else directory) / "exporters"
    return {p.name: p.read_text() for p in sorted(directory.glob("*.lua"))}


class RuleFileError(ValueError):
    pass


def rule_files(directory: Path | None = None) -> list[tuple[str, list[dict[str, Any]]]]:
    """(object name, rule groups) per Prometheus rule file in alerts/, sorted by file name."""
    directory = ALERTS_DIR if directory is None else directory
    found = sorted([*directory.glob("*.rules.yaml"), *directory.glob("*.rules.yml")])
    out = []
    for path in found:
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise RuleFileError(f"{path}: not YAML: {exc}") from None
        groups = doc.get("groups") if isinstance(doc, dict) else None
        if not isinstance(groups, list) or not groups:
            raise RuleFileError(f"{path}: a rule file needs a non-empty 'groups' list")
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or not group.get("name") or not isinstance(group.get("rules"), list):
                raise RuleFileError(f"{path}: groups[{i}] needs a 'name' and a 'rules' list")
            for j, rule in enumerate(group["rules"]):
                if not isinstance(rule, dict) or ("alert" in rule) == ("record" in rule) or not rule.get("expr"):
                    raise RuleFileError(f"{path}: groups[{i}].rules[{j}] needs 'expr' and exactly one of "
                                        "'alert' or 'record'")
        stem = path.name.split(".rules.")[0]
        name = "coffee-rt-" + re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")
        out.append((name, groups))
    return out


def rendered_groups(groups: list[dict[str, Any]], runbook_base: str) -> list[dict[str, Any]]:
    """A rule file's groups as the PrometheusRule carries them: each alert's runbook_url under
    ``runbook_base`` instead of the committed folder (RUNBOOK_BASE); everything else as committed."""
    out = copy.deepcopy(groups)
    for group in out:
        for rule in group["rules"]:
            notes = rule.get("annotations") or {}
            url = notes.get("runbook_url")
            if "alert" in rule and isinstance(url, str) and url.startswith(RUNBOOK_BASE + "/"):
                notes["runbook_url"] = runbook_base + url[len(RUNBOOK_BASE):]
    return out


class Monitoring(pulumi.ComponentResource):
    def __init__(self, ctx: Context, kafka_bootstrap: str, redis_host: str, redis_port: int,
                 depends_on: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:Monitoring", "monitoring", None, opts)
        cfg = ctx.cfg.monitoring
        self.rules: list[k8s.apiextensions.CustomResource] = []
        if cfg.exporters:
            self._exporters(ctx, kafka_bootstrap, redis_host, redis_port, depends_on)
        if cfg.prometheus_operator:
            self._prometheus_operator(ctx)
        self.register_outputs({"rules": [name for name, _ in rule_files()] if cfg.prometheus_operator else []})

    def _exporter(self, ctx: Context, app: str, image: str, port: int, uid: int, depends_on: list[pulumi.Resource],
                  volumes: list[dict[str, Any]] | None = None, **spec: Any) -> None:
        ns = ctx.ns
        lbls, sel = h.labels(app, "exporter"), h.selector(app, "exporter")
        main = h.container(app, image, ctx.cfg.monitoring.exporter_resources, uid,
                           ports=[{"name": "metrics", "containerPort": port}],
                           readinessProbe={"tcpSocket": {"port": "metrics"}, "periodSeconds": 10}, **spec)
        k8s.apps.v1.Deployment(
            app, metadata=h.meta(app, ns, lbls),
            spec={"replicas": 1, "selector": {"matchLabels": sel},
                  "template": {"metadata": {"labels": lbls},
                               "spec": h.pod_spec([main], uid, volumes=volumes or [])}},
            opts=h.child(self, ctx.namespace, *depends_on))
        k8s.core.v1.Service(app, metadata=h.meta(app, ns, lbls),
                            spec={"selector": sel, "ports": [{"name": "metrics", "port": port}]},
                            opts=h.child(self, ctx.namespace))

    def _exporters(self, ctx: Context, kafka_bootstrap: str, redis_host: str, redis_port: int,
                   depends_on: list[pulumi.Resource]) -> None:
        images = ctx.cfg.images
        # Consumer lag of the job's group: the "job falling behind" alerts need it.
        self._exporter(ctx, APP_KAFKA_EXPORTER, images.kafka_exporter, KAFKA_EXPORTER_PORT, EXPORTER_UID, depends_on,
                       args=[f"--kafka.server={b}" for b in kafka_bootstrap.split(",")]
                       + [f"--web.listen-address=:{KAFKA_EXPORTER_PORT}"])
        self._exporter(ctx, APP_POSTGRES_EXPORTER, images.postgres_exporter, POSTGRES_EXPORTER_PORT, EXPORTER_UID,
                       depends_on, env=[h.secret_env("DATA_SOURCE_NAME", POSTGRES_SECRET, "dsn")])
        redis_env: list[dict[str, Any]] = [{"name": "REDIS_ADDR", "value": f"redis://{redis_host}:{redis_port}"},
                                           h.secret_env("REDIS_PASSWORD", REDIS_SECRET, "password")]
        redis_extra: dict[str, Any] = {}
        scripts = exporter_scripts()
        if scripts:
            # Lua scripts from alerts/exporters (e.g. when the job last wrote live metrics) as extra series.
            k8s.core.v1.ConfigMap(
                "redis-exporter-scripts", metadata=h.meta("redis-exporter-scripts", ctx.ns,
                                                          h.labels(APP_REDIS_EXPORTER, "exporter")),
                data=scripts, opts=h.child(self, ctx.namespace))
            redis_env.append({"name": "REDIS_EXPORTER_SCRIPT",
                              "value": ",".join(f"{SCRIPTS_MOUNT}/{name}" for name in sorted(scripts))})
            redis_extra = {"volumeMounts": [{"name": "scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": True}]}
        self._exporter(ctx, APP_REDIS_EXPORTER, images.redis_exporter, REDIS_EXPORTER_PORT, REDIS_EXPORTER_UID,
                       depends_on, env=redis_env, **redis_extra,
                       volumes=[{"name": "scripts", "configMap": {"name": "redis-exporter-scripts"}}]
                       if scripts else [])

    def _prometheus_operator(self, ctx: Context) -> None:
        cfg, ns = ctx.cfg.monitoring, ctx.ns
        lbls = {**h.labels("coffee-rt-monitoring", "monitoring"), **cfg.rule_labels}
        opts = h.child(self, ctx.namespace)
        for name, groups in rule_files():
            self.rules.append(k8s.apiextensions.CustomResource(
                name, api_version=MONITORING_API, kind="PrometheusRule",
                metadata=h.meta(name, ns, lbls), spec={"groups": rendered_groups(groups, cfg.runbook_base_url)},
                opts=opts))
        pod_monitors = {
            "coffee-rt-flink": (APP_FLINK, "metrics", "/"),
            "coffee-rt-ingest": (APP_INGEST, "http", "/metrics"),
            "coffee-rt-operator": (APP_OPERATOR, "metrics", "/metrics"),
        }
        for name, (app, port, path) in pod_monitors.items():
            k8s.apiextensions.CustomResource(
                name, api_version=MONITORING_API, kind="PodMonitor", metadata=h.meta(name, ns, lbls),
                spec={"selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                      "podMetricsEndpoints": [{"port": port, "path": path, "interval": "15s"}]}, opts=opts)
        if cfg.exporters:
            k8s.apiextensions.CustomResource(
                "coffee-rt-exporters", api_version=MONITORING_API, kind="ServiceMonitor",
                metadata=h.meta("coffee-rt-exporters", ns, lbls),
                spec={"selector": {"matchExpressions": [{
                    "key": "app.kubernetes.io/name", "operator": "In",
                    "values": [APP_KAFKA_EXPORTER, APP_POSTGRES_EXPORTER, APP_REDIS_EXPORTER]}]},
                      "endpoints": [{"port": "metrics", "interval": "30s"}]}, opts=opts)
        webhook = ctx.cfg.secrets.slack_webhook_url
        assert webhook is not None  # required by the config's cross-checks
        slack = k8s.core.v1.Secret(
            "alertmanager-slack", metadata=h.meta(SLACK_SECRET, ns, lbls), type="Opaque",
            string_data=pulumi.Output.secret({"url": webhook.get_secret_value()}), opts=opts)
        k8s.apiextensions.CustomResource(
            "coffee-rt-slack", api_version="monitoring.coreos.com/v1alpha1", kind="AlertmanagerConfig",
            metadata=h.meta("coffee-rt-slack", ns, lbls),
            spec={
                "route": {"receiver": "slack", "groupBy": ["alertname", "severity"], "groupWait": "30s",
                          "groupInterval": "5m", "repeatInterval": "4h"},
                "receivers": [{"name": "slack", "slackConfigs": [{
                    "apiURL": {"name": SLACK_SECRET, "key": "url"},  # the webhook stays in the Secret
                    "channel": cfg.slack_channel, "sendResolved": True,
                    "title": '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}',
                    "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.runbook_url }}\n{{ end }}",
                }]}],
            },
            opts=h.child(self, ctx.namespace, slack))
