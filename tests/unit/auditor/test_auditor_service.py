"""The auditor process: ``/metrics`` and ``/healthz`` on a real socket while rounds run in the main thread,
and a bad environment is exit 2 with the variable named, before anything is served."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from coffee_ledger.compare import Count, Row

from coffee_auditor.engine import Report, where
from coffee_auditor.metrics import LedgerMetrics
from coffee_auditor.service import start_http


def test_metrics_health_and_nothing_else_are_served() -> None:
    metrics = LedgerMetrics()
    server = start_http("127.0.0.1", 0, metrics)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert 'coffee_ledger_last_audit_timestamp_seconds 0.0' in httpx.get(f"{base}/metrics").text
        metrics.update(Report([Row("store-01", "2026-03-05", Count(3, 900), Count(2, 600), None)], 3, 0.5, 3),
                       1_772_700_000.0)
        text = httpx.get(f"{base}/metrics").text
        assert 'coffee_ledger_orders_difference{day="2026-03-05",store="store-01",view="postgres"} -1.0' in text
        assert "coffee_ledger_last_audit_timestamp_seconds 1.7727e+09" in text
        health = httpx.get(f"{base}/healthz")
        assert (health.status_code, health.text, health.headers["content-type"]) == (
            200, "ok\n", "text/plain; charset=utf-8")
        other = httpx.get(f"{base}/")
        assert (other.status_code, other.text) == (404, "not found: /metrics or /healthz\n")
    finally:
        server.shutdown()
        server.server_close()


def test_a_bad_environment_is_exit_2_naming_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITOR_")}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "coffee_auditor"], env={**env, "AUDITOR_KAFKA_BOOTSTRAP": "k:9092"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == ("coffee_auditor: invalid auditor settings: AUDITOR_POSTGRES_DSN: Field required; "
                             "AUDITOR_REDIS_URL: Field required\n")
    assert time.monotonic() - started < 60


def test_a_servers_address_in_a_message_has_no_credentials() -> None:
    assert where("redis://:s3cret@redis.coffee-rt.svc:6379/0") == "redis://redis.coffee-rt.svc:6379"
    assert where("rediss://user:pw@cache") == "rediss://cache"
