"""Bad input gets a 4xx problem document naming the field, and nothing reaches Kafka."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ingest_helpers import Offsets, auth, fresh_order, problem

from coffee_orders.schema import to_wire
from coffee_rt.local.stack import LocalStack


def order_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = fresh_order("store-01").model_dump(mode="json")
    doc.update(changes)
    return doc


def item_change(**changes: Any) -> dict[str, Any]:
    doc = order_doc()
    doc["items"][0].update(changes)
    return doc


def minutes_from_now(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


Body = Callable[[], bytes]


def js(make: Callable[[], dict[str, Any]]) -> Body:
    return lambda: json.dumps(make()).encode()


def many_items() -> dict[str, Any]:
    line = {"sku": "FD-CROISSANT", "name": "Butter croissant", "category": "food", "origin": None, "quantity": 1,
            "unit_price_cents": 290}
    return order_doc(items=[line] * 201, total_cents=290 * 201)


def without(field: str) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        doc = order_doc()
        del doc[field]
        return doc
    return make


# (id, body, content type, status, reason, field named in errors[0])
CASES: list[tuple[str, Body, str, int, str, str]] = [
    ("malformed-json", lambda: b'{"message_id": "x", ', "application/json", 400, "malformed_json", "body"),
    ("not-utf8", lambda: b'{"store_id": "\xff"}', "application/json", 400, "malformed_json", "body"),
    ("json-array", lambda: b"[]", "application/json", 422, "wrong_type", "body"),
    ("empty-body", lambda: b"", "application/json", 400, "malformed_json", "body"),
    ("wrong-type-total", js(lambda: order_doc(total_cents="1130")), "application/json", 422, "wrong_type",
     "total_cents"),
    ("wrong-type-quantity-float", js(lambda: item_change(quantity=1.0)), "application/json", 422, "wrong_type",
     "items[0].quantity"),
    ("wrong-type-placed-at-number", js(lambda: order_doc(placed_at=1741425302)), "application/json", 422,
     "wrong_type", "placed_at"),
    ("unknown-field", js(lambda: order_doc(coupon="FREE")), "application/json", 422, "unknown_field", "coupon"),
    ("unknown-item-field", js(lambda: item_change(discount=1)), "application/json", 422, "unknown_field",
     "items[0].discount"),
    ("missing-message-id", js(without("message_id")), "application/json", 422, "missing_field", "message_id"),
    ("missing-items", js(without("items")), "application/json", 422, "missing_field", "items"),
    ("quantity-zero", js(lambda: item_change(quantity=0)), "application/json", 422, "out_of_range",
     "items[0].quantity"),
    ("negative-price", js(lambda: item_change(unit_price_cents=-5)), "application/json", 422, "out_of_range",
     "items[0].unit_price_cents"),
    ("total-mismatch", js(lambda: order_doc(total_cents=1)), "application/json", 422, "total_mismatch",
     "total_cents"),
    ("placed-at-6-min-ahead", js(lambda: order_doc(placed_at=minutes_from_now(6))), "application/json", 422,
     "placed_at_window", "placed_at"),
    ("placed-at-8-days-old", js(lambda: order_doc(placed_at=minutes_from_now(-8 * 24 * 60))), "application/json",
     422, "placed_at_window", "placed_at"),
    ("placed-at-no-offset", js(lambda: order_doc(placed_at="2025-03-08T10:00:00")), "application/json", 422,
     "invalid_timestamp", "placed_at"),
    ("currency-not-iso", js(lambda: order_doc(currency="XYZ")), "application/json", 422, "invalid_value",
     "currency"),
    ("201-items", js(many_items), "application/json", 422, "too_many_items", "items"),
    ("body-over-256-kib", lambda: to_wire(fresh_order()) + b" " * (256 * 1024), "application/json", 413,
     "body_too_large", "body"),
    ("text-plain", lambda: to_wire(fresh_order()), "text/plain", 415, "unsupported_media_type", ""),
    ("form", lambda: b"a=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type", ""),
    ("latin1-json", lambda: to_wire(fresh_order()), "application/json; charset=latin-1", 415,
     "unsupported_media_type", ""),
    ("no-content-type", lambda: to_wire(fresh_order()), "", 415, "unsupported_media_type", ""),
]


@pytest.mark.parametrize(("body", "content_type", "status", "reason", "field"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_order_is_refused_and_nothing_is_written(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets,
    body: Body, content_type: str, status: int, reason: str, field: str,
) -> None:
    before = offsets()
    headers = auth(ingest_tokens["store-01"], content_type)
    if not content_type:
        del headers["Content-Type"]
    response = client.post("/v1/orders", content=body(), headers=headers)
    assert response.status_code == status, response.text
    doc = problem(response)
    assert doc["reason"] == reason
    assert doc["instance"] == "/v1/orders"
    if field:
        assert doc["errors"][0]["field"] == field
        assert doc["detail"].startswith(f"{field}: ") or status != 422
    assert offsets() == before


def test_placed_at_just_inside_the_window_is_accepted(client: httpx.Client, ingest_tokens: dict[str, str]) -> None:
    for minutes in (4, -6 * 24 * 60):
        response = client.post("/v1/orders", json=order_doc(placed_at=minutes_from_now(minutes)),
                               headers=auth(ingest_tokens["store-01"]))
        assert response.status_code == 202, response.text


def test_chunked_body_over_the_limit_is_refused(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    def chunks() -> Iterator[bytes]:
        yield to_wire(fresh_order())
        for _ in range(300):
            yield b" " * 1024

    before = offsets()
    response = client.post("/v1/orders", content=chunks(), headers=auth(ingest_tokens["store-01"]))
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert problem(response)["reason"] == "body_too_large"
    assert offsets() == before


BATCH_CASES: list[tuple[str, Body, int, str, str]] = [
    ("malformed", lambda: b'{"orders": [', 400, "malformed_json", "body"),
    ("not-an-object", lambda: b"[1, 2]", 422, "wrong_type", "body"),
    ("unknown-envelope-field", lambda: b'{"orders": [], "store": 1}', 422, "unknown_field", "store"),
    ("missing-orders", lambda: b"{}", 422, "missing_field", "orders"),
    ("orders-not-array", lambda: b'{"orders": {}}', 422, "wrong_type", "orders"),
    ("empty", lambda: b'{"orders": []}', 422, "invalid_value", "orders"),
    ("501-orders", lambda: json.dumps({"orders": [order_doc()] * 501}).encode(), 413, "batch_too_large", "orders"),
]


@pytest.mark.parametrize(("body", "status", "reason", "field"), [c[1:] for c in BATCH_CASES],
                         ids=[c[0] for c in BATCH_CASES])
def test_bad_batch_is_refused_whole(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets,
    body: Body, status: int, reason: str, field: str,
) -> None:
    before = offsets()
    response = client.post("/v1/orders:batch", content=body(), headers=auth(ingest_tokens["store-01"]))
    assert response.status_code == status, response.text
    doc = problem(response)
    assert (doc["reason"], doc["errors"][0]["field"]) == (reason, field)
    assert offsets() == before


def test_batch_of_only_bad_orders_writes_nothing(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    before = offsets()
    orders = [item_change(quantity=0), order_doc(total_cents=-1), order_doc(placed_at=minutes_from_now(10))]
    response = client.post("/v1/orders:batch", json={"orders": orders}, headers=auth(ingest_tokens["store-01"]))
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"], body["unavailable"]) == (0, 3, 0)
    assert [(r["status"], r["problem"]["errors"][0]["field"]) for r in body["results"]] == [
        (422, "orders[0].items[0].quantity"), (422, "orders[1].total_cents"), (422, "orders[2].placed_at")]
    assert offsets() == before


def test_unknown_route_and_method(client: httpx.Client, ingest_tokens: dict[str, str]) -> None:
    missing = client.get("/v1/order")
    assert missing.status_code == 404
    assert problem(missing)["reason"] == "not_found"
    for path in ("/v1/orders", "/v1/orders:batch"):
        wrong_method = client.get(path, headers=auth(ingest_tokens["store-01"]))
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "POST"
        assert wrong_method.headers["content-type"] == "application/problem+json"
        assert problem(wrong_method)["reason"] == "method_not_allowed"
        assert problem(wrong_method)["instance"] == path


def test_a_client_gone_mid_body_writes_nothing_and_the_service_carries_on(
        client: httpx.Client, ingest_url: str, ingest_tokens: dict[str, str], offsets: Offsets) -> None:
    before = offsets()
    body = to_wire(fresh_order())
    split = urlsplit(ingest_url)
    with socket.create_connection((split.hostname, split.port), timeout=5) as sock:
        sock.sendall(f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ingest_tokens['store-01']}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                     + body[: len(body) // 2])
    accepted = client.post("/v1/orders", content=body, headers={**auth(ingest_tokens["store-01"]),
                                                                "content-type": "application/json"})
    assert accepted.status_code == 202
    after = offsets()
    assert sum(after) - sum(before) == 1  # only the complete request's order


def test_rejections_are_counted_by_reason(client: httpx.Client, internal: httpx.Client,
                                          ingest_tokens: dict[str, str]) -> None:
    def count() -> float:
        for line in internal.get("/metrics").text.splitlines():
            if line.startswith('coffee_ingest_rejections_total{reason="total_mismatch"}'):
                return float(line.split()[-1])
        raise AssertionError("metric missing")

    before = count()
    client.post("/v1/orders", json=order_doc(total_cents=1), headers=auth(ingest_tokens["store-01"]))
    assert count() == before + 1


@pytest.fixture(scope="module")
def ingest_log(local_stack: LocalStack, ingest_url: str) -> Path:
    return local_stack["ingest"].log_files()[0]


def test_auth_failures(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets, ingest_log: Path
) -> None:
    body = to_wire(fresh_order("store-01"))
    forged = "x" + ingest_tokens["store-01"][1:]
    before = offsets()
    cases = [
        ({"Content-Type": "application/json"}, 401, "missing Authorization header"),
        ({"Content-Type": "application/json", "Authorization": f"Basic {ingest_tokens['store-01']}"}, 401,
         "Authorization must be 'Bearer <store token>'"),
        (auth(forged), 401, "the bearer token is not valid"),
        (auth(ingest_tokens["store-02"]), 403, "this token may post orders for store store-02 only, not store-01"),
    ]
    for headers, status, detail in cases:
        response = client.post("/v1/orders", content=body, headers=headers)
        assert response.status_code == status, response.text
        doc = problem(response)
        assert doc["detail"].startswith(detail)
        if status == 401:
            assert response.headers["www-authenticate"].startswith('Bearer realm="coffee-rt"')
        else:
            assert doc["errors"][0]["field"] == "store_id"
    batch = client.post("/v1/orders:batch", json={"orders": [json.loads(body)]}, headers=auth(forged))
    assert batch.status_code == 401
    assert offsets() == before
    text = ingest_log.read_text()
    assert all(token not in text for token in [*ingest_tokens.values(), forged])


@pytest.mark.parametrize("content_type", ["application/json; charset=UTF-8", "Application/JSON",
                                          'application/json;charset="utf-8"', "application/json; v=1"])
def test_json_content_type_variants_are_accepted(
    client: httpx.Client, ingest_tokens: dict[str, str], content_type: str
) -> None:
    response = client.post("/v1/orders", content=to_wire(fresh_order()),
                           headers=auth(ingest_tokens["store-01"], content_type))
    assert response.status_code == 202, response.text
