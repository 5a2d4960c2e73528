"""Monitoring: exporters the alerts need (Kafka, Postgres, Redis) and, when the Prometheus
Operator's CRDs are installed (``monitoring.prometheusOperator``), one PrometheusRule per rule file in
alerts/, Pod/Service monitors, and the AlertmanagerConfig rendered from alerts/alertmanager.yaml.

Rule files are read at `pulumi up` time (every ``alerts/*.rules.yaml`` / ``*.rules.yml``; zero is
fine), never copied; a malformed file stops the program with the file named. Each alert's
``runbook_url`` is rendered under ``monitoring.runbookBaseUrl``, and each alert carries the label
``namespace=<the stack's namespace>``: the Prometheus Operator adds a ``namespace=<its namespace>``
matcher to the routes and inhibition rules of an AlertmanagerConfig (its default matcher strategy,
``OnNamespace``), so an alert without it would never reach our receivers (docs/alerts.md).

The AlertmanagerConfig is alerts/alertmanager.yaml, the file the local stack's Alertmanager runs,
converted to the v1alpha1 schema: the same routes, receivers and inhibition rules; the Slack
webhook from the Secret instead of a file; alerts/templates/*.tmpl inlined into each templated
field (an AlertmanagerConfig cannot ship template files); a time interval with a ``location``
(the shops' opening hours) as UTC intervals for the next years (time_intervals.py: the
AlertmanagerConfig has no location). A key the conversion does not know stops the program with the
key named, so the file and the cluster cannot drift apart silently.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from coffee_db import roles
from infra import credentials
from infra import hardening as h
from infra.components import time_intervals
from infra.config import RUNBOOK_BASE
from infra.context import (
    APP_AUDITOR,
    APP_DASHBOARD,
    APP_FLINK,
    APP_INGEST,
    APP_KAFKA_EXPORTER,
    APP_OPERATOR,
    APP_POSTGRES_EXPORTER,
    APP_REDIS_EXPORTER,
    POSTGRES_MONITOR_SECRET,
    REDIS_MONITOR_SECRET,
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
AUTH_MOUNT = "/etc/coffee-rt/monitor"  # the exporter's own credential file (its role's Secret, one key)


def _secret_volume(secret: str, key: str) -> dict[str, Any]:
    """One key of a Secret, readable by the Pod's group (fsGroup) only."""
    return {"name": "auth", "secret": {"secretName": secret, "defaultMode": 0o440,
                                       "items": [{"key": key, "path": key}]}}


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


def rendered_groups(groups: list[dict[str, Any]], runbook_base: str, namespace: str) -> list[dict[str, Any]]:
    """A rule file's groups as the PrometheusRule carries them: each alert's runbook_url under
    ``runbook_base`` instead of the committed folder (RUNBOOK_BASE) and its ``namespace`` label set to
    ``namespace`` (what the operator's enforcedNamespaceLabel would add); everything else as committed."""
    out = copy.deepcopy(groups)
    for group in out:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            rule["labels"] = {**(rule.get("labels") or {}), "namespace": namespace}
            notes = rule.get("annotations") or {}
            url = notes.get("runbook_url")
            if isinstance(url, str) and url.startswith(RUNBOOK_BASE + "/"):
                notes["runbook_url"] = runbook_base + url[len(RUNBOOK_BASE):]
    return out


# -- alerts/alertmanager.yaml as an AlertmanagerConfig (monitoring.coreos.com/v1alpha1) ------------

ALERTMANAGER_FILE = "alertmanager.yaml"
AMC_NAME = "coffee-rt-slack"


class AlertmanagerFileError(ValueError):
    pass


_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]+))\s*$')
_ROUTE_KEYS = {"receiver": "receiver", "group_by": "groupBy", "group_wait": "groupWait",
               "group_interval": "groupInterval", "repeat_interval": "repeatInterval", "continue": "continue",
               "active_time_intervals": "activeTimeIntervals", "mute_time_intervals": "muteTimeIntervals"}
