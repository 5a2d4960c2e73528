"""The Ledger row through the real dashboard process.

The dashboard scrapes an auditor's ``/metrics``: the auditor's own metrics class, served from its
registry as ``python -m coffee_auditor`` serves it (here by ``start_http_server``), with rounds whose
results the test chooses, so every verdict and its words are exact. No job, Kafka or Postgres is
needed; ``tests/unit/dashboard/test_ledger_row.py`` covers the verdict rule case by case.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from coffee_ledger.compare import Count, Row
from prometheus_client import start_http_server

from coffee_auditor.engine import Report
from coffee_auditor.metrics import LedgerMetrics
from coffee_rt.local.components.dashboard import Dashboard
from coffee_rt.local.stack import LocalStack

DAY = datetime.now(UTC).date().isoformat()
SAME = Count(11, 14210)


def round_of(rows: list[Row]) -> Report:
    return Report(rows, records_read=len(rows), seconds=0.2, remembered_ids=0)


@pytest.fixture(scope="module")
def ledger_part(local_stack: LocalStack) -> Iterator[tuple[LedgerMetrics, Callable[[], None], Callable[..., Any]]]:
    """The auditor's metrics (to run rounds on), a way to stop serving them, and a wait for the
    dashboard's ledger part to satisfy a condition."""
    metrics = LedgerMetrics()
    server, thread = start_http_server(0, "127.0.0.1", registry=metrics.registry)
    component = local_stack["dashboard"]
    assert isinstance(component, Dashboard)
    component.env_overrides = {
        "DASHBOARD_AUDITOR_METRICS_URL": f"http://127.0.0.1:{server.server_port}/metrics",
        "DASHBOARD_LEDGER_STALE_AFTER_S": "10",
        "DASHBOARD_OPS_INTERVAL_S": "0.5",
    }
    local_stack.down(["dashboard"])
    local_stack.up(["dashboard"])
    headers = {"Authorization": f"Bearer {component.dev_token()}"}

    def stop_serving() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    def wait(ready: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        part: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = httpx.get(f"{local_stack.settings.dashboard_url}/api/v1/ops", headers=headers, timeout=10)
            assert response.status_code == 200, response.text
            part = response.json()["ledger"]
            if ready(part):
                return part
            time.sleep(0.3)
        raise AssertionError(f"ledger row not reached after {timeout:.0f} s (last: {part!r})")

    try:
        yield metrics, stop_serving, wait
    finally:
        component.env_overrides = {}
        local_stack.down(["dashboard"])  # the next user starts it with the defaults
        if thread.is_alive():
            stop_serving()


def test_the_ledger_row_follows_the_auditor(
        ledger_part: tuple[LedgerMetrics, Callable[[], None], Callable[..., Any]]) -> None:
    metrics, stop_serving, wait = ledger_part
    first = wait(lambda part: part.get("status") == "ok")
    assert first == {"status": "ok", "verdict": "unknown", "audited": 0, "last_audit_age_s": None, "differences": [],
                     "summary": "unknown: the auditor's first round has not finished yet"}

    metrics.update(round_of([Row("store-01", DAY, SAME, SAME, Count(18, 12976)),
                             Row("_all", DAY, SAME, SAME, Count(18, 12976))]), time.time())
    differs = wait(lambda part: part.get("verdict") == "differs")
    age = differs.pop("last_audit_age_s")
    assert 0 <= age < 10
    assert differs == {
        "status": "ok", "verdict": "differs", "audited": 2,
        "summary": f"differs: store-01 {DAY}: redis +7 orders -1234 cents (audited {int(age)} s ago; 1 more)",
        "differences": [{"view": "redis", "store": "store-01", "day": DAY, "orders": 7, "revenue_cents": -1234},
                        {"view": "redis", "store": "_all", "day": DAY, "orders": 7, "revenue_cents": -1234}]}

    metrics.update(round_of([Row("store-01", DAY, SAME, SAME, SAME), Row("_all", DAY, SAME, SAME, SAME)]), time.time())
    agrees = wait(lambda part: part.get("verdict") == "agrees")
    age = agrees["last_audit_age_s"]
    assert agrees["summary"] == f"agrees with the orders topic (2 store-days, audited {int(age)} s ago)"
    assert (agrees["differences"], agrees["audited"]) == ([], 2)

    metrics.last_audit.set(time.time() - 3600)  # the auditor stuck for an hour: its "agrees" is old news
    stale = wait(lambda part: part.get("verdict") == "unknown")
    assert stale["summary"] == "unknown: the last audit round finished 60 min ago (stale after 10 s)"

    stop_serving()  # the first scrape after may fail on its kept-alive connection (ReadError); then refused
    assert wait(lambda part: part.get("error") == "All connection attempts failed") == {
        "status": "error", "error": "All connection attempts failed"}
