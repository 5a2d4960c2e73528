"""Kafka stopped or frozen: a bounded wait then 503 with Retry-After, never a 202; recovery by itself."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from ingest_helpers import Offsets, auth, fresh_order, problem

from coffee_orders.schema import from_wire, to_wire
from coffee_rt.errors import StartupError
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


def restart_kafka(stack: LocalStack, patience: float = 240) -> None:
    """Start the broker again; on a starved machine a KRaft start can outlast the component's own
    timeout, so keep waiting for it (without restarting it) up to ``patience`` seconds."""
    try:
        stack.up(["kafka"])
    except StartupError:
        deadline = time.monotonic() + patience
        while not stack["kafka"].health().ok:
            if time.monotonic() > deadline or not stack["kafka"].processes()[0].is_running():
                raise
            time.sleep(1)


@pytest.fixture
def kafka_restored(local_stack: LocalStack, ingest_url: str) -> Iterator[LocalStack]:
    """Whatever the test does to the broker, it is running again afterwards."""
    try:
        yield local_stack
    finally:
        pid = local_stack["kafka"].processes()[0].pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        restart_kafka(local_stack)


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

    restart_kafka(kafka_restored)
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


def test_broker_stopped_mid_run_every_202_is_in_kafka(
    kafka_restored: LocalStack, ingest_url: str, ingest_tokens: dict[str, str], offsets: Offsets
) -> None:
    """A till posting steadily while the broker goes away and comes back: only 202s and 503s,
    every request answered, and every 202 names a record that holds exactly that order."""
    token = ingest_tokens["store-04"]
    outcomes: list[tuple[int, str, int, int]] = []  # status, message_id, partition, offset
    back = threading.Event()
    stop = threading.Event()

    def till() -> None:
        with httpx.Client(base_url=ingest_url, timeout=15) as c:
            accepted_after_return = 0
            while not stop.is_set() and len(outcomes) < 2000 and accepted_after_return < 20:
                order = fresh_order("store-04")
                r = c.post("/v1/orders", content=to_wire(order), headers=auth(token))
                body = r.json()
                outcomes.append((r.status_code, str(order.message_id), body.get("partition", -1),
                                 body.get("offset", -1)))
                if back.is_set() and r.status_code == 202:
                    accepted_after_return += 1

    thread = threading.Thread(target=till)
    thread.start()
    try:
        time.sleep(1.0)
        assert kafka_restored["kafka"].processes()[0].stop()
        time.sleep(3.0)
        restart_kafka(kafka_restored)
        back.set()
        thread.join(timeout=120)
    finally:
        stop.set()
        thread.join()
    statuses = [o[0] for o in outcomes]
    assert set(statuses) <= {202, 503}
    assert 503 in statuses
    assert statuses[0] == 202 and statuses[-1] == 202
    accepted = [(partition, offset, message_id) for status, message_id, partition, offset in outcomes if status == 202]
    assert len({partition for partition, _, _ in accepted}) == 1
    partition = accepted[0][0]
    records = offsets.read_range(partition, min(o for _, o, _ in accepted), max(o for _, o, _ in accepted))
    for _, offset, message_id in accepted:
        key, value = records[offset]
        assert key == b"store-04"
        assert value is not None and str(from_wire(value).message_id) == message_id
