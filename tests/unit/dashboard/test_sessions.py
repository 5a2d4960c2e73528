"""The dashboard's session cookie (signed, expiring, bound to a token that is still configured), its
token file re-read on change, and the metrics on the internal app only."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from coffee_dashboard.app import DashboardService
from coffee_dashboard.auth import AuthConfigError, Authenticator, Sessions, digest, load_session_key, parse_digests
from coffee_dashboard.settings import DashboardSettings, SettingsError

TOKEN, OTHER = "a-long-random-dashboard-token", "the-other-long-random-token"
KEY = b"k" * 32


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_session_value_is_valid_until_its_expiry_and_only_for_a_configured_token() -> None:
    clock = Clock()
    sessions = Sessions(KEY, 3600, clock)
    value = sessions.issue(digest(TOKEN))
    expiry, mac = value.split(".")[1:]
    assert (value.startswith("v1."), int(expiry), len(mac)) == (True, 1_700_003_600, 43)
    assert TOKEN not in value and digest(TOKEN).hex() not in value
    assert sessions.valid(value, [digest(OTHER), digest(TOKEN)])
    assert not sessions.valid(value, [digest(OTHER)])  # its token was removed
    assert not Sessions(b"x" * 32, 3600, clock).valid(value, [digest(TOKEN)])  # another key
    clock.now = 1_700_003_599.0
    assert sessions.valid(value, [digest(TOKEN)])
    clock.now = 1_700_003_600.0
    assert not sessions.valid(value, [digest(TOKEN)])


@pytest.mark.parametrize("tamper", [
    lambda v: v.replace("v1.", "v2."),
    lambda v: "v1.1800000000." + v.split(".")[2],  # a later expiry under the old mac
    lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"),
    lambda v: v + "A",
    lambda v: "v1." + v.split(".")[1],
    lambda v: "",
    lambda v: "v1.-5." + v.split(".")[2],
    lambda v: "v1.1700003600.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
])
def test_a_tampered_session_value_is_refused(tamper: object) -> None:
    sessions = Sessions(KEY, 3600, Clock())
    assert callable(tamper)
    assert not sessions.valid(tamper(sessions.issue(digest(TOKEN))), [digest(TOKEN)])


def test_the_token_file_format() -> None:
    a, b = digest(TOKEN), digest(OTHER)
    assert parse_digests(f"# the dashboard's tokens\n{a.hex()}\n\n{b.hex()}  # laptop\n") == (a, b)
    assert parse_digests(f"{a.hex()},{b.hex()}") == (a, b)
    with pytest.raises(AuthConfigError, match=r"^line 2: not a SHA-256 digest"):
        parse_digests(f"{a.hex()}\n{TOKEN}\n")
    with pytest.raises(AuthConfigError, match=r"^no token digest in the file$"):
        parse_digests("# nothing\n")


def test_the_session_key_file(tmp_path: Path) -> None:
    assert len(load_session_key(None)) == 32 and load_session_key(None) != load_session_key(None)
    (tmp_path / "key").write_text("k" * 64 + "\n")
    assert load_session_key(tmp_path / "key") == b"k" * 64
    (tmp_path / "short").write_text("k" * 31)
    with pytest.raises(AuthConfigError, match="must hold at least 32 bytes"):
        load_session_key(tmp_path / "short")
    with pytest.raises(AuthConfigError, match=r"cannot read the session key file .*/missing: No such file"):
        load_session_key(tmp_path / "missing")


def settings(tmp_path: Path, **env: str) -> DashboardSettings:
    (tmp_path / "tokens").write_text(f"{digest(TOKEN).hex()}\n{digest(OTHER).hex()}\n")
    (tmp_path / "session-key").write_text("s" * 64)
    return DashboardSettings.from_env({"DASHBOARD_REDIS_URL": "redis://127.0.0.1:1/0",
                                       "DASHBOARD_TOKENS_FILE": str(tmp_path / "tokens"),
                                       "DASHBOARD_SESSION_KEY_FILE": str(tmp_path / "session-key"), **env})


def metric(service: DashboardService, name: str, **labels: str) -> float | None:
    return service.metrics.registry.get_sample_value(name, labels)


def test_a_token_removed_from_the_file_stops_working_with_its_sessions(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    service = DashboardService(settings(tmp_path, DASHBOARD_SESSION_TTL="2h", DASHBOARD_COOKIE_SECURE="true"))
    client = TestClient(service.asgi(), follow_redirects=False, base_url="https://testserver")
    login = client.get(f"/?token={TOKEN}")
    assert login.status_code == 303
    assert login.headers.get_list("set-cookie")[0].endswith("; Path=/; HttpOnly; SameSite=Strict; Max-Age=7200; Secure")
    assert client.get("/api/v1/stores").status_code == 200
    assert metric(service, "coffee_dashboard_logins_total", outcome="session") == 1.0
    token_file = service.auth.token_file
    assert token_file is not None

    (tmp_path / "tokens").write_text(f"{digest(OTHER).hex()}\n")
    assert token_file.check() is True
    service.auth.set_tokens(token_file.value)  # what the watch task does
    assert client.get("/api/v1/stores").status_code == 401  # the session of the removed token
    assert client.get("/api/v1/stores", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    assert client.get("/api/v1/stores", headers={"Authorization": f"Bearer {OTHER}"}).status_code == 200
    assert metric(service, "coffee_dashboard_token_reloads_total", outcome="loaded") == 1.0

    # A malformed or missing file keeps the last good tokens, logs once per problem, sets the gauge.
    caplog.set_level(logging.ERROR, "coffee_service.reload")
    for bad in ("not a digest\n", None):
        if bad is None:
            (tmp_path / "tokens").unlink()
        else:
            (tmp_path / "tokens").write_text(bad)
        assert token_file.check() is False and token_file.check() is False
        assert service.auth.tokens == (digest(OTHER),)
        assert metric(service, "coffee_dashboard_token_file_ok") == 0.0
    assert metric(service, "coffee_dashboard_token_reloads_total", outcome="failed") == 2.0
    assert [r.getMessage() for r in caplog.records] == [
        f"dashboard token file not reloaded, the last good one stays in use: {tmp_path}/tokens: "
        "line 1: not a SHA-256 digest (64 lower-case hex digits)",
        f"dashboard token file not reloaded, the last good one stays in use: cannot read {tmp_path}/tokens: "
        "No such file or directory"]
    (tmp_path / "tokens").write_text(f"{digest(OTHER).hex()}\n")
    assert token_file.check() is False  # the content in use again
    assert metric(service, "coffee_dashboard_token_file_ok") == 1.0


def test_sessions_survive_a_restart_with_the_same_key_file(tmp_path: Path) -> None:
    first = TestClient(DashboardService(settings(tmp_path)).asgi(), follow_redirects=False)
    assert first.get(f"/?token={TOKEN}").status_code == 303
    second = DashboardService(settings(tmp_path))
    again = TestClient(second.asgi(), follow_redirects=False, cookies=dict(first.cookies))
    assert again.get("/api/v1/stores").status_code == 200


def test_metrics_are_on_the_internal_app_only(tmp_path: Path) -> None:
    service = DashboardService(settings(tmp_path))
    public = TestClient(service.asgi())
    assert public.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    internal = TestClient(service.internal_asgi())
    text = internal.get("/metrics").text
    assert 'coffee_dashboard_connections_cut_total{reason="header_timeout"} 0.0' in text
    assert "coffee_dashboard_token_file_ok 1.0" in text
    assert internal.get("/healthz").json() == {"status": "ok"}


def test_a_bad_token_file_at_start_is_an_error(tmp_path: Path) -> None:
    s = settings(tmp_path)
    (tmp_path / "tokens").write_text("x\n")
    where = re.escape(str(tmp_path))
    with pytest.raises(AuthConfigError, match=f"^the token file {where}/tokens: line 1: not a SHA-256"):
        Authenticator(s)
    (tmp_path / "tokens").unlink()
    with pytest.raises(AuthConfigError, match=r"^cannot read the token file .*: No such file or directory$"):
        Authenticator(s)


@pytest.mark.parametrize(("env", "message"), [
    ({"DASHBOARD_TOKENS_SHA256": "0" * 64}, "exactly one of DASHBOARD_TOKENS_SHA256"),
    ({"DASHBOARD_SESSION_TTL": "30s"}, "DASHBOARD_SESSION_TTL must be between 1min and 30d"),
    ({"DASHBOARD_SESSION_TTL": "31d"}, "DASHBOARD_SESSION_TTL must be between 1min and 30d"),
    ({"DASHBOARD_INTERNAL_PORT": "8090"}, "DASHBOARD_INTERNAL_PORT must differ from DASHBOARD_PORT"),
    ({"DASHBOARD_MAX_REQUESTS": "200"}, "DASHBOARD_MAX_REQUESTS (200) must be above DASHBOARD_MAX_CLIENTS (200)"),
    ({"DASHBOARD_HEADER_TIMEOUT": "20min"}, "DASHBOARD_HEADER_TIMEOUT must be between 100ms and 10min"),
])
def test_invalid_settings(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings(tmp_path, **env)
    assert message in str(info.value)


def test_the_limits_come_from_the_settings(tmp_path: Path) -> None:
    s = settings(tmp_path, DASHBOARD_HEADER_TIMEOUT="3s", DASHBOARD_BODY_TIMEOUT="500ms",
                 DASHBOARD_MAX_CONNECTIONS="40", DASHBOARD_MAX_REQUESTS="250")
    limits = s.limits()
    assert (limits.header_timeout_s, limits.body_timeout_s, limits.max_connections, limits.max_requests) == (
        3.0, 0.5, 40, 250)
    assert (s.internal_host, s.internal_port, s.session_ttl.total_seconds()) == ("127.0.0.1", 9090, 43200.0)