# Years of UTC intervals rendered for a time interval with a location, from the year of `pulumi up`.
TIME_INTERVAL_YEARS = 10
_SLACK_KEYS = {"channel": "channel", "send_resolved": "sendResolved", "username": "username", "color": "color",
               "title": "title", "title_link": "titleLink", "pretext": "pretext", "text": "text",
               "fallback": "fallback", "footer": "footer", "mrkdwn_in": "mrkdwnIn", "icon_emoji": "iconEmoji",
               "icon_url": "iconURL", "image_url": "imageURL", "thumb_url": "thumbURL", "link_names": "linkNames",
               "short_fields": "shortFields", "callback_id": "callbackId", "actions": "actions"}
_ACTION_KEYS = {"type", "text", "url", "style", "name", "value"}
_TEMPLATE_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)


def _unknown(where: str, data: dict[str, Any], known: set[str] | dict[str, str]) -> None:
    extra = sorted(set(data) - set(known))
    if extra:
        raise AlertmanagerFileError(f"{where}: {', '.join(extra)} not supported in the AlertmanagerConfig "
                                    f"conversion (known: {', '.join(sorted(known))})")


def matcher(text: str) -> dict[str, str]:
    """An Alertmanager matcher string (``severity="critical"``, ``alertname=~"A|B"``) as a v1alpha1 Matcher."""
    found = _MATCHER.match(text)
    if not found:
        raise AlertmanagerFileError(f"matcher {text!r}: expected name, one of = != =~ !~, and a value")
    name, op, quoted, bare = found.groups()
    value = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), quoted) if quoted is not None \
        else bare
    return {"name": name, "value": value, "matchType": op}


def template_definitions(directory: Path) -> str:
    """Every ``{{ define }}`` block of the template files in ``directory`` (sorted by name), back to back:
    prepended to a field, it makes the field's ``{{ template "..." }}`` calls resolve and prints nothing."""
    blocks = []
    for path in sorted(directory.glob("*.tmpl")):
        text, depth, start = path.read_text(), 0, -1
        for action in _TEMPLATE_ACTION.finditer(text):
            body = action.group(1)
            word = "" if body.startswith("/*") else (body.split() or [""])[0]
            if word in ("if", "range", "with", "define", "block"):
                if depth == 0:
                    if word != "define":
                        raise AlertmanagerFileError(f"{path}: only define blocks may be at the top level")
                    start = action.start()
                depth += 1
            elif word == "end":
                depth -= 1
                if depth == 0:
                    blocks.append(text[start:action.end()])
        if depth != 0:
            raise AlertmanagerFileError(f"{path}: unbalanced {{{{ end }}}}")
    return "".join(blocks)


def _route(route: dict[str, Any], where: str) -> dict[str, Any]:
    _unknown(where, route, {*_ROUTE_KEYS, "matchers", "routes"})
    out: dict[str, Any] = {camel: route[key] for key, camel in _ROUTE_KEYS.items() if key in route}
    if "matchers" in route:
        out["matchers"] = [matcher(m) for m in route["matchers"]]
    if "routes" in route:
        out["routes"] = [_route(child, f"{where}.routes[{i}]") for i, child in enumerate(route["routes"])]
    return out


def _templated(value: Any, definitions: str) -> Any:
    return definitions + value if isinstance(value, str) and "{{" in value else value


