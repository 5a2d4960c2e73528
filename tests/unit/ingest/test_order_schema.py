"""The one order schema: what it accepts, and every way an order can be wrong, by field."""

from __future__ import annotations

import json
from copy import deepcopy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from coffee_orders.schema import (
    MAX_ITEMS,
    Order,
    Window,
    from_wire,
    json_schema,
    parse_order,
    placed_at_problem,
    to_wire,
)

NOW = datetime(2025, 3, 8, 9, 30, tzinfo=UTC)
WINDOW = Window(now=NOW, horizon=timedelta(days=7))


def order_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "message_id": "0b5e4c2a-8f1d-4d8e-9a4b-3c2d1e0f9a8b",
        "store_id": "store-01",
        "placed_at": "2025-03-08T10:15:02.120+01:00",
        "channel": "counter",
        "currency": "EUR",
        "items": [
            {"sku": "DRK-FILTER-GH", "name": "Filter Guatemala Honey", "category": "drink",
             "origin": "Guatemala Honey", "quantity": 2, "unit_price_cents": 420},
            {"sku": "FD-CROISSANT", "name": "Butter croissant", "category": "food", "quantity": 1,
             "unit_price_cents": 290},
        ],
        "total_cents": 1130,
    }
    doc.update(overrides)
    return doc


def errors_of(doc: Any, window: Window | None = WINDOW) -> list[tuple[str, str]]:
    """(dotted location, error type) of every error, or [] when valid."""
    raw = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
    try:
        parse_order(raw, window)
    except ValidationError as exc:
        return [(".".join(str(p) for p in e["loc"]), e["type"]) for e in exc.errors()]
    return []


def test_valid_order_parses_with_exact_values() -> None:
    order = parse_order(json.dumps(order_doc()), WINDOW)
    assert order.message_id == UUID("0b5e4c2a-8f1d-4d8e-9a4b-3c2d1e0f9a8b")
    assert order.placed_at == datetime(2025, 3, 8, 9, 15, 2, 120000, tzinfo=UTC)
    assert order.placed_at.utcoffset() == timedelta(hours=1)
    assert [i.line_total_cents for i in order.items] == [840, 290]
    assert order.items[1].origin is None
    assert order.total_cents == 1130


def test_wire_format_is_compact_json_keeping_the_offset() -> None:
    order = parse_order(json.dumps(order_doc()), WINDOW)
    wire = to_wire(order)
    assert json.loads(wire) == {**order_doc(), "placed_at": "2025-03-08T10:15:02.120000+01:00",
                                "items": [order_doc()["items"][0], {**order_doc()["items"][1], "origin": None}]}
    assert wire.startswith(b'{"message_id":"0b5e4c2a-8f1d-4d8e-9a4b-3c2d1e0f9a8b","store_id":"store-01",')
    assert from_wire(wire) == order


def test_message_id_is_canonicalised() -> None:
    order = parse_order(json.dumps(order_doc(message_id="0B5E4C2A8F1D4D8E9A4B3C2D1E0F9A8B")), WINDOW)
    assert json.loads(to_wire(order))["message_id"] == "0b5e4c2a-8f1d-4d8e-9a4b-3c2d1e0f9a8b"


def without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    doc = deepcopy(doc)
    del doc[key]
    return doc


def item_with(**changes: Any) -> dict[str, Any]:
    doc = order_doc()
    doc["items"][0].update(changes)
    return doc


@pytest.mark.parametrize("field", ["message_id", "store_id", "placed_at", "channel", "currency", "items",
                                   "total_cents"])
def test_missing_field_is_named(field: str) -> None:
    assert errors_of(without(order_doc(), field)) == [(field, "missing")]


@pytest.mark.parametrize("field", ["sku", "name", "category", "quantity", "unit_price_cents"])
def test_missing_item_field_is_named(field: str) -> None:
    doc = order_doc()
    del doc["items"][0][field]
    found = errors_of(doc)
    assert found[0] == (f"items.0.{field}", "missing")


def test_origin_is_optional() -> None:
    doc = order_doc()
    del doc["items"][0]["origin"]
    assert errors_of(doc) == []


def test_unknown_fields_are_rejected_at_both_levels() -> None:
    assert errors_of(order_doc(coupon="FREE")) == [("coupon", "extra_forbidden")]
    assert errors_of(item_with(discount=5)) == [("items.0.discount", "extra_forbidden")]


@pytest.mark.parametrize(("field", "value", "expected_type"), [
    ("message_id", 12, "uuid_type"),
    ("message_id", "not-a-uuid", "uuid_parsing"),
    ("store_id", 1, "string_type"),
    ("store_id", "Store 01", "string_pattern_mismatch"),
    ("placed_at", 1741425302, "datetime_type"),
    ("placed_at", "2025-03-08 10:15:02+01:00", "rfc3339"),
    ("placed_at", "2025-03-08T10:15:02", "rfc3339"),
    ("placed_at", "2025-03-08", "rfc3339"),
    ("placed_at", "2025-02-30T10:15:02Z", "datetime_from_date_parsing"),
    ("channel", "drive-through", "literal_error"),
    ("currency", "eur", "string_pattern_mismatch"),
    ("currency", "ABC", "currency"),
    ("items", {}, "list_type"),
    ("items", [], "too_short"),
    ("total_cents", "1130", "int_type"),
    ("total_cents", 1130.0, "int_type"),
    ("total_cents", True, "int_type"),
    ("total_cents", -1, "greater_than_equal"),
])
def test_wrong_values_are_named(field: str, value: Any, expected_type: str) -> None:
    assert errors_of(order_doc(**{field: value})) == [(field, expected_type)]


