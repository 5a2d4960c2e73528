"""Kafka record -> rows or a dead letter, with the one order schema."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from coffee_orders.loadgen import Store, random_order
from coffee_orders.records import DeadLetter, live_lines, parse
from coffee_orders.schema import to_wire


def order_bytes(seed: int = 1) -> tuple[bytes, object]:
    order = random_order(random.Random(seed), Store("store-1", "UTC"), datetime(2026, 3, 7, 9, 30, tzinfo=UTC))
    return to_wire(order), order


def test_valid_order_becomes_one_order_row_and_numbered_item_rows() -> None:
    raw, order = order_bytes()
    result = parse(raw, 2, 41)
    assert not isinstance(result, DeadLetter)
    row, items = result
    assert row.message_id == str(order.message_id)  # type: ignore[attr-defined]
    assert row.placed_at_ms == int(datetime(2026, 3, 7, 9, 30, tzinfo=UTC).timestamp() * 1000)
    assert row.total_cents == order.total_cents  # type: ignore[attr-defined]
    assert row.item_count == len(order.items) == len(items)  # type: ignore[attr-defined]
    assert [i.line_no for i in items] == list(range(1, len(items) + 1))
    assert row.quantity == sum(i.quantity for i in items)
    assert (row.kafka_partition, row.kafka_offset) == (2, 41)
    lines = json.loads(row.items_json)
    assert [line[:4] for line in lines] == [[i.line_no, i.sku, i.name, i.category] for i in items]
    assert [line[4:7] for line in lines] == [[i.origin, i.quantity, i.unit_price_cents] for i in items]
    assert sum(cents for *_, cents in live_lines(row.items_json)) == row.total_cents


def test_first_of_sku_marks_each_skus_first_line_only() -> None:
    raw, _ = order_bytes()
    data = json.loads(raw)
    line = data["items"][0]
    data["items"] = [line, {**line, "sku": "OTHER-1"}, line]
    data["total_cents"] = 3 * line["quantity"] * line["unit_price_cents"]
    result = parse(json.dumps(data).encode(), 0, 0)
    assert not isinstance(result, DeadLetter)
    assert [entry[7] for entry in json.loads(result[0].items_json)] == [1, 1, 0]


def test_live_lines_read_rows_written_before_first_of_sku_existed() -> None:
    # An inbox in a savepoint taken by the previous job version holds 7-field lines.
    old = json.dumps([[1, "ESP-1", "Espresso", "drink", None, 2, 250]])
    assert live_lines(old) == [("ESP-1", "Espresso", None, 2, 500)]


def test_placed_at_long_ago_is_still_valid_in_the_job() -> None:
    order = random_order(random.Random(2), Store("store-1", "UTC"), datetime(2001, 1, 1, tzinfo=UTC))
    assert not isinstance(parse(to_wire(order), 0, 0), DeadLetter)


def test_not_json_is_a_dead_letter_with_its_bytes_and_offset() -> None:
    result = parse(b"\xff\xfe not json", 1, 7)
    assert isinstance(result, DeadLetter)
    assert (result.raw, result.kafka_partition, result.kafka_offset) == (b"\xff\xfe not json", 1, 7)
    assert "Invalid JSON" in result.reason


def test_schema_violation_names_the_field() -> None:
    raw, _ = order_bytes()
    data = json.loads(raw)
    data["items"][0]["quantity"] = 0
    result = parse(json.dumps(data).encode(), 0, 3)
    assert isinstance(result, DeadLetter)
    assert result.reason.startswith("items.0.quantity: Input should be greater than or equal to 1")


def test_nul_in_a_name_is_a_dead_letter_not_a_failing_postgres_write() -> None:
    raw, _ = order_bytes()
    data = json.loads(raw)
    data["items"][0]["name"] = "Flat\u0000white"
    result = parse(json.dumps(data).encode(), 0, 4)
    assert isinstance(result, DeadLetter)
    assert result.reason.startswith("items.0.name: String should match pattern")


def test_total_mismatch_is_a_dead_letter() -> None:
    raw, _ = order_bytes()
    data = json.loads(raw)
    data["total_cents"] += 1
    result = parse(json.dumps(data).encode(), 0, 3)
    assert isinstance(result, DeadLetter)
    assert "total_cents" in result.reason


def test_tombstone_is_a_dead_letter() -> None:
    result = parse(None, 0, 9)
    assert isinstance(result, DeadLetter)
    assert result.reason == "record has no value (a tombstone)"
