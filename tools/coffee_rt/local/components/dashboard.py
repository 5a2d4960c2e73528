"""The live dashboard (``python -m coffee_dashboard``) wired to the stack's Redis, Postgres, ingest,
Kafka, Flink and ledger auditor.

Its business days come from the local job's own configuration (time zones), so "today" on the
page is the job's today. A dev token is written on first prepare to ``<home>/dev-token`` (plain,
mode 0600; open ``<address>/?token=<it>`` once in a browser) and its SHA-256 to
``<home>/tokens-sha256``, the token file the service re-reads when it changes; the session cookies
are signed with ``secrets/dashboard-session-key``. Its metrics are on the internal port.
``env_overrides`` lets a test run it with other ``DASHBOARD_*`` values (a short stale threshold,
another time zone); restart to apply.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from coffee_db import roles
from coffee_rt.errors import StartupError
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.process import ManagedProcess
from coffee_rt.paths import REPO_ROOT

WEB_BUILD = REPO_ROOT / "services" / "coffee_dashboard" / "web" / "build.sh"


class Dashboard(Component):
    name = "dashboard"
    start_timeout = 30.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.env_overrides: dict[str, str] = {}

    def ports(self) -> list[int]:
        return [self.settings.dashboard_port, self.settings.dashboard_internal_port]

    @property
    def tokens_file(self) -> Path:
        """The SHA-256 digests of the dashboard's tokens, one per line (DASHBOARD_TOKENS_FILE)."""
        return self.home / "tokens-sha256"

    def address(self) -> str:
        return self.settings.dashboard_url

    def dev_token(self) -> str:
        """The plain dev token (only after prepare)."""
        return (self.home / "dev-token").read_text().strip()

    def prepare(self, progress: Progress) -> None:
        result = subprocess.run(["bash", str(WEB_BUILD)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StartupError(f"dashboard: building the page's assets failed:\n{result.stderr[-2000:]}")
        self.home.mkdir(parents=True, exist_ok=True)
        token = self.home / "dev-token"
        if not token.exists():
            import secrets

            progress("dashboard: writing a dev token")
            fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
        from coffee_dashboard.auth import digest

        self.tokens_file.write_text(digest(self.dev_token()).hex() + "\n")

    def environment(self) -> dict[str, str]:
        from coffee_orders.loadgen import DEFAULT_STORES
        from coffee_rt.local.jobconfig import local_job_config

        s = self.settings
        job = local_job_config(s)
        p = s.ports()
        env = {
            "DASHBOARD_HOST": s.host,
            "DASHBOARD_PORT": str(s.dashboard_port),
            "DASHBOARD_INTERNAL_HOST": s.host,
            "DASHBOARD_INTERNAL_PORT": str(s.dashboard_internal_port),
            "DASHBOARD_REDIS_URL": s.redis_dashboard_url,  # read and subscribe only (components/redis.py)
            "DASHBOARD_POSTGRES_DSN": s.postgres_dsn_of(roles.DASHBOARD),  # read-only (0004_roles.sql)
            "DASHBOARD_DEFAULT_TIMEZONE": job.default_timezone,
            "DASHBOARD_STORE_TIMEZONES": json.dumps(job.store_timezones),
            "DASHBOARD_STORES": ",".join(store.store_id for store in DEFAULT_STORES),
            "DASHBOARD_STORE_CURRENCIES": json.dumps({st.store_id: st.currency for st in DEFAULT_STORES}),
            "DASHBOARD_AUTH": "token",
            "DASHBOARD_TOKENS_FILE": str(self.tokens_file),
            "DASHBOARD_SESSION_KEY_FILE": str(s.dashboard_session_key_file),
            "DASHBOARD_INGEST_METRICS_URL": f"{s.ingest_internal_url}/metrics",
            "DASHBOARD_FLINK_JOBMANAGER_METRICS_URL": f"http://{s.host}:{p['flink_jobmanager_metrics_port']}/",
            "DASHBOARD_FLINK_JOB_NAME": job.job_name,
            "DASHBOARD_FLINK_METRICS_URLS": ",".join(
                f"http://{s.host}:{p[name]}/" for name in ("flink_jobmanager_metrics_port",
                                                           "flink_taskmanager_metrics_port")),
            "DASHBOARD_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "DASHBOARD_KAFKA_TOPIC": job.orders_topic,
            "DASHBOARD_KAFKA_GROUP": job.group_id,
            "DASHBOARD_AUDITOR_METRICS_URL": f"http://{s.host}:{s.auditor_port}/metrics",
        }
        env.update(self.env_overrides)
        return env

    def processes(self) -> list[ManagedProcess]:
        return [self.process("", [sys.executable, "-m", "coffee_dashboard"], env=self.environment(),
                             niceness=self.settings.background_niceness)]

    def health(self) -> Health:
        try:
            response = httpx.get(f"{self.address()}/healthz", timeout=3)
        except httpx.HTTPError as exc:
            return Health(False, f"GET /healthz: {exc}")
        if response.status_code != 200:
            return Health(False, f"GET /healthz: {response.status_code} {response.text[:200]}")
        return Health(True, "serving")