def alertmanager_config_spec(directory: Path, slack_secret: str, slack_channel: str,
                             first_year: int | None = None) -> dict[str, Any]:
    """The AlertmanagerConfig spec of ``directory``/alertmanager.yaml and its templates; time intervals
    with a location for TIME_INTERVAL_YEARS years from ``first_year`` (default: this year, UTC)."""
    path = directory / ALERTMANAGER_FILE
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AlertmanagerFileError(f"{path}: {exc}") from None
    _unknown(f"{path}", config, {"global", "templates", "route", "inhibit_rules", "receivers", "time_intervals"})
    _unknown(f"{path}: global", config.get("global") or {}, {"resolve_timeout", "slack_api_url_file"})
    if config.get("templates", ["templates/*.tmpl"]) != ["templates/*.tmpl"]:
        raise AlertmanagerFileError(f"{path}: templates must be [templates/*.tmpl] (they are inlined from there)")
    definitions = template_definitions(directory / "templates")
    receivers = []
    for r in config["receivers"]:
        _unknown(f"{path}: receiver {r['name']}", r, {"name", "slack_configs"})
        out: dict[str, Any] = {"name": r["name"]}
        slacks = []
        for slack in r.get("slack_configs") or []:
            _unknown(f"{path}: receiver {r['name']}", slack, _SLACK_KEYS)
            converted: dict[str, Any] = {"apiURL": {"name": slack_secret, "key": "url"}}  # the webhook stays secret
            for key, camel in _SLACK_KEYS.items():
                if key == "actions" and key in slack:
                    for action in slack[key]:
                        _unknown(f"{path}: receiver {r['name']} action", action, _ACTION_KEYS)
                    converted[camel] = [{k: _templated(v, definitions) for k, v in a.items()} for a in slack[key]]
                elif key in slack:
                    converted[camel] = _templated(slack[key], definitions)
            converted["channel"] = slack_channel
            slacks.append(converted)
        if slacks:
            out["slackConfigs"] = slacks
        receivers.append(out)
    inhibit = []
    for i, rule in enumerate(config.get("inhibit_rules") or []):
        _unknown(f"{path}: inhibit_rules[{i}]", rule, {"source_matchers", "target_matchers", "equal"})
        converted = {"sourceMatch": [matcher(m) for m in rule["source_matchers"]],
                     "targetMatch": [matcher(m) for m in rule["target_matchers"]]}
        if "equal" in rule:
            converted["equal"] = rule["equal"]
        inhibit.append(converted)
    spec = {"route": _route(config["route"], f"{path}: route"), "receivers": receivers, "inhibitRules": inhibit}
    year = datetime.now(UTC).year if first_year is None else first_year
    intervals = []
    for entry in config.get("time_intervals") or []:
        _unknown(f"{path}: time_intervals", entry, {"name", "time_intervals"})
        try:
            intervals.append(time_intervals.render(entry["name"], entry["time_intervals"], year,
                                                   TIME_INTERVAL_YEARS))
        except time_intervals.TimeIntervalError as exc:
            raise AlertmanagerFileError(f"{path}: {exc}") from None
    if intervals:
        spec["muteTimeIntervals"] = intervals  # v1alpha1's name for the list routes mute or activate by
    return spec


