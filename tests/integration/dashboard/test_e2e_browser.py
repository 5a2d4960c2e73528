"""The page in headless Chromium (Debian's, driven by Playwright): orders posted through the ingest
API show up with their exact values without a reload; stale and down are unmistakable.

Screenshots go to test-artifacts/ (live, phone, stale, stale-critical, down).
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from dashboard_harness import ARTIFACTS, FedDashboard
from playwright.sync_api import Browser, Page, sync_playwright

from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import Order, to_wire

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_BUDGET = 300 * 1024
UPDATE_WITHIN_MS = 2000  # the requirement: a posted order is on the page within 2 s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian's chromium is missing: tools/bootstrap.sh installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _money(cents: int) -> str:
    return f"€{cents // 100:,}.{cents % 100:02d}"


def _value(page: Page, kpi: str) -> int:
    return int(page.get_attribute(f"#kpi-{kpi}", "data-value") or "-1")


class Till:
    """Posts orders through the ingest API with the stores' tokens."""

    def __init__(self, ingest_url: str, tokens: dict[str, str], zone: str) -> None:
        self.url, self.tokens, self.zone = ingest_url, tokens, zone
        self.rng = random.Random(42)
        self.sent: list[Order] = []

    def post(self, store_id: str, count: int) -> list[Order]:
        store = next(s for s in DEFAULT_STORES if s.store_id == store_id)
        orders = [random_order(self.rng, store, datetime.now(UTC) - timedelta(seconds=self.rng.uniform(1, 20)))
                  for _ in range(count)]
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for order in orders:
                response = client.post("/v1/orders", content=to_wire(order), headers={
                    "Authorization": f"Bearer {self.tokens[store_id]}", "Content-Type": "application/json"})
                assert response.status_code == 202, response.text
        self.sent.extend(orders)
        return orders


def _totals(orders: list[Order], store: str = "_all") -> tuple[int, int, int]:
    mine = [o for o in orders if store in ("_all", o.store_id)]
    return len(mine), sum(o.total_cents for o in mine), sum(i.quantity for o in mine for i in o.items)


def _wait_numbers(page: Page, want: tuple[int, int, int], timeout_ms: float) -> None:
    page.wait_for_function(
        """([orders, revenue, items]) => {
             const v = (id) => document.getElementById(id).dataset.value;
             return v("kpi-orders") === String(orders) && v("kpi-revenue") === String(revenue)
               && v("kpi-items") === String(items);
           }""", arg=list(want), timeout=timeout_ms)


