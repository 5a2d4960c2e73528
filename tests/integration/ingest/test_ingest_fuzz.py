"""Schema-driven fuzzing against the running service: no 5xx, no crash, nothing written unless 202.

Strategies are derived from the served /openapi.json (the pydantic schema), then bent: valid
shapes with random values (mostly refused on meaning: totals, time window, store), random JSON
of any shape, and single-field mutations of a good order. Hypothesis runs a bounded number of
examples with no deadline, so the run is reproducible in time as well as in cases.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import Offsets, auth, fresh_order

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def from_schema(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for the subset of JSON Schema pydantic emits for the order."""
    if "$ref" in schema:
        return st.deferred(lambda: from_schema(components[schema["$ref"].rsplit("/", 1)[1]], components))
    if "anyOf" in schema:
        return st.one_of([from_schema(s, components) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema["properties"]
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, components) for k, v in props.items() if k in required},
            optional={k: from_schema(v, components) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(from_schema(schema["items"], components), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 5), 5))
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "null":
        return st.none()
    if kind == "string":
        if schema.get("format") == "uuid":
            return st.uuids().map(str)
        if schema.get("format") == "date-time":
            offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
            recent = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)
            return recent.map(lambda d: d.isoformat())
        if "pattern" in schema:  # JSON Schema's $ is the end of the text; Python's also allows a final newline
            return st.from_regex(schema["pattern"].removesuffix("$") + r"\Z", fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 50))
    raise AssertionError(f"schema construct not handled: {schema}")


@pytest.fixture(scope="module")
def order_strategy(internal: httpx.Client) -> st.SearchStrategy[dict[str, Any]]:
    document = internal.get("/openapi.json").json()
    components = document["components"]["schemas"]
    body_ref = document["paths"]["/v1/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return from_schema(body_ref, components)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def assert_sane(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 202:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == response.status_code


def test_fuzz_never_5xx_and_writes_only_accepted_orders(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets,
    order_strategy: st.SearchStrategy[dict[str, Any]],
) -> None:
    token = ingest_tokens["store-01"]
    accepted = 0
    unconfirmed = 0  # 503s: such a record may still land in Kafka after the wait
    before = offsets()

    def post(body: bytes) -> httpx.Response:
        nonlocal accepted, unconfirmed
        response = client.post("/v1/orders", content=body, headers=auth(token))
        # A broker starved of CPU may miss the 2 s bound: that 503 is the documented answer, and a
        # till retries it with the same body. Anything else 5xx is a bug.
        for _ in range(5):
            if response.status_code != 503 or response.json()["reason"] != "kafka_unavailable":
                break
            unconfirmed += 1
            response = client.post("/v1/orders", content=body, headers=auth(token))
        assert_sane(response)
        accepted += response.status_code == 202
        return response

    @FUZZ
    @given(doc=order_strategy)
    def schema_shaped(doc: dict[str, Any]) -> None:
        post(json.dumps(doc).encode())

    @FUZZ
    @given(value=json_values)
    def any_json(value: Any) -> None:
        post(json.dumps(value).encode())

    @FUZZ
    @given(raw=st.binary(max_size=300))
    def any_bytes(raw: bytes) -> None:
        post(raw)

    @FUZZ
    @given(doc=order_strategy, data=st.data())
    def made_valid(doc: dict[str, Any], data: st.DataObject) -> None:
        # Schema-generated content (odd names, SKUs, origins), fixed up to be meaningful: must be accepted.
        doc.update(store_id="store-01", currency="EUR", placed_at=datetime.now(UTC).isoformat())
        doc["total_cents"] = sum(i["quantity"] * i["unit_price_cents"] for i in doc["items"])
        response = post(json.dumps(doc).encode())
        assert response.status_code == 202, response.text
        assert response.json()["message_id"] == doc["message_id"]

    @FUZZ
    @given(field=st.sampled_from(["message_id", "store_id", "placed_at", "channel", "currency", "items",
                                  "total_cents"]),
           value=json_values, drop=st.booleans())
    def one_field_broken(field: str, value: Any, drop: bool) -> None:
        doc = fresh_order("store-01").model_dump(mode="json")
        if drop:
            del doc[field]
        else:
            doc[field] = value
        response = post(json.dumps(doc).encode())
        assert response.status_code in (400, 403, 422)

    for run in (schema_shaped, any_json, any_bytes, made_valid, one_field_broken):
        run()
    assert accepted >= 150  # made_valid's examples, at least
    written = sum(offsets()) - sum(before)
    assert accepted <= written <= accepted + unconfirmed
