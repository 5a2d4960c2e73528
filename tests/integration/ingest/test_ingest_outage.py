"""Kafka stopped or frozen: a bounded wait then 503 with Retry-After, never a 202; recovery by itself."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from ingest_helpers import Offsets, auth, fresh_order, problem

from coffee_orders.schema import to_wire
from coffee_rt.local.stack import LocalStack


def post_until_accepted(client: httpx.Client, body: bytes, token: str, attempts: int = 90) -> httpx.Response:
    """Retry as a till would (honouring Retry-After, capped at 1 s), at most ``attempts`` times."""
    response = client.post("/v1/orders", content=body, headers=auth(token))
    for _ in range(attempts):
        if response.status_code == 202:
            break
        assert response.status_code == 503, response.text
        time.sleep(min(float(response.headers["retry-after"]), 1.0))
        response = client.post("/v1/orders", content=body, headers=auth(token))
    return response


@pytest.fixture
def kafka_restored(local_stack: LocalStack, ingest_url: str) -> Iterator[LocalStack]:
    """Whatever the test does to the broker, it is running again afterwards."""
    try:
        yield local_stack
    finally:
        pid = local_stack["kafka"].processes()[0].pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        local_stack.up(["kafka"])


def test_broker_stopped_gives_503_then_recovers(
    kafka_restored: LocalStack, client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    token = ingest_tokens["store-01"]
    order = fresh_order("store-01")
    assert client.get("/readyz").status_code == 200

    assert kafka_restored["kafka"].processes()[0].stop()
    response = client.post("/v1/orders", content=to_wire(order), headers=auth(token))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    doc = problem(response)
    assert doc["reason"] == "kafka_unavailable"
    assert doc["detail"].endswith("retry with the same message_id")
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert problem(ready)["detail"].startswith("kafka unreachable")
    batch = client.post("/v1/orders:batch", json={"orders": [fresh_order("store-01").model_dump(mode="json")]},
                        headers=auth(token))
    assert batch.status_code == 200
    assert batch.headers["retry-after"] == "2"
    assert (batch.json()["accepted"], batch.json()["unavailable"]) == (0, 1)
    assert batch.json()["results"][0]["status"] == 503
    assert client.get("/healthz").status_code == 200  # alive, just not ready

    kafka_restored.up(["kafka"])
    again = post_until_accepted(client, to_wire(order), token)  # the till's retry, same message_id
    assert again.status_code == 202
    assert again.json()["message_id"] == str(order.message_id)
    assert offsets.read(again.json()["partition"], again.json()["offset"]) == (b"store-01", to_wire(order))
    assert client.get("/readyz").status_code == 200
    fresh = client.post("/v1/orders", content=to_wire(fresh_order("store-01")), headers=auth(token))
    assert fresh.status_code == 202


def test_broker_frozen_gives_503_not_a_hang(
    kafka_restored: LocalStack, client: httpx.Client, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    token = ingest_tokens["store-02"]
    order = fresh_order("store-02")
    pid = kafka_restored["kafka"].processes()[0].pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a broker that accepts connections but answers nothing
    try:
        response = client.post("/v1/orders", content=to_wire(order), headers=auth(token))
        assert response.status_code == 503
        assert problem(response)["detail"].startswith(
            "the order was not confirmed as stored (no acknowledgement from Kafka within 2 s)")
    finally:
        os.kill(pid, signal.SIGCONT)
    again = post_until_accepted(client, to_wire(order), token)
    assert again.status_code == 202
    assert offsets.read(again.json()["partition"], again.json()["offset"]) == (b"store-02", to_wire(order))
