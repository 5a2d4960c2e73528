"""The job's Java ``parse_order`` against the one order schema (pydantic), record by record.

The job validates in the JVM (jobs/functions) so an order never enters Python on its way to
Postgres; these tests keep that validator equal to ``coffee_orders.schema``: the same records
accepted with the same rows, the same records rejected naming the same fields in the same order.
The corpus is hand-picked edge cases plus a few thousand seeded mutations of generated orders.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from coffee_orders.loadgen import Store, random_order
from coffee_orders.records import DeadLetter, parse
from coffee_orders.schema import from_wire, to_wire
from coffee_rt.local.components.flink import flink_dist
from coffee_rt.local.installers import job_functions_jar, maven_jars, require_java
from coffee_rt.paths import cache_dir


@pytest.fixture(scope="module")
def java_parse() -> Iterator[Any]:
    require_java(17)
    lib = flink_dist() / "lib"
    jar = job_functions_jar(cache_dir(), [lib, maven_jars("flink", cache_dir())])

    def run(records: list[bytes | None]) -> list[dict[str, Any]]:
        stdin = "".join("-\n" if r is None else base64.b64encode(r).decode() + "\n" for r in records)
        out = subprocess.run(["java", "-cp", f"{jar}:{lib}/*", "dev.coffeert.job.ParseOrderCli"],
                             input=stdin, capture_output=True, text=True, check=True, timeout=120)
        verdicts = [json.loads(line) for line in out.stdout.split("\n") if line]  # not splitlines: U+0085
        assert len(verdicts) == len(records)
        return verdicts

    yield run


def python_verdict(raw: bytes | None) -> dict[str, Any]:
    """What the schema says: the row fields, or the locations of the first five errors."""
    result = parse(raw, 0, 0)
    if isinstance(result, DeadLetter):
        if raw is None:
            return {"locs": ["tombstone"]}
        try:
            from_wire(raw)
        except ValidationError as exc:
            return {"locs": [".".join(str(p) for p in e["loc"]) or "record" for e in exc.errors()[:5]]}
        raise AssertionError("parse rejected what the schema accepts")
    row = result[0]
    return {"message_id": row.message_id, "store_id": row.store_id, "placed_at_ms": row.placed_at_ms,
            "channel": row.channel, "currency": row.currency, "total_cents": row.total_cents,
            "item_count": row.item_count, "quantity": row.quantity, "lines": json.loads(row.items_json)}


def java_view(verdict: dict[str, Any]) -> dict[str, Any]:
    if "reason" in verdict:
        if verdict["reason"] == "record has no value (a tombstone)":
            return {"locs": ["tombstone"]}
        if verdict["reason"].startswith("record: Invalid JSON: "):
            return {"locs": ["record"]}
        return {"locs": [part.split(": ", 1)[0] for part in verdict["reason"].split("; ")]}
    view = {k: v for k, v in verdict.items() if k != "items_json"}
    view["lines"] = json.loads(verdict["items_json"])
    return view


def base_order(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    placed = datetime(2026, 3, 7, 9, 30, tzinfo=UTC) + timedelta(milliseconds=rng.randrange(10**9))
    tz = timedelta(minutes=rng.choice([0, 60, -300, 330, 23 * 60 + 59, -(23 * 60 + 59)]))
    order = random_order(rng, Store(f"store-{seed % 7}", "UTC"), placed.astimezone(timezone(tz)))
    return json.loads(to_wire(order))


EDGE_PLACED_AT = [
    "2024-12-31T23:59:60Z", "2025-03-01T24:00:00Z", "2023-02-29T08:15:02Z", "2024-02-29T08:15:02Z",
    "2025-03-01T08:15:02+24:00", "2025-03-01T08:15:02+23:59", "2025-03-01T08:15:02-00:00",
    "2025-03-01t08:15:02z", "0000-03-01T08:15:02Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59",
    "2025-03-01T08:60:02Z", "2025-03-01T08:15:02+12:60", "2025-03-01T08:15:02.1234567891Z",
    "2025-03-01T08:15:02,123Z", "2025-03-01T08:15:02.123456789+01:00", "2025-03-01T08:15:02.1+01:00",
    "2025-03-01 08:15:02Z", "2025-03-01T08:15Z", "2025-03-01T08:15:02", "1969-12-31T23:59:59.999Z",
    "2025-13-01T08:15:02Z", "2025-04-31T08:15:02Z", "2025-03-01T08:15:02.123456789+01:00\n", "",
    "２０２５-03-01T08:15:02Z",
]
EDGE_IDS = [
    "0b1c8f4e3d2a4c599a7e2f1d5e6a7b8c", "0B1C8F4E-3D2A-4C59-9A7E-2F1D5E6A7B8C",
    "{0b1c8f4e-3d2a-4c59-9a7e-2f1d5e6a7b8c}", "urn:uuid:0b1c8f4e-3d2a-4c59-9a7e-2f1d5e6a7b8c",
    "0b1c8f4e3d2a-4c59-9a7e-2f1d5e6a7b8c", " 0b1c8f4e-3d2a-4c59-9a7e-2f1d5e6a7b8c", "",
    "0b1c8f4e-3d2a-4c59-9a7e-2f1d5e6a7b8g", "{0b1c8f4e3d2a4c599a7e2f1d5e6a7b8c}",
]
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 10_000, 10_001, 100_000_000, 100_000_001, 2**63, -(2**63) - 1, 10**30,
    1.0, 0.5, -0.0, 1e3, "", "x", "1", "store-1", "counter", "EUR", "XXX", "eur", "drink", [], [1], {},
    {"a": 1}, "a\u0000b", "a\u0085b", "\u2603" * 200, "\U0001f600" * 200, "\U0001f600" * 201, "ab\n",
    "-" * 64, "a" * 63, "a" * 64, "A._-" + "b" * 60, "A" * 65,
]
FIELDS = ["message_id", "store_id", "placed_at", "channel", "currency", "items", "total_cents"]
ITEM_FIELDS = ["sku", "name", "category", "origin", "quantity", "unit_price_cents"]


def edge_records() -> list[bytes | None]:
    base = base_order(1)

    def with_(**changes: Any) -> bytes:
        return json.dumps({**base, **changes}).encode()

    item = base["items"][0]
    text = json.dumps(base)
    doc = text.encode()
    records: list[bytes | None] = [
        None, b"", b" ", b"null", b"[1]", b"1 2", b"\xff\xfe not json", "\ufeff".encode() + doc,
        doc + b" x", doc + b" \n", text.encode("utf-16"), b"{}",
        ('{"store_id":"BAD",' + text[1:]).encode(), (text[:-1] + ',"store_id":"BAD"}').encode(),
        (text[:-1] + ',"x":NaN}').encode(), (text[:-1] + ',"x":1}').encode(), ('{"zz":1,' + text[1:]).encode(),
        text.replace('"name": "', '"name": "\\ud800').encode(),
        text.replace('"name": "', '"name": "\\ud83d\\ude00').encode(),
        text.replace('"quantity": ', '"quantity": 1e0, "q": ').encode(),
        text.replace('"total_cents": ', '"total_cents": -0, "t": ').encode(),
    ]
    records += [with_(placed_at=p) for p in EDGE_PLACED_AT]
    records += [with_(message_id=m) for m in EDGE_IDS]
    line_cents = item["quantity"] * item["unit_price_cents"]
    records += [with_(items=[]), with_(items=[item] * 200, total_cents=200 * line_cents),
                with_(items=[item] * 201, total_cents=201 * line_cents),
                with_(items={"a": 1}), with_(items=[1]), with_(items=[{**item, "zz": 1, "quantity": 0}]),
                with_(total_cents=-5, items=[{**item, "quantity": 0}]),
                with_(items=[{k: v for k, v in item.items() if k != "origin"}]),
                with_(items=[{k: v for k, v in item.items() if k != "name"}])]
    records.append(json.dumps({k: v for k, v in base.items() if k not in ("store_id", "items")}).encode())
    return records


def mutations(count: int) -> list[bytes | None]:
    rng = random.Random(20261125)
    records: list[bytes | None] = []
    for n in range(count):
        data = base_order(n)
        for _ in range(rng.choice([0, 1, 1, 2])):
            target: dict[str, Any] = data
            fields = FIELDS
            items = data.get("items")
            if rng.random() < 0.5 and isinstance(items, list) and items and isinstance(items[0], dict):
                target = items[0] if len(items) == 1 else rng.choice([i for i in items if isinstance(i, dict)])
                fields = ITEM_FIELDS
            roll = rng.random()
            if roll < 0.1:
                target.pop(rng.choice(fields), None)
            elif roll < 0.15:
                target[rng.choice(["extra", "Store_id", ""])] = rng.choice(ODD_VALUES)
            else:
                target[rng.choice(fields)] = rng.choice(ODD_VALUES)
        raw = json.dumps(data, ensure_ascii=rng.random() < 0.5).encode()
        if rng.random() < 0.05:
            raw = raw[: rng.randrange(len(raw))]
        records.append(raw)
    return records


def compare(java_parse: Any, records: list[bytes | None]) -> None:
    verdicts = java_parse(records)
    pairs = [(raw, python_verdict(raw), java_view(v)) for raw, v in zip(records, verdicts, strict=True)]
    mismatches = [(raw, want, got) for raw, want, got in pairs if want != got]
    assert mismatches[:3] == [], f"{len(mismatches)} of {len(records)} records differ"


def test_edge_cases_get_the_same_verdict(java_parse: Any) -> None:
    compare(java_parse, edge_records())


def test_generated_orders_and_their_mutations_get_the_same_verdict(java_parse: Any) -> None:
    records = mutations(3000)
    valid = sum(1 for r in records if not isinstance(parse(r, 0, 0), DeadLetter))
    assert 500 < valid < 2500  # both verdicts well represented
    compare(java_parse, records)


def test_placed_at_ms_is_exact_where_float_seconds_round_down(java_parse: Any) -> None:
    # 1,741,000,000.001 s is 1741000000.0009999 as a float: int(ts * 1000) would lose the 1 ms.
    data = base_order(3)
    data["placed_at"] = "2025-03-03T11:06:40.001Z"
    (verdict,) = java_parse([json.dumps(data).encode()])
    assert verdict["placed_at_ms"] == 1_741_000_000_001 == python_verdict(json.dumps(data).encode())["placed_at_ms"]


def test_reasons_read_like_the_schemas(java_parse: Any) -> None:
    data = base_order(4)
    data["items"][0]["quantity"] = 0
    del data["store_id"]
    (verdict,) = java_parse([json.dumps(data).encode()])
    assert verdict["reason"] == ("store_id: Field required; "
                                 "items.0.quantity: Input should be greater than or equal to 1")
    (not_json,) = java_parse([b"not json"])
    assert not_json["reason"].startswith("record: Invalid JSON: ")


def test_the_jar_is_built_once_per_source(tmp_path: Path) -> None:
    classpath = [flink_dist() / "lib", maven_jars("flink", cache_dir())]
    first = job_functions_jar(tmp_path, classpath)
    stamp = first.stat().st_mtime_ns
    assert job_functions_jar(tmp_path, classpath) == first and first.stat().st_mtime_ns == stamp