@pytest.mark.parametrize(("field", "value", "expected_type"), [
    ("quantity", 0, "greater_than_equal"),
    ("quantity", -3, "greater_than_equal"),
    ("quantity", 1.5, "int_type"),
    ("quantity", "2", "int_type"),
    ("quantity", 10_001, "less_than_equal"),
    ("unit_price_cents", -1, "greater_than_equal"),
    ("category", "tea", "literal_error"),
    ("origin", "", "string_too_short"),
    ("sku", "", "string_pattern_mismatch"),
    ("name", "x" * 201, "string_too_long"),
    # Postgres refuses NUL in text (the job's history writes would fail forever); other control
    # characters have no business in a product name either.
    ("name", "Flat\u0000white", "string_pattern_mismatch"),
    ("origin", "Guatemala\nHoney", "string_pattern_mismatch"),
    ("origin", "Guatemala\tHoney", "string_pattern_mismatch"),
    ("name", "Flat white\u007f", "string_pattern_mismatch"),
])
def test_wrong_item_values_are_named(field: str, value: Any, expected_type: str) -> None:
    assert errors_of(item_with(**{field: value})) == [(f"items.0.{field}", expected_type)]


def test_text_may_be_any_printable_unicode() -> None:
    assert errors_of(item_with(name="Café crème – Äthiopien ☕ 咖啡", origin="Ethiopia Yirgacheffe")) == []


def test_total_must_equal_the_sum_of_the_lines() -> None:
    assert errors_of(order_doc(total_cents=1131)) == [("total_cents", "total_mismatch")]
    with pytest.raises(ValidationError, match="total_cents is 1131 but the lines add up to 1130"):
        parse_order(json.dumps(order_doc(total_cents=1131)))


def test_total_is_not_checked_when_an_item_is_invalid() -> None:
    assert errors_of(item_with(quantity=0)) == [("items.0.quantity", "greater_than_equal")]


def test_more_than_200_items_is_rejected() -> None:
    line = {"sku": "FD-CROISSANT", "name": "Butter croissant", "category": "food", "quantity": 1,
            "unit_price_cents": 290}
    assert errors_of(order_doc(items=[line] * MAX_ITEMS, total_cents=290 * MAX_ITEMS)) == []
    assert errors_of(order_doc(items=[line] * (MAX_ITEMS + 1), total_cents=290 * 201)) == [("items", "too_long")]


def test_malformed_json() -> None:
    assert errors_of(b'{"message_id": ') == [("", "json_invalid")]
    assert errors_of(b"[]") == [("", "model_type")]


@pytest.mark.parametrize(("placed_at", "ok"), [
    (NOW + timedelta(minutes=5), True),
    (NOW + timedelta(minutes=5, microseconds=1), False),
    (NOW - timedelta(days=7), True),
    (NOW - timedelta(days=7, microseconds=1), False),
    (NOW, True),
])
def test_placed_at_window_boundaries(placed_at: datetime, ok: bool) -> None:
    assert (placed_at_problem(placed_at, WINDOW) is None) == ok


def test_placed_at_window_messages() -> None:
    future = placed_at_problem(NOW + timedelta(minutes=6), WINDOW)
    old = placed_at_problem(NOW - timedelta(days=8), Window(NOW, timedelta(hours=36)))
    assert future == "placed_at is more than 5 minutes in the future"
    assert old == "placed_at is older than the accepted horizon of 36 hours"


def test_window_applies_only_when_given() -> None:
    late = order_doc(placed_at=(NOW + timedelta(hours=1)).astimezone(timezone(timedelta(hours=1))).isoformat())
    assert errors_of(late) == [("placed_at", "placed_at_window")]
    assert errors_of(late, window=None) == []
    old = order_doc(placed_at="2025-02-01T08:00:00Z")
    assert errors_of(old) == [("placed_at", "placed_at_window")]


def test_order_is_immutable() -> None:
    order = parse_order(json.dumps(order_doc()), WINDOW)
    with pytest.raises(ValidationError):
        order.total_cents = 0  # type: ignore[misc]


def test_json_schema_names_every_field_and_is_closed() -> None:
    schema = json_schema()
    assert schema["required"] == ["message_id", "store_id", "placed_at", "channel", "currency", "items",
                                  "total_cents"]
    assert schema["additionalProperties"] is False
    item = schema["$defs"]["OrderItem"]
    assert item["additionalProperties"] is False
    assert set(item["properties"]) == {"sku", "name", "category", "origin", "quantity", "unit_price_cents"}
    assert schema["properties"]["items"]["maxItems"] == 200
    assert schema["properties"]["channel"]["enum"] == ["counter", "app", "market", "wholesale"]


def test_python_construction_is_strict_too() -> None:
    with pytest.raises(ValidationError):
        Order.model_validate({**order_doc(), "total_cents": "1130"})
