"""Accepted orders are in Kafka exactly as the schema writes them, keyed by store; duplicates too."""

from __future__ import annotations

import httpx
from ingest_helpers import Offsets, auth, fresh_order

from coffee_orders.schema import from_wire, to_wire


def test_accepted_order_is_in_kafka_with_the_exact_payload(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    order = fresh_order("store-02", "app")
    before = offsets()
    response = client.post("/v1/orders", content=to_wire(order), headers=auth(ingest_tokens["store-02"]))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert set(answer) == {"message_id", "topic", "partition", "offset"}
    assert (answer["message_id"], answer["topic"]) == (str(order.message_id), "orders")
    after = offsets()
    assert after[answer["partition"]] == before[answer["partition"]] + 1
    assert sum(after) == sum(before) + 1
    key, value = offsets.read(answer["partition"], answer["offset"])
    assert key == b"store-02"
    assert value == to_wire(order)
    assert from_wire(value) == order


def test_a_store_keeps_one_partition_in_order(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    answers = []
    for _ in range(5):
        response = client.post("/v1/orders", content=to_wire(fresh_order("store-03")),
                               headers=auth(ingest_tokens["store-03"]))
        assert response.status_code == 202
        answers.append(response.json())
    assert len({a["partition"] for a in answers}) == 1
    assert [a["offset"] for a in answers] == list(range(answers[0]["offset"], answers[0]["offset"] + 5))


def test_a_duplicate_is_accepted_again_with_the_same_answer_shape(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    order = fresh_order("store-01")
    first = client.post("/v1/orders", content=to_wire(order), headers=auth(ingest_tokens["store-01"]))
    second = client.post("/v1/orders", content=to_wire(order), headers=auth(ingest_tokens["store-01"]))
    assert (first.status_code, second.status_code) == (202, 202)
    a, b = first.json(), second.json()
    assert set(a) == set(b) == {"message_id", "topic", "partition", "offset"}
    assert a["message_id"] == b["message_id"] == str(order.message_id)
    assert a["partition"] == b["partition"]
    assert b["offset"] == a["offset"] + 1
    # Both copies are in the log, byte for byte; the Flink job counts the message_id once.
    assert offsets.read(a["partition"], a["offset"]) == offsets.read(b["partition"], b["offset"])


def test_equivalent_spellings_become_one_canonical_record(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    order = fresh_order("store-01")
    body = to_wire(order).replace(str(order.message_id).encode(), order.message_id.hex.upper().encode())
    response = client.post("/v1/orders", content=body, headers=auth(ingest_tokens["store-01"]))
    assert response.status_code == 202
    assert response.json()["message_id"] == str(order.message_id)
    assert offsets.read(response.json()["partition"], response.json()["offset"])[1] == to_wire(order)


def test_batch_answers_per_order_and_writes_only_the_good_ones(
    client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    good = [fresh_order("store-04") for _ in range(5)]
    other_store = fresh_order("store-01")
    bad_total = fresh_order("store-04").model_dump(mode="json")
    bad_total["total_cents"] += 1
    docs = [g.model_dump(mode="json") for g in good[:3]] + [bad_total, other_store.model_dump(mode="json"),
                                                          {"hello": "world"}]
    docs += [g.model_dump(mode="json") for g in good[3:]]
    before = offsets()
    response = client.post("/v1/orders:batch", json={"orders": docs}, headers=auth(ingest_tokens["store-04"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"], body["unavailable"]) == (5, 3, 0)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert [r["status"] for r in results] == [202, 202, 202, 422, 403, 422, 202, 202]
    assert results[3]["problem"]["errors"][0]["field"] == "orders[3].total_cents"
    assert results[4]["problem"]["reason"] == "forbidden_store"
    assert [e["field"] for e in results[5]["problem"]["errors"]][-1] == "orders[5].hello"
    accepted = [r for r in results if r["status"] == 202]
    assert [r["message_id"] for r in accepted] == [str(g.message_id) for g in good]
    assert sum(offsets()) == sum(before) + 5
    offsets_written = [r["offset"] for r in accepted]
    assert offsets_written == list(range(offsets_written[0], offsets_written[0] + 5))  # in batch order
    for result, order in zip(accepted, good, strict=True):
        assert offsets.read(result["partition"], result["offset"]) == (b"store-04", to_wire(order))


def metric(internal: httpx.Client, series: str) -> float:
    for line in internal.get("/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_latency_and_orders(client: httpx.Client, internal: httpx.Client,
                                                   ingest_tokens: dict[str, str]) -> None:
    text = internal.get("/metrics").text
    for name in ("coffee_ingest_requests_total", "coffee_ingest_request_duration_seconds_bucket",
                 "coffee_ingest_produce_duration_seconds_bucket", "coffee_ingest_in_flight_requests",
                 "coffee_ingest_rejections_total", "coffee_ingest_orders_total"):
        assert f"\n{name}" in text, name
    requests = 'coffee_ingest_requests_total{route="/v1/orders",status="202"}'
    latency = 'coffee_ingest_request_duration_seconds_count{route="/v1/orders",status="202"}'
    produced = 'coffee_ingest_produce_duration_seconds_count{outcome="acked"}'
    accepted = 'coffee_ingest_orders_total{outcome="accepted"}'
    before = [metric(internal, s) for s in (requests, latency, produced, accepted)]
    response = client.post("/v1/orders", content=to_wire(fresh_order("store-02")),
                           headers=auth(ingest_tokens["store-02"]))
    assert response.status_code == 202
    assert [metric(internal, s) for s in (requests, latency, produced, accepted)] == [b + 1 for b in before]
    assert metric(internal, "coffee_ingest_in_flight_requests") == 1.0  # the /metrics request itself


def test_metrics_and_openapi_are_not_on_the_order_port(client: httpx.Client, internal: httpx.Client) -> None:
    for path in ("/metrics", "/openapi.json", "/docs"):
        response = client.get(path)
        assert (response.status_code, response.json()["type"]) == (404, "urn:coffee-rt:problem:not-found"), path
    assert internal.get("/metrics").status_code == 200
    assert internal.post("/v1/orders", content=b"{}").status_code == 404  # no orders on the internal port
    assert client.get("/readyz").status_code == internal.get("/readyz").status_code == 200


def test_openapi_document_serves_the_one_schema(internal: httpx.Client) -> None:
    from coffee_orders.schema import json_schema

    document = internal.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {"/v1/orders", "/v1/orders:batch", "/healthz", "/readyz"}
    schema = json_schema()
    defs = schema.pop("$defs")
    assert document["components"]["schemas"]["Order"] == schema
    assert document["components"]["schemas"]["OrderItem"] == defs["OrderItem"]
    assert document["components"]["schemas"]["Batch"]["properties"]["orders"]["maxItems"] == 500
