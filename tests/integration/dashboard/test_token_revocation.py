"""The real dashboard process of the test stack: a token removed from its token file is refused,
sessions included, within seconds and without a restart; a broken file keeps the last good tokens;
its metrics are on the internal port only."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from coffee_dashboard.auth import digest
from coffee_rt.local.components.dashboard import Dashboard
from coffee_rt.local.stack import LocalStack


@pytest.fixture
def dashboard(local_stack: LocalStack, dashboard_url: str) -> Iterator[Dashboard]:
    component = local_stack["dashboard"]
    assert isinstance(component, Dashboard)
    good = component.tokens_file.read_text()
    try:
        yield component
    finally:
        component.tokens_file.write_text(good)


def metric(internal: str, series: str) -> float:
    for line in httpx.get(f"{internal}/metrics", timeout=10).text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in /metrics")


def wait_for(status: int, client: httpx.Client, headers: dict[str, str] | None = None, within: float = 15) -> float:
    """Seconds until GET /api/v1/stores answers ``status``."""
    start = time.monotonic()
    while (answer := client.get("/api/v1/stores", headers=headers).status_code) != status:
        assert time.monotonic() - start < within, f"still {answer} after {within} s"
        time.sleep(0.2)
    return time.monotonic() - start


def test_a_removed_token_and_its_sessions_are_refused_without_a_restart(
        local_stack: LocalStack, dashboard: Dashboard) -> None:
    settings = local_stack.settings
    internal = settings.dashboard_internal_url
    token, other = dashboard.dev_token(), "another-dashboard-token-of-the-test"
    pid = dashboard.processes()[0].pid()
    reloads = 'coffee_dashboard_token_reloads_total{outcome="%s"}'
    before = {outcome: metric(internal, reloads % outcome) for outcome in ("loaded", "failed")}
    with httpx.Client(base_url=settings.dashboard_url, timeout=10) as browser:
        login = browser.get("/", params={"token": token})
        assert login.status_code == 303 and token not in login.headers["set-cookie"]
        assert browser.get("/api/v1/stores").status_code == 200  # the session cookie
        bearer = {"Authorization": f"Bearer {token}"}

        dashboard.tokens_file.write_text(f"{digest(other).hex()}\n")  # the dev token revoked
        assert wait_for(401, browser) < 10
        assert browser.get("/api/v1/stores", headers=bearer).status_code == 401
        assert browser.get("/api/v1/stores", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        assert browser.get("/", params={"token": token}).status_code == 401

        dashboard.tokens_file.write_text("not a digest\n")  # broken: the last good set stays
        time.sleep(7)
        assert metric(internal, "coffee_dashboard_token_file_ok") == 0.0
        assert browser.get("/api/v1/stores", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        assert browser.get("/api/v1/stores", headers=bearer).status_code == 401

        dashboard.tokens_file.write_text(f"{digest(token).hex()}\n")  # back: its unexpired session too
        wait_for(200, browser)
        assert metric(internal, "coffee_dashboard_token_file_ok") == 1.0
    assert metric(internal, reloads % "loaded") == before["loaded"] + 2
    assert metric(internal, reloads % "failed") == before["failed"] + 1
    assert dashboard.processes()[0].pid() == pid
    log = dashboard.log_files()[0].read_text()
    assert "dashboard token file not reloaded, the last good one stays in use" in log
    assert token not in log and other not in log


def test_metrics_are_on_the_internal_port_only(local_stack: LocalStack, dashboard: Dashboard) -> None:
    settings = local_stack.settings
    bearer = {"Authorization": f"Bearer {dashboard.dev_token()}"}
    assert httpx.get(f"{settings.dashboard_url}/metrics", headers=bearer, timeout=10).status_code == 404
    assert httpx.get(f"{settings.dashboard_url}/metrics", timeout=10).status_code == 401
    text = httpx.get(f"{settings.dashboard_internal_url}/metrics", timeout=10).text
    assert 'coffee_dashboard_connections_cut_total{reason="header_timeout"}' in text
    assert httpx.get(f"{settings.dashboard_internal_url}/healthz", timeout=10).json() == {"status": "ok"}