class Monitoring(pulumi.ComponentResource):
    def __init__(self, ctx: Context, kafka_bootstrap: str, postgres_address: str, redis_host: str, redis_port: int,
                 depends_on: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:Monitoring", "monitoring", None, opts)
        cfg = ctx.cfg.monitoring
        self.rules: list[k8s.apiextensions.CustomResource] = []
        if cfg.exporters:
            self._exporters(ctx, kafka_bootstrap, postgres_address, redis_host, redis_port, depends_on)
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
                               "spec": h.pod_spec([main], uid, fs_group=uid, volumes=volumes or [])}},
            opts=h.child(self, ctx.namespace, *depends_on))
        k8s.core.v1.Service(app, metadata=h.meta(app, ns, lbls),
                            spec={"selector": sel, "ports": [{"name": "metrics", "port": port}]},
                            opts=h.child(self, ctx.namespace))

    def _exporters(self, ctx: Context, kafka_bootstrap: str, postgres_address: str, redis_host: str,
                   redis_port: int, depends_on: list[pulumi.Resource]) -> None:
        images = ctx.cfg.images
        # Consumer lag of the job's group: the "job falling behind" alerts need it.
        if images.kafka_exporter is not None:
            self._exporter(ctx, APP_KAFKA_EXPORTER, images.kafka_exporter, KAFKA_EXPORTER_PORT, EXPORTER_UID,
                           depends_on, args=[f"--kafka.server={b}" for b in kafka_bootstrap.split(",")]
                           + [f"--web.listen-address=:{KAFKA_EXPORTER_PORT}"])
        # Each exporter logs in as its monitoring role, the password a file of its own Secret.
        self._exporter(ctx, APP_POSTGRES_EXPORTER, images.postgres_exporter, POSTGRES_EXPORTER_PORT, EXPORTER_UID,
                       depends_on, env=[{"name": "DATA_SOURCE_URI", "value": postgres_address},
                                        {"name": "DATA_SOURCE_USER", "value": roles.MONITOR},
                                        {"name": "DATA_SOURCE_PASS_FILE", "value": f"{AUTH_MOUNT}/password"}],
                       volumeMounts=[{"name": "auth", "mountPath": AUTH_MOUNT, "readOnly": True}],
                       volumes=[_secret_volume(POSTGRES_MONITOR_SECRET, "password")])
        redis_env: list[dict[str, Any]] = [{"name": "REDIS_ADDR", "value": f"redis://{redis_host}:{redis_port}"},
                                           {"name": "REDIS_USER", "value": credentials.REDIS_MONITOR},
                                           {"name": "REDIS_PASSWORD_FILE", "value": f"{AUTH_MOUNT}/passwords.json"}]
        redis_mounts = [{"name": "auth", "mountPath": AUTH_MOUNT, "readOnly": True}]
        redis_volumes = [_secret_volume(REDIS_MONITOR_SECRET, "passwords.json")]
        scripts = exporter_scripts()
        if scripts:
            # Lua scripts from alerts/exporters (e.g. when the job last wrote live metrics) as extra series.
            k8s.core.v1.ConfigMap(
                "redis-exporter-scripts", metadata=h.meta("redis-exporter-scripts", ctx.ns,
                                                          h.labels(APP_REDIS_EXPORTER, "exporter")),
                data=scripts, opts=h.child(self, ctx.namespace))
            redis_env.append({"name": "REDIS_EXPORTER_SCRIPT",
                              "value": ",".join(f"{SCRIPTS_MOUNT}/{name}" for name in sorted(scripts))})
            redis_mounts.append({"name": "scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": True})
            redis_volumes.append({"name": "scripts", "configMap": {"name": "redis-exporter-scripts"}})
        self._exporter(ctx, APP_REDIS_EXPORTER, images.redis_exporter, REDIS_EXPORTER_PORT, REDIS_EXPORTER_UID,
                       depends_on, env=redis_env, volumeMounts=redis_mounts, volumes=redis_volumes)

    def _prometheus_operator(self, ctx: Context) -> None:
        cfg, ns = ctx.cfg.monitoring, ctx.ns
        lbls = {**h.labels("coffee-rt-monitoring", "monitoring"), **cfg.rule_labels}
        opts = h.child(self, ctx.namespace)
        for name, groups in rule_files():
            self.rules.append(k8s.apiextensions.CustomResource(
                name, api_version=MONITORING_API, kind="PrometheusRule",
                metadata=h.meta(name, ns, lbls),
                spec={"groups": rendered_groups(groups, cfg.runbook_base_url, ns)}, opts=opts))
        pod_monitors = {
            "coffee-rt-flink": (APP_FLINK, "metrics", "/"),
            "coffee-rt-ingest": (APP_INGEST, "internal", "/metrics"),  # its internal port, not the order port
            "coffee-rt-operator": (APP_OPERATOR, "metrics", "/metrics"),
        }
        if ctx.cfg.dashboard.enabled:
            pod_monitors["coffee-rt-dashboard"] = (APP_DASHBOARD, "internal", "/metrics")
        if ctx.cfg.images.auditor is not None:
            pod_monitors["coffee-rt-auditor"] = (APP_AUDITOR, "metrics", "/metrics")
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
            AMC_NAME, api_version="monitoring.coreos.com/v1alpha1", kind="AlertmanagerConfig",
            metadata=h.meta(AMC_NAME, ns, lbls),
            spec=alertmanager_config_spec(ALERTS_DIR, SLACK_SECRET, cfg.slack_channel),
            opts=h.child(self, ctx.namespace, slack))
