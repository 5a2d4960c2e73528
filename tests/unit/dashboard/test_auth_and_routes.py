"""Auth modes, the read-only rule and route wiring, on the real ASGI app (no servers: these
routes never reach Redis or Postgres)."""

from __future__ import annotations

import base64
import re

import pytest
from starlette.testclient import TestClient

from coffee_dashboard.app import DashboardService
from coffee_dashboard.auth import digest
from coffee_dashboard.settings import DashboardSettings

TOKEN = "a-long-random-dashboard-token"
PASSWORD = "another-long-random-password"


def client(**env: str) -> TestClient:
    settings = DashboardSettings.from_env({"DASHBOARD_REDIS_URL": "redis://127.0.0.1:1/0", **env})
    return TestClient(DashboardService(settings).asgi(), follow_redirects=False)  # no lifespan: no background tasks


@pytest.fixture
def token_client() -> TestClient:
    return client(DASHBOARD_TOKENS_SHA256=f"{'0' * 64},{digest(TOKEN).hex()}")


def test_token_mode(token_client: TestClient) -> None:
    assert token_client.get("/healthz").json() == {"status": "ok"}
    denied = token_client.get("/api/v1/status")
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/problem+json"
    assert denied.headers["www-authenticate"] == 'Bearer realm="coffee-rt dashboard"'
    for header in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer ", ""):
        assert token_client.get("/api/v1/status", headers={"Authorization": header}).status_code == 401, header
    ok = token_client.get("/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["state"] == "down"  # not started: Redis not checked yet


def test_token_link_sets_a_session_cookie_and_leaves_the_url(token_client: TestClient) -> None:
    login = token_client.get(f"/?store=store-01&token={TOKEN}")
    assert (login.status_code, login.headers["location"]) == (303, "/?store=store-01")
    session, old = login.headers.get_list("set-cookie")
    assert TOKEN not in session
    assert re.fullmatch(r"coffee_dashboard_session=v1\.[0-9]+\.[A-Za-z0-9_-]{43}; Path=/; HttpOnly; "
                        r"SameSite=Strict; Max-Age=43200", session), session
    assert old == "coffee_dashboard_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    assert token_client.get("/?token=wrong").status_code == 401
    page = token_client.get("/")  # the client keeps the session cookie
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    token_client.cookies.clear()
    token_client.cookies.set("coffee_dashboard_token", TOKEN)  # the raw token as a cookie opens nothing
    assert token_client.get("/").status_code == 401
    token_client.cookies.set("coffee_dashboard_session", TOKEN)
    assert token_client.get("/").status_code == 401


def test_basic_mode() -> None:
    c = client(DASHBOARD_AUTH="basic", DASHBOARD_BASIC_USER="owner",
               DASHBOARD_BASIC_PASSWORD_SHA256=digest(PASSWORD).hex())

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    denied = c.get("/")
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == 'Basic realm="coffee-rt dashboard", charset="UTF-8"'
    assert c.get("/", headers=basic("owner", PASSWORD + "x")).status_code == 401
    assert c.get("/", headers=basic("Owner", PASSWORD)).status_code == 401
    assert c.get("/", headers={"Authorization": "Basic !!!notbase64"}).status_code == 401
    assert c.get("/", headers=basic("owner", PASSWORD)).status_code == 200
    assert c.get(f"/?token={TOKEN}", headers=basic("owner", PASSWORD)).status_code == 200  # no token login here


def test_none_mode_is_explicit() -> None:
    assert client(DASHBOARD_AUTH="none").get("/api/v1/status").status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_read_only(token_client: TestClient, method: str) -> None:
    for path in ("/", "/api/v1/summary", "/healthz", "/static/app.js", "/anything"):
        response = token_client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD"), path


def test_unknown_path_is_a_404_problem(token_client: TestClient) -> None:
    response = token_client.get("/api/v1/nope", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404 and response.json()["type"] == "urn:coffee-rt:problem:not-found"


def test_bad_parameters_fail_before_any_backend(token_client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert token_client.get("/api/v1/status?x=1", headers=auth).status_code == 400
    response = token_client.get("/api/v1/history/daily?from=2025-13-01", headers=auth)
    assert response.status_code == 400 and response.json()["param"] == "from"
