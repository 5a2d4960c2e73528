"""The ledger auditor (``python -m coffee_auditor``, the service Kubernetes runs): a round every
``interval_seconds`` comparing the orders topic with Postgres and Redis, its ``coffee_ledger_*``
metrics on ``auditor_port``.

Its tally (topic positions, running totals, the dedup window's message_ids) is kept in Postgres and
shared with `coffee-rt audit` under a lock, so a restart resumes where the last round ended.
"""

from __future__ import annotations

import json
import sys

import httpx

from coffee_rt.local.components.base import Component, Health
from coffee_rt.local.process import ManagedProcess


class Auditor(Component):
    name = "auditor"
    start_timeout = 30.0
    interval_seconds = 30.0  # a test may shorten it before `up`

    def ports(self) -> list[int]:
        return [self.settings.auditor_port]

    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.auditor_port}/metrics"

    def environment(self) -> dict[str, str]:
        """``AUDITOR_*``: the stack's servers, the job's topic, zones and dedup window (``coffee_rt.audit.targets``)."""
        from coffee_rt.audit import targets
        from coffee_rt.local.jobconfig import local_job_config

        s = self.settings
        t = targets(s, local_job_config(s))
        return {
            "AUDITOR_HOST": s.host,
            "AUDITOR_PORT": str(s.auditor_port),
            "AUDITOR_INTERVAL": f"{self.interval_seconds:g}s",
            "AUDITOR_KAFKA_BOOTSTRAP": t.kafka_bootstrap,
            "AUDITOR_TOPIC": t.topic,
            "AUDITOR_POSTGRES_DSN": t.postgres_dsn,
            "AUDITOR_REDIS_URL": t.redis_url,
            "AUDITOR_DEFAULT_TIMEZONE": t.default_timezone,
            "AUDITOR_STORE_TIMEZONES": json.dumps(dict(t.store_timezones)),
            "AUDITOR_DEDUP_TTL": f"{t.dedup_ttl_ms}ms",
        }

    def processes(self) -> list[ManagedProcess]:
        # The Postgres password travels in the environment, not in argv that `ps` shows.
        return [self.process("", [sys.executable, "-m", "coffee_auditor"], env=self.environment(),
                             niceness=self.settings.background_niceness)]

    def health(self) -> Health:
        try:
            response = httpx.get(self.address(), timeout=3)
        except httpx.HTTPError as exc:
            return Health(False, f"GET /metrics: {exc}")
        if response.status_code != 200:
            return Health(False, f"GET /metrics: {response.status_code}")
        line = next((ln for ln in response.text.splitlines()
                     if ln.startswith("coffee_ledger_last_audit_timestamp_seconds ")), "")
        last = float(line.split()[-1]) if line else 0.0
        return Health(True, "first round running" if last == 0 else f"last round at {last:.0f}")