def test_live_page(fed_by_ingest: FedDashboard, browser: Browser, ingest_url: str,
                   ingest_tokens: dict[str, str]) -> None:
    fed = fed_by_ingest
    ARTIFACTS.mkdir(exist_ok=True)
    till = Till(ingest_url, ingest_tokens, fed.zone)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    loaded: list[tuple[str, int]] = []
    requests: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: requests.append(r.url))

    def on_response(response: Any) -> None:
        if "/api/v1/stream" not in response.url and response.status == 200:
            loaded.append((response.url, len(response.body())))

    page.on("response", on_response)

    # First load: log in with the token link (it moves into a cookie), then only the stream.
    page.goto(f"{fed.url}/?token={fed.token}", wait_until="load")
    assert page.url == f"{fed.url}/"
    page.wait_for_selector("#kpi-orders[data-value='0']")
    assert _value(page, "revenue") == 0
    first_load = sum(size for _, size in loaded)
    assert {url.rsplit("/", 1)[-1] for url, _ in loaded} >= {"", "app.js", "app.css", "uPlot.iife.min.js",
                                                            "uPlot.min.css"}
    assert first_load < PAGE_BUDGET, loaded
    print(f"first page load: {first_load} bytes in {len(loaded)} files")

    # Live: no reload, no polling — after the first load the page makes no request at all.
    page.evaluate("window.__noReload = 'still here'")
    requests.clear()
    # The job's first order after its start also pays for its warm-up: not what the 2 s are about.
    till.post("store-03", 1)
    _wait_numbers(page, _totals(till.sent), 60_000)
    orders = till.post("store-01", 2) + till.post("store-02", 1)
    started = time.monotonic()
    _wait_numbers(page, _totals(till.sent), UPDATE_WITHIN_MS)
    print(f"posted orders shown after {1000 * (time.monotonic() - started):.0f} ms")
    assert page.evaluate("window.__noReload") == "still here"
    assert requests == []
    count, revenue, items = _totals(till.sent)
    assert page.inner_text("#kpi-items") == str(items)
    assert page.inner_text("#kpi-orders") == str(count)
    assert page.inner_text("#kpi-revenue") == _money(revenue)
    assert page.inner_text("#kpi-avg") == _money(round(revenue / count))
    newest = sorted(till.sent, key=lambda o: o.placed_at, reverse=True)
    ticker = page.eval_on_selector_all("#recent li", "items => items.map(li => li.dataset.id)")
    assert ticker == [str(o.message_id) for o in newest]
    assert {str(o.message_id) for o in orders} <= set(ticker)
    assert page.get_attribute("#freshness", "data-state") == "live"
    assert page.is_hidden("#banner")
    assert page.inner_text("#freshness").startswith("Live · updated ")

    # A second batch, and the numbers move again to the exact new totals.
    till.post("store-01", 4)
    started = time.monotonic()
    _wait_numbers(page, _totals(till.sent), UPDATE_WITHIN_MS)
    print(f"second batch shown after {1000 * (time.monotonic() - started):.0f} ms")
    page.wait_for_selector("#ops-job:has-text('RUNNING')")
    page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)

    # The store selector: store-01 alone, exact, and the choice is kept in the URL.
    page.select_option("#store", "store-01")
    _wait_numbers(page, _totals(till.sent, "store-01"), 10_000)
    assert page.url.endswith("/?store=store-01")
    rows = page.eval_on_selector_all("#top-products tr", "rows => rows.map(r => [r.dataset.key, "
                                     "r.querySelector('.qty').textContent])")
    quantities: dict[str, int] = {}
    for order in (o for o in till.sent if o.store_id == "store-01"):
        for item in order.items:
            quantities[item.sku] = quantities.get(item.sku, 0) + item.quantity
    assert {sku: int(qty) for sku, qty in rows} == {sku: q for sku, q in quantities.items()
                                                    if sku in dict(rows)}
    assert len(rows) == min(8, len(quantities))

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                has_touch=True, locale="en-GB")
    small = phone.new_page()
    small.goto(f"{fed.url}/?token={fed.token}&store=store-01", wait_until="load")
    _wait_numbers(small, _totals(till.sent, "store-01"), 10_000)
    assert small.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    small.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    phone.close()

    # Updates stop: the stale banner (threshold 4 s here) — not a quiet-looking page.
    page.wait_for_selector("#banner[data-state='stale']", timeout=30_000)
    assert page.get_attribute("#freshness", "data-state") == "stale"
    assert page.inner_text("#freshness").startswith("STALE · updated ")
    headline = page.inner_text("#banner-headline")
    assert headline.startswith(("No new orders for", "Stale: no update for")), headline
    try:
        page.wait_for_selector("#banner[data-severity='warning']", timeout=60_000)  # the job committed: lag 0
    except Exception:
        print("banner:", page.inner_text("#banner"), "ops:", fed.json("/api/v1/ops"))
        raise
    assert page.inner_text("#banner-headline").startswith("No new orders for")
    assert "a quiet period" in page.inner_text("#banner-detail")
    page.screenshot(path=str(ARTIFACTS / "dashboard-stale.png"), full_page=True)

    # The seed's failure mode: orders reach Kafka and the job reads them, but the live numbers do
    # not move (here: a till catching up on an order from two days ago, which only the history
    # gets). Not a quiet shop: critical, with the count of orders that arrived.
    late = random_order(till.rng, DEFAULT_STORES[0], datetime.now(UTC) - timedelta(days=2))
    response = httpx.post(f"{ingest_url}/v1/orders", content=to_wire(late), timeout=10, headers={
        "Authorization": f"Bearer {ingest_tokens['store-01']}", "Content-Type": "application/json"})
    assert response.status_code == 202
    page.wait_for_selector("#banner[data-severity='critical']", timeout=30_000)
    page.wait_for_selector("#banner-headline:has-text('though 1 order arrived since')", timeout=30_000)
    assert _value(page, "orders") == _totals(till.sent, "store-01")[0]
    page.screenshot(path=str(ARTIFACTS / "dashboard-stale-critical.png"), full_page=True)

    # Redis stops: "pipeline down", numbers marked not live; the API says 503, not a zero.
    stack = fed.stack
    stack.down(["redis"])
    try:
        page.wait_for_selector("#banner[data-state='down']", timeout=30_000)
        assert page.inner_text("#banner-headline") == "Pipeline down: the dashboard cannot reach Redis"
        assert "NOT live" in page.inner_text("#banner-detail")
        assert page.get_attribute("body", "data-state") == "down"
        assert _value(page, "orders") == _totals(till.sent, "store-01")[0]  # last known, shown as not live
        response = fed.get("/api/v1/summary")
        assert response.status_code == 503
        assert response.json()["type"] == "urn:coffee-rt:problem:live-unavailable"
        assert fed.json("/api/v1/status")["state"] == "down"
        assert httpx.get(f"{fed.url}/readyz", timeout=10).status_code == 503
        page.screenshot(path=str(ARTIFACTS / "dashboard-down.png"), full_page=True)
    finally:
        stack.up(["redis"])
    # Back: the same exact numbers (Redis keeps them on disk), and live again on the next order.
    page.wait_for_selector("body:not([data-state='down'])", timeout=30_000)
    till.post("store-01", 1)
    _wait_numbers(page, _totals(till.sent, "store-01"), 30_000)
    page.wait_for_selector("#freshness[data-state='live']", timeout=10_000)
    assert errors == []
    context.close()
