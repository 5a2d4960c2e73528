"""The live/stale/down rule: a quiet shop and a stuck pipeline must never look alike."""

from __future__ import annotations

import pytest

from coffee_dashboard.staleness import assess, human_age, job_severity

NOW = 1_800_000_000_000


def test_live_within_threshold() -> None:
    status = assess(NOW, None, NOW - 119_000, 120, "RUNNING", 0)
    assert (status.state, status.severity, status.headline, status.age_s) == ("live", "ok", "Live", 119.0)


def test_redis_unreachable_is_down_whatever_else() -> None:
    status = assess(NOW, "Redis: Connection refused", NOW - 1000, 120, "RUNNING", 0)
    assert (status.state, status.severity) == ("down", "critical")
    assert status.headline == "Pipeline down: the dashboard cannot reach Redis"
    assert status.detail.startswith("Redis: Connection refused. ")
    assert "NOT live" in status.detail
    assert assess(NOW, "Redis: refused.", None, 120).detail.startswith("Redis: refused. The numbers")


def test_job_not_running_is_down() -> None:
    assert assess(NOW, None, NOW, 120, "FAILED", 0).headline == "Pipeline down: the Flink job is FAILED"
    assert assess(NOW, None, NOW, 120, "MISSING", 0).headline == "Pipeline down: the Flink job is not deployed"
    assert assess(NOW, None, NOW, 120, "RESTARTING", 0).state == "live"


@pytest.mark.parametrize(("job_state", "severity", "state", "headline"), [
    ("RUNNING", "ok", "live", "Live"),
    ("INITIALIZING", "warning", "live", "Live"),
    ("CREATED", "warning", "live", "Live"),
    ("RESTARTING", "warning", "live", "Live"),
    ("RECONCILING", "warning", "live", "Live"),
    # On its way out: CANCELLING ends CANCELED, FAILING ends FAILED (a recoverable failure is RESTARTING).
    ("CANCELLING", "critical", "down", "Pipeline down: the Flink job is CANCELLING"),
    ("FAILING", "critical", "down", "Pipeline down: the Flink job is FAILING"),
    ("SUSPENDED", "critical", "down", "Pipeline down: the Flink job is SUSPENDED"),
    ("FINISHED", "critical", "down", "Pipeline down: the Flink job is FINISHED"),
    ("FAILED", "critical", "down", "Pipeline down: the Flink job is FAILED"),
    ("CANCELED", "critical", "down", "Pipeline down: the Flink job is CANCELED"),
    ("MISSING", "critical", "down", "Pipeline down: the Flink job is not deployed"),
])
def test_every_flink_job_state_on_the_panel_and_the_banner(job_state: str, severity: str, state: str,
                                                           headline: str) -> None:
    """Fresh numbers: only the job state decides. The panel's colour and the banner agree."""
    assert job_severity(job_state) == severity
    status = assess(NOW, None, NOW - 1000, 120, job_state, 0)
    assert (status.state, status.headline) == (state, headline)


def test_quiet_shop_is_a_warning_with_the_evidence() -> None:
    status = assess(NOW, None, NOW - 300_000, 120, "RUNNING", 0)
    assert (status.state, status.severity, status.headline) == ("stale", "warning", "No new orders for 5 min")
    assert "no orders waiting in Kafka" in status.detail


def test_orders_waiting_in_kafka_is_critical() -> None:
    status = assess(NOW, None, NOW - 300_000, 120, "RUNNING", 37)
    assert (status.state, status.severity) == ("stale", "critical")
    assert status.headline == "Stale: no update for 5 min, 37 orders waiting in Kafka"


def test_unknown_evidence_is_critical_and_says_why() -> None:
    status = assess(NOW, None, NOW - 130_000, 120, None, None, "Kafka: not configured")
    assert (status.state, status.severity, status.headline) == ("stale", "critical", "Stale: no update for 2 min")
    assert "(Kafka: not configured)" in status.detail


def test_no_update_ever() -> None:
    status = assess(NOW, None, None, 120, "RUNNING", 0)
    assert (status.state, status.severity, status.headline, status.age_s) == ("stale", "critical",
                                                                              "No live data yet", None)


def test_human_age() -> None:
    assert [human_age(s) for s in (0, 89.6, 90, 5399, 5400, 7260)] == ["0 s", "89 s", "1 min", "89 min",
                                                                       "1 h 30 min", "2 h 1 min"]


def test_orders_read_but_numbers_still_is_critical_not_quiet() -> None:
    """The seed's failure: the job reads orders (lag 0, RUNNING) but the live numbers do not move."""
    status = assess(NOW, None, NOW - 300_000, 120, "RUNNING", 0, arrived=1)
    assert (status.state, status.severity) == ("stale", "critical")
    assert status.headline == "Stale: no update for 5 min, though 1 order arrived since"
    assert assess(NOW, None, NOW - 300_000, 120, "RUNNING", 0, arrived=0).severity == "warning"
    assert assess(NOW, None, NOW - 1000, 120, "RUNNING", 0, arrived=5).state == "live"  # not stale yet


def test_arrivals_are_counted_from_the_first_reading_after_an_update() -> None:
    from coffee_dashboard.live import LiveHub
    from coffee_dashboard.ops import Evidence
    from coffee_dashboard.settings import DashboardSettings

    hub = LiveHub(None, DashboardSettings(auth="none"), None, None)  # type: ignore[arg-type]
    hub.last_update_ms = 1000
    assert hub._arrived(Evidence("RUNNING", 0, "", 50, 900)) is None  # readings begun before the update
    assert hub._arrived(Evidence("RUNNING", 0, "", 50, 1500)) is None  # ... or within the clock margin
    assert hub._arrived(Evidence("RUNNING", 0, "", 52, 2100)) == 0  # baseline
    assert hub._arrived(Evidence("RUNNING", 0, "", 55, 3200)) == 3
    assert hub._arrived(Evidence("RUNNING", 0, "", None, 4300)) is None  # Kafka unreadable
    hub.last_update_ms = 5000  # a new update: start again
    assert hub._arrived(Evidence("RUNNING", 0, "", 56, 5100)) is None
    assert hub._arrived(Evidence("RUNNING", 0, "", 56, 6100)) == 0
    assert hub._arrived(Evidence("RUNNING", 0, "", 56, 7100)) == 0
