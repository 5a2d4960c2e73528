"""RFC 9457 problem documents: shape, field naming and the rejection reasons the metric counts."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from coffee_ingest import rejections
from coffee_orders.schema import parse_order


def validation_error(text: str) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_order(text)
    return caught.value


@pytest.mark.parametrize(("loc", "field", "pointer"), [
    ((), "body", "#"),
    (("total_cents",), "total_cents", "#/total_cents"),
    (("items", 3, "quantity"), "items[3].quantity", "#/items/3/quantity"),
    (("orders", 0, "items", 1, "sku"), "orders[0].items[1].sku", "#/orders/0/items/1/sku"),
    (("a/b~c",), "a/b~c", "#/a~1b~0c"),
])
def test_field_names_and_pointers(loc: tuple[int | str, ...], field: str, pointer: str) -> None:
    assert rejections.field_name(loc) == field
    assert rejections.json_pointer(loc) == pointer


def test_validation_problem_document() -> None:
    problem = rejections.validation_problem(validation_error('{"store_id": 5, "extra": 1}'))
    doc = problem.document("/v1/orders")
    assert doc["type"] == "urn:coffee-rt:problem:invalid-order"
    assert (doc["title"], doc["status"], doc["instance"]) == ("Invalid order", 422, "/v1/orders")
    assert doc["detail"] == "message_id: Field required (and 7 more)"
    assert doc["reason"] == "missing_field"
    assert [(e["field"], e["type"]) for e in doc["errors"]] == [
        ("message_id", "missing"), ("store_id", "string_type"), ("placed_at", "missing"), ("channel", "missing"),
        ("currency", "missing"), ("items", "missing"), ("total_cents", "missing"), ("extra", "extra_forbidden"),
    ]
    assert doc["errors"][1] == {"field": "store_id", "pointer": "#/store_id",
                                "message": "Input should be a valid string", "type": "string_type"}


def test_batch_locations_are_prefixed() -> None:
    problem = rejections.validation_problem(validation_error("[]"), at=("orders", 4))
    assert [(e.field, e.pointer) for e in problem.errors] == [("orders[4]", "#/orders/4")]


def test_json_syntax_error_is_a_400() -> None:
    problem = rejections.validation_problem(validation_error('{"a": '))
    assert (problem.status, problem.slug, problem.reason) == (400, "malformed-json", "malformed_json")
    assert problem.errors[0].field == "body"


@pytest.mark.parametrize(("text", "reason"), [
    ('{"a": 1}', "missing_field"),
    ("[]", "wrong_type"),
])
def test_reasons(text: str, reason: str) -> None:
    assert rejections.validation_problem(validation_error(text)).reason == reason
    assert reason in rejections.REASONS


def test_response_media_type_and_headers() -> None:
    response = rejections.kafka_unavailable(2, "no acknowledgement from Kafka within 2 s").response("/v1/orders")
    assert response.status_code == 503
    assert response.media_type == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    body = json.loads(bytes(response.body))
    assert body == {
        "type": "urn:coffee-rt:problem:kafka-unavailable", "title": "Order log unavailable", "status": 503,
        "detail": "the order was not confirmed as stored (no acknowledgement from Kafka within 2 s); "
                  "retry with the same message_id",
        "instance": "/v1/orders", "reason": "kafka_unavailable",
    }


def test_unauthenticated_carries_www_authenticate() -> None:
    problem = rejections.unauthenticated("the bearer token is not valid", "invalid_token")
    assert problem.headers == {"WWW-Authenticate": 'Bearer realm="coffee-rt", error="invalid_token"'}
    assert problem.status == 401


def test_every_reason_used_is_declared() -> None:
    made = [rejections.body_too_large(1), rejections.unsupported_media_type(None), rejections.forbidden_store("a", "b"),
            rejections.overloaded(1), rejections.malformed_json("x"), rejections.http_problem(404, "Not Found"),
            rejections.http_problem(405, "Method Not Allowed"), rejections.internal_error(),
            rejections.batch_problem(413, "batch-too-large", "too many", "batch_too_large")]
    assert {p.reason for p in made} <= rejections.REASONS
