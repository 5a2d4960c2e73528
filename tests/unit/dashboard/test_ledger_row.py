"""The ops panel's Ledger row, read from exactly what the auditor exports (its own metrics class)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from coffee_ledger.compare import Count, Row
from prometheus_client import generate_latest

from coffee_auditor.engine import Report
from coffee_auditor.metrics import LedgerMetrics
from coffee_dashboard.ledger import Difference, Ledger, read, verdict
from coffee_dashboard.ops import OpsMonitor
from coffee_dashboard.settings import DashboardSettings, SettingsError

ROUND_END = 1_800_000_000.0
DAY, EARLIER = "2026-03-05", "2026-03-04"
SAME = Count(11, 14210)


def exported(rows: list[Row], finished: float | None = ROUND_END) -> str:
    """The auditor's /metrics after a round with these rows (None: no round has finished yet)."""
    metrics = LedgerMetrics()
    if finished is not None:
        metrics.update(Report(rows, records_read=0, seconds=0.4, remembered_ids=0), finished)
    return generate_latest(metrics.registry).decode()


def test_every_view_equal_agrees_and_counts_the_audited_store_days() -> None:
    text = exported([Row("store-01", DAY, SAME, SAME, SAME), Row("_all", DAY, SAME, SAME, SAME),
                     Row("store-02", EARLIER, SAME, SAME, None),  # Redis holds today only: not audited
                     Row("store-03", EARLIER, SAME, Count(0, 0), None, complete=False)])  # beyond retention
    assert verdict(text, ROUND_END + 12.4, 120) == Ledger(
        "agrees", "agrees with the orders topic (3 store-days, audited 12 s ago)", (), 3, 12.4)
    assert verdict(exported([Row("store-01", DAY, SAME, SAME, SAME)]), ROUND_END, 120).summary == \
        "agrees with the orders topic (1 store-day, audited 0 s ago)"


def test_a_difference_names_view_store_day_and_amounts_stores_before_all() -> None:
    text = exported([
        Row("_all", DAY, Count(41, 52870), Count(41, 52870), Count(48, 51636)),
        Row("store-01", DAY, SAME, SAME, Count(18, 12976)),
        Row("store-02", EARLIER, SAME, Count(11, 14000), None),  # revenue alone differs
        Row("store-02", DAY, SAME, SAME, SAME),
    ])
    ledger = verdict(text, ROUND_END + 30, 120)
    assert ledger.differences == (
        Difference("postgres", "store-02", EARLIER, 0, -210),
        Difference("redis", "store-01", DAY, 7, -1234),
        Difference("redis", "_all", DAY, 7, -1234),
    )
    assert (ledger.verdict, ledger.audited, ledger.last_audit_age_s) == ("differs", 4, 30.0)
    assert ledger.summary == "differs: store-02 2026-03-04: postgres +0 orders -210 cents (audited 30 s ago; 2 more)"
    one = verdict(exported([Row("store-01", DAY, SAME, Count(10, 14000), SAME)]), ROUND_END + 5, 120)
    assert one.summary == "differs: store-01 2026-03-05: postgres -1 orders -210 cents (audited 5 s ago)"
    assert one.to_json() == {
        "status": "ok", "verdict": "differs", "summary": one.summary, "audited": 1, "last_audit_age_s": 5.0,
        "differences": [{"view": "postgres", "store": "store-01", "day": DAY, "orders": -1, "revenue_cents": -210}]}


def test_an_old_verdict_is_unknown_even_when_it_agreed() -> None:
    text = exported([Row("store-01", DAY, SAME, SAME, SAME)])
    assert verdict(text, ROUND_END + 120, 120).verdict == "agrees"
    stale = verdict(text, ROUND_END + 600.04, 120)
    assert (stale.verdict, stale.summary, stale.last_audit_age_s) == (
        "unknown", "unknown: the last audit round finished 10 min ago (stale after 2 min)", 600.0)


def test_no_finished_round_or_not_the_auditor_is_unknown() -> None:
    first = verdict(exported([], finished=None), ROUND_END, 120)
    assert (first.verdict, first.summary, first.last_audit_age_s) == (
        "unknown", "unknown: the auditor's first round has not finished yet", None)
    other = verdict("# TYPE up gauge\nup 1.0\n", ROUND_END, 120)
    assert (other.verdict, other.summary) == (
        "unknown", "unknown: no coffee_ledger_last_audit_timestamp_seconds in the answer (not the ledger auditor?)")
    assert read("") == (None, 0, [])


def test_unset_auditor_url_is_not_configured() -> None:
    async def ledger_part() -> object:
        async with httpx.AsyncClient() as http:
            monitor = OpsMonitor(DashboardSettings(auth="none"), http)
            assert monitor.latest["ledger"] == {"status": "off"}
            return (await monitor.refresh())["ledger"]

    assert asyncio.run(ledger_part()) == {"status": "off"}


def test_auditor_settings_from_the_environment() -> None:
    settings = DashboardSettings.from_env({"DASHBOARD_AUTH": "none",
                                           "DASHBOARD_AUDITOR_METRICS_URL": "http://127.0.0.1:19195/metrics",
                                           "DASHBOARD_LEDGER_STALE_AFTER_S": "90"})
    assert (settings.auditor_metrics_url, settings.ledger_stale_after_s) == ("http://127.0.0.1:19195/metrics", 90.0)
    assert DashboardSettings(auth="none").ledger_stale_after_s == 120.0
    for value, bound in (("5", "greater than or equal to 10"), ("86401", "less than or equal to 86400")):
        with pytest.raises(SettingsError) as err:
            DashboardSettings.from_env({"DASHBOARD_AUTH": "none", "DASHBOARD_LEDGER_STALE_AFTER_S": value})
        assert str(err.value) == f"invalid dashboard settings: DASHBOARD_LEDGER_STALE_AFTER_S: Input should be {bound}"
