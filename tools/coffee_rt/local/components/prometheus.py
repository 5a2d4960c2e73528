"""Prometheus (Debian's package) scraping the local stack with the project's alert rules.

Scrape job names are the ones the Prometheus Operator gives infra's monitors (a PodMonitor's job is
``<namespace>/<name>``, a ServiceMonitor's the Service's name), so alerts/*.rules.yaml select the
same series here and in the cluster. Prometheus loads copies of the rule files whose runbook links
point under ``COFFEE_RT_RUNBOOK_BASE_URL``. Alerts go to the local alertmanager component.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from coffee_rt.alerts import rules as alert_rules
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.installers import ensure_binary
from coffee_rt.local.process import ManagedProcess

# Prometheus Operator job label of each local server's metrics, as infra's monitors name them.
INGEST_JOB = "coffee-rt/coffee-rt-ingest"
DASHBOARD_JOB = "coffee-rt/coffee-rt-dashboard"
FLINK_JOB = "coffee-rt/coffee-rt-flink"
REDIS_EXPORTER_JOB = "redis-exporter"
POSTGRES_EXPORTER_JOB = "postgres-exporter"
AUDITOR_JOB = "coffee-rt-auditor"


class Prometheus(Component):
    name = "prometheus"
    start_timeout = 60.0
    # Production-like defaults; a test may set shorter intervals and its own rule files before `up`.
    scrape_interval = "15s"
    scrape_timeout = "10s"
    evaluation_interval = "15s"
    rule_files: list[Path] | None = None  # None: copies of the project's alerts/*.rules.yaml (rules_dir)

    @property
    def config_file(self) -> Path:
        return self.home / "prometheus.yml"

    @property
    def rules_dir(self) -> Path:
        return self.home / "rules"

    def ports(self) -> list[int]:
        return [self.settings.prometheus_port]

    def address(self) -> str:
        return self.settings.prometheus_url

    def scrape_targets(self) -> dict[str, list[str]]:
        """job -> host:port targets (each path /metrics except Flink's reporter, served at /); the
        ingest and the dashboard on their internal ports."""
        s, p = self.settings, self.settings.ports()
        return {
            INGEST_JOB: [f"{s.host}:{s.ingest_internal_port}"],
            DASHBOARD_JOB: [f"{s.host}:{s.dashboard_internal_port}"],
            FLINK_JOB: [f"{s.host}:{p['flink_jobmanager_metrics_port']}",
                        f"{s.host}:{p['flink_taskmanager_metrics_port']}"],
            REDIS_EXPORTER_JOB: [f"{s.host}:{s.redis_exporter_port}"],
            POSTGRES_EXPORTER_JOB: [f"{s.host}:{s.postgres_exporter_port}"],
            AUDITOR_JOB: [f"{s.host}:{s.auditor_port}"],
        }

    def config(self) -> dict[str, Any]:
        rules = self.rule_files
        if rules is None:
            rules = [self.rules_dir / path.name for path in alert_rules.rule_files()]
        return {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_timeout,
                       "evaluation_interval": self.evaluation_interval},
            "rule_files": [str(path) for path in rules],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [
                f"{self.settings.host}:{self.settings.alertmanager_port}"]}]}]},
            "scrape_configs": [
                {"job_name": job, "metrics_path": "/" if job == FLINK_JOB else "/metrics",
                 "static_configs": [{"targets": targets}]}
                for job, targets in self.scrape_targets().items()
            ],
        }

    def prepare(self, progress: Progress) -> None:
        ensure_binary("prometheus", "prometheus", progress)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        if self.rule_files is None:
            self.write_rules()
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def write_rules(self) -> list[Path]:
        """The project's rule files as this Prometheus loads them: runbook links under the setting."""
        for stale in self.rules_dir.glob("*.rules.yaml"):
            stale.unlink()
        return alert_rules.copy_rules(alert_rules.rule_files(), self.rules_dir,
                                      runbook_base=self.settings.runbook_base_url)

    def processes(self) -> list[ManagedProcess]:
        s = self.settings
        argv = ["prometheus", f"--config.file={self.config_file}", f"--storage.tsdb.path={self.home / 'data'}",
                f"--web.listen-address={s.host}:{s.prometheus_port}", f"--web.external-url={self.address()}",
                "--storage.tsdb.retention.time=2d", "--web.enable-lifecycle"]
        return [self.process("", argv, niceness=self.settings.background_niceness)]

    def health(self) -> Health:
        try:
            response = httpx.get(f"{self.address()}/-/ready", timeout=2)
        except httpx.HTTPError as exc:
            return Health(False, f"GET /-/ready: {exc}")
        if response.status_code != 200:
            return Health(False, f"GET /-/ready: {response.status_code}")
        try:
            groups = httpx.get(f"{self.address()}/api/v1/rules", timeout=2).json()["data"]["groups"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            return Health(False, f"GET /api/v1/rules: {exc}")
        rules = sum(len(g["rules"]) for g in groups)
        return Health(True, f"{len(groups)} rule groups, {rules} rules")

    def reload(self) -> None:
        """Re-read the written config and rule files (after prepare with other settings)."""
        httpx.post(f"{self.address()}/-/reload", timeout=10).raise_for_status()
