"""The ledger auditor (``python -m coffee_rt.audit``): a round every ``interval`` seconds comparing the
orders topic with Postgres and Redis, its ``coffee_ledger_*`` metrics on ``auditor_port``.

Its tally (topic positions, running totals, the dedup window's message_ids) is ``<home>/ledger.json``,
shared with `coffee-rt audit` under a lock, so a restart resumes where the last round ended.
"""

from __future__ import annotations

import sys

import httpx

from coffee_rt.local.components.base import Component, Health
from coffee_rt.local.process import ManagedProcess

SETTINGS_ENV = "COFFEE_LEDGER_AUDITOR_SETTINGS"  # the stack's LocalSettings as JSON, for the auditor process


class Auditor(Component):
    name = "auditor"
    start_timeout = 30.0
    interval_seconds = 30.0  # a test may shorten it before `up`

    def ports(self) -> list[int]:
        return [self.settings.auditor_port]

    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.auditor_port}/metrics"

    def processes(self) -> list[ManagedProcess]:
        # The settings (with the Postgres password) travel in the environment, not in argv that `ps` shows.
        argv = [sys.executable, "-m", "coffee_rt.audit", "--interval", str(self.interval_seconds)]
        return [self.process("", argv, env={SETTINGS_ENV: self.settings.model_dump_json()},
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
