"""The dashboard's JSON API and event stream against real Redis and Postgres fed by the real job.

Orders go straight to the job's own topic; every expected number is computed here from them.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from confluent_kafka import Producer
from dashboard_harness import FedDashboard

from coffee_orders.loadgen import Store, random_order
from coffee_orders.schema import Order, to_wire

STORES = [f"store-{n}" for n in range(1, 5)]


class Feed:
    def __init__(self, fed: FedDashboard) -> None:
        self.fed = fed
        self.rng = random.Random(11)
        self.stores = [Store(s, fed.zone) for s in STORES]
        self.producer = Producer({"bootstrap.servers": fed.cfg.kafka_bootstrap, "enable.idempotence": True,
                                  "acks": "all", "linger.ms": 5})
        self.today: list[Order] = []
        self.last_week: list[Order] = []
        self.poison = 0

    def orders(self, count: int, ago: timedelta = timedelta(0), store: str | None = None,
               min_s: float = 60, max_s: float = 7200) -> list[Order]:
        now = datetime.now(UTC) - ago
        return [random_order(self.rng, next(s for s in self.stores if s.store_id == store) if store
                             else self.rng.choice(self.stores), now - timedelta(seconds=self.rng.uniform(min_s, max_s)))
                for _ in range(count)]

    def send(self, orders: list[Order], poison: int = 0) -> None:
        for order in orders:
            self.producer.produce(self.fed.cfg.orders_topic, key=order.store_id, value=to_wire(order))
        for n in range(poison):
            self.producer.produce(self.fed.cfg.orders_topic, key=b"poison", value=f"not an order #{n}".encode())
        self.poison += poison
        assert self.producer.flush(30) == 0


@pytest.fixture(scope="module")
def feed(fed_dashboard: FedDashboard) -> Iterator[Feed]:
    """200 orders placed in the last two hours (all today, the zone's noon), 40 a week earlier, a
    duplicate of 10 of today's and 3 poison records; waits until the job has counted them."""
    feed = Feed(fed_dashboard)
    feed.today = feed.orders(200)
    feed.last_week = feed.orders(40, ago=timedelta(days=7))
    feed.send(feed.today + feed.last_week + feed.today[:10], poison=3)
    fed_dashboard.expected.add(feed.today)
    fed_dashboard.wait_for("live totals", lambda: fed_dashboard.json("/api/v1/summary")["orders"] == 200)
    yield feed


def _totals(orders: list[Order]) -> tuple[int, int, int]:
    return len(orders), sum(o.total_cents for o in orders), sum(i.quantity for o in orders for i in o.items)


def _summary_key(s: dict[str, Any]) -> tuple[int, int, int]:
    return s["orders"], s["revenue_cents"], s["quantity"]


def test_summary_per_store_is_exact(fed_dashboard: FedDashboard, feed: Feed) -> None:
    for store in ["_all", *STORES]:
        mine = [o for o in feed.today if store in ("_all", o.store_id)]
        # The job flushes a store's keys a moment after the all-stores keys: wait for each to settle.
        summary = fed_dashboard.wait_json("/api/v1/summary", lambda s, mine=mine: _summary_key(s) == _totals(mine),
                                          store=store)
        assert (summary["store"], summary["day"], summary["today"], summary["timezone"]) == \
            (store, fed_dashboard.day, fed_dashboard.day, fed_dashboard.zone)
        count, revenue, _ = _totals(mine)
        assert summary["average_order_cents"] == round(revenue / count)
        newest = max(mine, key=lambda o: o.placed_at)
        assert summary["last_order_at"] == newest.placed_at.astimezone(UTC).isoformat(timespec="milliseconds") \
            .replace("+00:00", "Z")

        quantities: Counter[str] = Counter()
        cents: Counter[str] = Counter()
        names: dict[str, str] = {}
        origins: Counter[str] = Counter()
        for order in mine:
            for item in order.items:
                quantities[item.sku] += item.quantity
                cents[item.sku] += item.quantity * item.unit_price_cents
                names[item.sku] = item.name
                if item.origin:
                    origins[item.origin] += item.quantity
        ranked = sorted(quantities, key=lambda sku: (-quantities[sku], -cents[sku], sku))[:8]
        assert summary["top_products"] == [{"sku": sku, "name": names[sku], "quantity": quantities[sku],
                                            "revenue_cents": cents[sku]} for sku in ranked]
        total_units = sum(origins.values())
        assert summary["origins"] == [
            {"origin": origin, "quantity": origins[origin], "share": round(origins[origin] / total_units, 4)}
            for origin in sorted(origins, key=lambda o: (-origins[o], o))]

        per_minute: Counter[int] = Counter(int(o.placed_at.timestamp()) // 60 * 60_000 for o in mine)
        assert len(summary["per_minute"]) == 60
        assert summary["per_minute"] == [[minute, per_minute.get(minute, 0)] for minute, _ in summary["per_minute"]]

        newest_first = sorted(mine, key=lambda o: o.placed_at, reverse=True)[:15]
        assert [r["message_id"] for r in summary["recent"]] == [str(o.message_id) for o in newest_first]
        first, shown = newest_first[0], dict(summary["recent"][0])
        placed = datetime.fromisoformat(shown.pop("placed_at"))
        assert placed == first.placed_at.replace(microsecond=first.placed_at.microsecond // 1000 * 1000)
        assert shown == {"message_id": str(first.message_id), "store_id": first.store_id, "channel": first.channel,
                         "total_cents": first.total_cents, "items": [[i.name, i.quantity] for i in first.items]}


def _hourly(orders: list[Order], day: date, zone: str) -> list[tuple[int, int, int]]:
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for order in orders:
        local = order.placed_at.astimezone(ZoneInfo(zone))
        if local.date() == day:
            bucket = hours[local.hour]
            bucket[0] += 1
            bucket[1] += order.total_cents
            bucket[2] += sum(i.quantity for i in order.items)
    return [(h, hours[h][0], hours[h][1]) for h in range(24)]


def test_revenue_by_hour_against_the_same_weekday_last_week(fed_dashboard: FedDashboard, feed: Feed) -> None:
    today = date.fromisoformat(fed_dashboard.day)
    want_today = _hourly(feed.today, today, fed_dashboard.zone)
    want_before = _hourly(feed.last_week, today - timedelta(days=7), fed_dashboard.zone)

    def matches() -> dict[str, Any] | None:
        body = fed_dashboard.json("/api/v1/history/hourly")
        got_today = [(h["hour"], h["orders"], h["revenue_cents"]) for h in body["hours"]]
        got_before = [(h["hour"], h["compare_orders"], h["compare_revenue_cents"]) for h in body["hours"]]
        return body if (got_today, got_before) == (want_today, want_before) else None

    body = fed_dashboard.wait_for("hourly history", matches)
    assert (body["store"], body["day"], body["compare_day"], body["timezone"]) == (
        "_all", fed_dashboard.day, (today - timedelta(days=7)).isoformat(), fed_dashboard.zone)
    assert body["totals"] == dict(zip(("orders", "revenue_cents", "quantity"), _totals(feed.today), strict=True))
    assert body["compare_totals"] == dict(zip(("orders", "revenue_cents", "quantity"), _totals(feed.last_week),
                                              strict=True))

    store = "store-2"
    mine = [o for o in feed.today if o.store_id == store]
    body = fed_dashboard.json("/api/v1/history/hourly", store=store, day=fed_dashboard.day)
    assert [(h["hour"], h["orders"], h["revenue_cents"]) for h in body["hours"]] == _hourly(mine, today,
                                                                                         fed_dashboard.zone)


def test_daily_range(fed_dashboard: FedDashboard, feed: Feed) -> None:
    today = date.fromisoformat(fed_dashboard.day)
    first = today - timedelta(days=8)
    body = fed_dashboard.wait_json("/api/v1/history/daily", lambda b: b["totals"]["orders"] == 240,
                                   **{"from": first.isoformat(), "to": today.isoformat()})
    zone = ZoneInfo(fed_dashboard.zone)
    by_day: dict[str, list[Order]] = defaultdict(list)
    for order in feed.today + feed.last_week:
        by_day[order.placed_at.astimezone(zone).date().isoformat()].append(order)
    want = []
    for n in range(9):
        day = (first + timedelta(days=n)).isoformat()
        count, cents, qty = _totals(by_day.get(day, []))
        want.append({"day": day, "orders": count, "revenue_cents": cents, "quantity": qty})
    assert body["days"] == want
    assert (body["from"], body["to"]) == (first.isoformat(), today.isoformat())


def _events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    event = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            yield event, json.loads(line[len("data: "):])


def test_stream_pushes_each_change_with_exact_values(fed_dashboard: FedDashboard, feed: Feed) -> None:
    store = "store-3"
    got: list[tuple[str, Any]] = []
    ready = threading.Event()
    done = threading.Event()
    before = [o for o in feed.today if o.store_id == store]

    def listen() -> None:
        with httpx.stream("GET", f"{fed_dashboard.url}/api/v1/stream", params={"store": store},
                          headers=fed_dashboard.headers, timeout=httpx.Timeout(10, read=30)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for event in _events(response):
                got.append(event)
                if event[0] == "history":
                    ready.set()  # the initial picture is complete
                if (event[0] == "summary" and event[1]["orders"] == len(before) + 3) or done.is_set():
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(30)
    names = [name for name, _ in got]
    assert names[:2] == ["hello", "summary"] and "status" in names
    hello = got[0][1]
    assert hello["store"] == store and {"store": store, "timezone": fed_dashboard.zone, "currency": "EUR"} in \
        hello["stores"]
    assert _summary_key(got[1][1]) == _totals(before)

    new = feed.orders(3, store=store, min_s=1, max_s=30)
    feed.send(new)
    thread.join(60)
    done.set()
    summaries = [data for name, data in got if name == "summary"]
    assert _summary_key(summaries[-1]) == _totals(before + new)
    assert [r["message_id"] for r in summaries[-1]["recent"][:3]] == \
        [str(o.message_id) for o in sorted(new, key=lambda o: o.placed_at, reverse=True)]
    statuses = [data for name, data in got if name == "status"]
    assert statuses and statuses[-1]["state"] == "live"
    feed.today.extend(new)


def test_ops_panel_reads_the_real_components(fed_dashboard: FedDashboard, feed: Feed, ingest_url: str,
                                             ingest_tokens: dict[str, str]) -> None:
    total_records = len(feed.today) + len(feed.last_week) + 10 + feed.poison

    def settled() -> dict[str, Any] | None:
        ops = fed_dashboard.json("/api/v1/ops")
        kafka, flink, dlq = ops["kafka"], ops["flink"], ops["dlq"]
        ok = kafka.get("lag") == 0 and kafka.get("committed") == total_records and dlq.get("count") == feed.poison
        return ops if ok and flink.get("job_state") == "RUNNING" else None

    ops = fed_dashboard.wait_for("ops panel", settled)
    assert ops["kafka"] == {"status": "ok", "lag": 0, "topic": fed_dashboard.cfg.orders_topic,
                            "group": fed_dashboard.cfg.group_id, "partitions": 3, "committed": total_records,
                            "end": total_records}
    assert (ops["flink"]["job_id"], ops["flink"]["job_name"]) == (fed_dashboard.job_id, fed_dashboard.cfg.job_name)
    assert 0 <= ops["flink"]["last_checkpoint_age_s"] < 3600
    assert ops["dlq"]["count"] == 3

    # The ingest's p99 over the requests since the dashboard's first scrape: exactly ours.
    fed_dashboard.wait_for("first scrape", lambda: fed_dashboard.json("/api/v1/ops")["ingest"]["status"] == "ok")
    token = ingest_tokens["store-01"]
    rng = random.Random(5)
    with httpx.Client(base_url=ingest_url, headers={"Authorization": f"Bearer {token}",
                                                    "Content-Type": "application/json"}) as client:
        for _ in range(20):
            order = random_order(rng, Store("store-01", "UTC"), datetime.now(UTC) - timedelta(days=3))
            assert client.post("/v1/orders", content=to_wire(order)).status_code == 202
        assert client.post("/v1/orders", content=b"{}").status_code == 422
    ingest = fed_dashboard.wait_json("/api/v1/ops", lambda ops: ops["ingest"].get("requests") == 21)["ingest"]
    assert ingest["route"] == "/v1/orders" and ingest["p99_ms"] > 0


BAD_QUERIES = [
    ("/api/v1/summary", {"store": "Store_1"}, 400, "store"),
    ("/api/v1/summary", {"store": ""}, 400, "store"),
    ("/api/v1/summary", {"store": "store-99"}, 404, "store"),
    ("/api/v1/summary", {"stor": "store-1"}, 400, "stor"),
    ("/api/v1/summary?store=store-1&store=store-2", {}, 400, "store"),
    ("/api/v1/stores", {"x": "1"}, 400, "x"),
    ("/api/v1/status", {"verbose": "1"}, 400, "verbose"),
    ("/api/v1/ops", {"refresh": "1"}, 400, "refresh"),
    ("/api/v1/history/hourly", {"day": "2025-02-30"}, 400, "day"),
    ("/api/v1/history/hourly", {"day": "today"}, 400, "day"),
    ("/api/v1/history/hourly", {"day": "1900-01-01"}, 400, "day"),
    ("/api/v1/history/hourly", {"store": "../../etc"}, 400, "store"),
    ("/api/v1/history/daily", {"to": "2025-01-01"}, 400, "from"),
    ("/api/v1/history/daily", {"from": "2025-01-02", "to": "2025-01-01"}, 400, "from"),
    ("/api/v1/history/daily", {"from": "2024-01-01", "to": "2025-01-01"}, 400, "to"),
    ("/api/v1/history/daily", {"from": "2025-1-1"}, 400, "from"),
    ("/api/v1/history/daily", {"from": "2025-01-01", "to": "2025-01-01", "store": "STORE"}, 400, "store"),
    ("/api/v1/stream", {"store": "nope nope"}, 400, "store"),
    ("/api/v1/stream", {"store": "store-77"}, 404, "store"),
    ("/api/v1/stream", {"format": "json"}, 400, "format"),
]


@pytest.mark.parametrize(("path", "params", "status", "param"), BAD_QUERIES)
def test_bad_query_parameters_are_4xx_problems(fed_dashboard: FedDashboard, path: str, params: dict[str, str],
                                               status: int, param: str) -> None:
    response = fed_dashboard.get(path, **params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["param"]) == (status, param)


def test_unknown_paths_are_404(fed_dashboard: FedDashboard) -> None:
    for path in ("/api/v1/nope", "/api/v2/summary", "/static/nope.js", "/index.php"):
        response = fed_dashboard.get(path)
        assert response.status_code == 404, path


def test_read_only_no_write_method_anywhere(fed_dashboard: FedDashboard) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/", "/api/v1/summary", "/api/v1/stream", "/healthz", "/api/v1/orders"):
            response = httpx.request(method, f"{fed_dashboard.url}{path}", headers=fed_dashboard.headers, timeout=10)
            assert (response.status_code, response.headers.get("allow")) == (405, "GET, HEAD"), (method, path)


def test_auth(fed_dashboard: FedDashboard) -> None:
    url = fed_dashboard.url
    assert httpx.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}  # probes need no token
    assert httpx.get(f"{url}/readyz", timeout=10).json() == {"status": "ready"}
    for path in ("/", "/api/v1/summary", "/api/v1/stream", "/static/app.js", "/static/vendor/uPlot.iife.min.js"):
        response = httpx.get(f"{url}{path}", timeout=10)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="coffee-rt dashboard"'
        wrong = httpx.get(f"{url}{path}", headers={"Authorization": "Bearer not-the-token"}, timeout=10)
        assert wrong.status_code == 401, path

    # A browser logs in once with ?token=: it gets an HttpOnly session cookie (not the token), off the URL.
    login = httpx.get(f"{url}/", params={"token": fed_dashboard.token, "store": "store-1"}, timeout=10)
    assert (login.status_code, login.headers["location"]) == (303, "/?store=store-1")
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and fed_dashboard.token not in cookie
    with httpx.Client(base_url=url, timeout=10) as browser:
        browser.cookies.set("coffee_dashboard_token", fed_dashboard.token)  # the raw token opens nothing
        assert browser.get("/api/v1/status").status_code == 401
        browser.cookies.clear()
        browser.cookies.set("coffee_dashboard_session", login.cookies["coffee_dashboard_session"])
        assert browser.get("/api/v1/status").status_code == 200
        page = browser.get("/")
        assert page.status_code == 200 and "<title>coffee-rt" in page.text
    bad = httpx.get(f"{url}/", params={"token": "guess"}, timeout=10)
    assert bad.status_code == 401 and "set-cookie" not in bad.headers


def test_head_is_allowed_for_static(fed_dashboard: FedDashboard) -> None:
    response = httpx.head(f"{fed_dashboard.url}/static/app.js", headers=fed_dashboard.headers, timeout=10)
    assert response.status_code == 200


def test_status_is_live_while_the_job_writes(fed_dashboard: FedDashboard, feed: Feed) -> None:
    status = fed_dashboard.json("/api/v1/status")
    assert (status["state"], status["severity"], status["stale_after_s"]) == ("live", "ok", 3600.0)
    assert status["last_update_ms"] <= status["now_ms"] <= time.time() * 1000 + 5000
