"""Alertmanager (Debian's prometheus-alertmanager) with the project's config, on loopback, no cluster.

The config is alerts/alertmanager.yaml as committed, with two local changes only: the Slack webhook
URL file points at ``<home>/slack-webhook-url`` (kept across restarts; a placeholder that goes
nowhere until someone writes a real URL there) and links.tmpl names the local dashboard. A test may
shorten the route timings (``route_timings``) so a resolve arrives in seconds, not minutes, and
replace a named time interval (``time_intervals``) with one around the current time.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import yaml

from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.installers import ensure_binary
from coffee_rt.local.process import ManagedProcess
from coffee_rt.paths import REPO_ROOT

CONFIG = REPO_ROOT / "alerts" / "alertmanager.yaml"
TEMPLATES = REPO_ROOT / "alerts" / "templates"
BINARY = "prometheus-alertmanager"
# Port 9 (discard) on loopback: notifications fail fast and visibly in the log instead of leaving.
PLACEHOLDER_WEBHOOK = "http://127.0.0.1:9/no-slack-webhook-configured"
TIMING_KEYS = ("group_wait", "group_interval", "repeat_interval")


def _retime(route: dict[str, Any], timings: dict[str, str], root: bool = True) -> None:
    """Set the timings on the root route and wherever a child route overrides them."""
    for key in TIMING_KEYS:
        if key in timings and (root or key in route):
            route[key] = timings[key]
    for child in route.get("routes", []):
        _retime(child, timings, root=False)


class Alertmanager(Component):
    name = "alertmanager"
    start_timeout = 30.0
    route_timings: dict[str, str] | None = None  # e.g. {"group_wait": "1s", "group_interval": "2s"}
    time_intervals: dict[str, list[dict[str, Any]]] | None = None  # name -> its time_intervals list

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def webhook_file(self) -> Path:
        return self.home / "slack-webhook-url"

    def ports(self) -> list[int]:
        return [self.settings.alertmanager_port]

    def address(self) -> str:
        return self.settings.alertmanager_url

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
        config["global"]["slack_api_url_file"] = str(self.webhook_file)
        if self.route_timings:
            _retime(config["route"], self.route_timings)
        for name, intervals in (self.time_intervals or {}).items():
            entries = [e for e in config.get("time_intervals", []) if e["name"] == name]
            if not entries:
                raise KeyError(f"alerts/alertmanager.yaml has no time interval {name!r}")
            entries[0]["time_intervals"] = intervals
        return config

    def prepare(self, progress: Progress) -> None:
        ensure_binary(BINARY, "prometheus-alertmanager", progress)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.config_dir, ignore_errors=True)
        shutil.copytree(TEMPLATES, self.config_dir / "templates")
        (self.config_dir / "templates" / "links.tmpl").write_text(
            "{{/* Written by the local stack's alertmanager component. */}}\n"
            f'{{{{ define "coffee_rt.dashboard_url" }}}}{self.settings.dashboard_url}/{{{{ end }}}}\n')
        (self.config_dir / "alertmanager.yaml").write_text(yaml.safe_dump(self.config(), sort_keys=False))
        if not self.webhook_file.exists():
            self.webhook_file.write_text(PLACEHOLDER_WEBHOOK + "\n")
            self.webhook_file.chmod(0o600)

    def processes(self) -> list[ManagedProcess]:
        s = self.settings
        argv = [BINARY, f"--config.file={self.config_dir / 'alertmanager.yaml'}",
                f"--storage.path={self.home / 'data'}", f"--web.listen-address={s.host}:{s.alertmanager_port}",
                f"--web.external-url={self.address()}", "--cluster.listen-address="]
        return [self.process("", argv, niceness=self.settings.background_niceness)]

    def health(self) -> Health:
        try:
            response = httpx.get(f"{self.address()}/api/v2/status", timeout=2)
        except httpx.HTTPError as exc:
            return Health(False, f"GET /api/v2/status: {exc}")
        if response.status_code != 200:
            return Health(False, f"GET /api/v2/status: {response.status_code}")
        return Health(True, f"alertmanager {response.json().get('versionInfo', {}).get('version', '?')}")

    def reload(self) -> None:
        httpx.post(f"{self.address()}/-/reload", timeout=10).raise_for_status()
