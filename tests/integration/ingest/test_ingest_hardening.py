"""The public port's limits and the token file's reload, on a real ingest process writing to the
test stack's Kafka: slow and idle clients are cut off while normal orders are accepted with exact
totals; a token removed from the file is refused within seconds, without a restart; a broken file
keeps the last good tokens. Each test runs its own ``python -m coffee_ingest`` (short deadlines,
its own token file) so it can rewrite that file and count the cuts exactly."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ingest_helpers import Offsets, auth, fresh_order, problem

from coffee_ingest.auth import TokenFile, entry_for
from coffee_orders.schema import from_wire, to_wire
from coffee_rt.local.stack import LocalStack

HEADER_TIMEOUT, BODY_TIMEOUT = 3, 3  # seconds
MAX_CONNECTIONS = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_tokens(path: Path, tokens: dict[str, str]) -> None:
    """The token file as a Secret update writes it: the new content replaces the old in one step."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(TokenFile(tokens=[entry_for(s, t, "test") for s, t in tokens.items()]).model_dump_json())
    os.replace(tmp, path)


@dataclass
class Ingest:
    url: str
    internal: str
    tokens_file: Path
    process: subprocess.Popen[bytes]
    log: Path

    def metric(self, series: str) -> float:
        for line in httpx.get(f"{self.internal}/metrics", timeout=10).text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{series} not in /metrics")

    def server_errors(self) -> list[str]:
        text = httpx.get(f"{self.internal}/metrics", timeout=10).text
        return [line for line in text.splitlines()
                if line.startswith("coffee_ingest_requests_total") and re.search(r'status="5\d\d"', line)]


@pytest.fixture
def ingest(local_stack: LocalStack, kafka_bootstrap: str, ingest_tokens: dict[str, str],
           tmp_path: Path) -> Iterator[Ingest]:
    port, internal = free_port(), free_port()
    tokens_file = tmp_path / "tokens.json"
    write_tokens(tokens_file, ingest_tokens)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update({"INGEST_PORT": str(port), "INGEST_INTERNAL_PORT": str(internal),
                "INGEST_KAFKA_BOOTSTRAP": kafka_bootstrap, "INGEST_TOKENS_FILE": str(tokens_file),
                "INGEST_HEADER_TIMEOUT": f"{HEADER_TIMEOUT}s", "INGEST_BODY_TIMEOUT": f"{BODY_TIMEOUT}s",
                "INGEST_MAX_CONNECTIONS": str(MAX_CONNECTIONS), "INGEST_MAX_REQUESTS": "128",
                "INGEST_TOKENS_RELOAD_INTERVAL": "1s"})
    log = tmp_path / "ingest.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "coffee_ingest"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    service = Ingest(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal}", tokens_file, process, log)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    try:
        yield service
    finally:
        process.terminate()
        process.wait(20)


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


class Trickler(threading.Thread):
    """Sends ``head`` then ``body`` one byte every ``every`` seconds until the server closes; keeps
    what the server answered."""

    def __init__(self, url: str, head: bytes, body: bytes, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.sock, self.head, self.body, self.every = connect(url), head, body, every
        self.answer = b""

    def run(self) -> None:
        try:
            self.sock.sendall(self.head)
            for i in range(len(self.body)):
                self.sock.sendall(self.body[i:i + 1])
                time.sleep(self.every)
        except OSError:
            pass  # the server closed the connection
        self.answer = read_all(self.sock)
        self.sock.close()


def post_orders(url: str, tokens: dict[str, str], count: int,
                client: httpx.Client | None = None) -> list[tuple[str, dict[str, object]]]:
    """``count`` orders, each on a new connection (or all on ``client``'s); (message_id, 202 answer) of each."""
    accepted = []
    stores = sorted(tokens)
    for i in range(count):
        order = fresh_order(stores[i % len(stores)])
        post = client.post if client is not None else httpx.post
        response = post(f"{url}/v1/orders", content=to_wire(order), headers=auth(tokens[order.store_id]),
                        timeout=30)
        assert response.status_code == 202, response.text
        accepted.append((str(order.message_id), response.json()))
    return accepted


def records_of(offsets: Offsets, before: list[int], after: list[int]) -> set[str]:
    """The message_ids of the records written between the two end-offset lists."""
    ids = set()
    for partition, (first, end) in enumerate(zip(before, after, strict=True)):
        if end > first:
            for _, value in offsets.read_range(partition, first, end - 1).values():
                assert value is not None
                ids.add(str(from_wire(value).message_id))
    return ids


def test_slow_and_idle_clients_are_cut_while_orders_are_accepted(
        ingest: Ingest, ingest_tokens: dict[str, str], offsets: Offsets) -> None:
    before = offsets()
    token = ingest_tokens["store-01"]
    idle = [connect(ingest.url) for _ in range(200)]  # connect and send nothing
    slow_headers = [Trickler(ingest.url, b"POST /v1/orders HTTP/1.1\r\n", f"Authorization: Bearer {token}\r\n"
                             "Content-Type: application/json\r\n".encode()) for _ in range(20)]
    slow_bodies = []
    for _ in range(20):  # valid orders whose bodies would be accepted, had they arrived in time
        body = to_wire(fresh_order("store-01"))
        head = (f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        slow_bodies.append(Trickler(ingest.url, head, body))
    for trickler in [*slow_headers, *slow_bodies]:
        trickler.start()
    started = time.monotonic()

    accepted = post_orders(ingest.url, ingest_tokens, 60)  # while they hold their connections

    for trickler in [*slow_headers, *slow_bodies]:
        trickler.join(30)
    for sock in idle:
        sock.settimeout(30)
        assert read_all(sock) == b""  # closed without an answer at the header deadline
        sock.close()
    assert time.monotonic() - started < HEADER_TIMEOUT + BODY_TIMEOUT + 15
    for trickler in slow_headers:
        assert trickler.answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), trickler.answer[:100]
        assert b'"detail":"the request\'s headers did not arrive in time"' in trickler.answer
    for trickler in slow_bodies:
        assert trickler.answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), trickler.answer[:100]
        assert b'"detail":"the request\'s body did not arrive in time"' in trickler.answer

    # Exactly the 60 accepted orders reached Kafka, each at the offset its 202 named; none of the slow ones.
    after = offsets()
    assert sum(after) - sum(before) == 60
    assert records_of(offsets, before, after) == {message_id for message_id, _ in accepted}
    for message_id, answer in accepted:
        _, value = offsets.read(int(answer["partition"]), int(answer["offset"]))  # type: ignore[call-overload]
        assert value is not None and str(from_wire(value).message_id) == message_id
    cut = 'coffee_ingest_connections_cut_total{reason="%s"}'
    assert [ingest.metric(cut % reason) for reason in ("header_timeout", "body_timeout", "evicted", "refused",
                                                       "busy")] == [220.0, 20.0, 0.0, 0.0, 0.0]
    assert ingest.metric('coffee_ingest_requests_total{route="/v1/orders",status="408"}') == 20.0
    assert ingest.metric('coffee_ingest_orders_total{outcome="accepted"}') == 60.0
    assert ingest.server_errors() == []


def test_at_the_connection_cap_idle_connections_make_room_for_orders(
        ingest: Ingest, ingest_tokens: dict[str, str], offsets: Offsets) -> None:
    before = offsets()
    idle = [connect(ingest.url) for _ in range(MAX_CONNECTIONS)]
    time.sleep(0.5)  # all accepted by the server
    with httpx.Client() as client:  # one connection, one too many: the longest-idle one makes room
        accepted = post_orders(ingest.url, ingest_tokens, 10, client)
    after = offsets()
    assert sum(after) - sum(before) == 10
    assert records_of(offsets, before, after) == {message_id for message_id, _ in accepted}
    assert ingest.metric('coffee_ingest_connections_cut_total{reason="evicted"}') == 1.0
    idle[0].settimeout(1)
    assert read_all(idle[0]) == b""  # the first one was the longest idle
    for sock in idle:
        sock.close()
    assert ingest.server_errors() == []


def test_a_token_removed_from_the_file_is_refused_within_seconds(
        ingest: Ingest, ingest_tokens: dict[str, str], offsets: Offsets) -> None:
    pid = ingest.process.pid
    kept = {store: token for store, token in ingest_tokens.items() if store != "store-02"}
    before = offsets()
    write_tokens(ingest.tokens_file, kept)
    deadline = time.monotonic() + 10
    while True:
        response = httpx.post(f"{ingest.url}/v1/orders", content=b"{}", headers=auth(ingest_tokens["store-02"]),
                              timeout=10)
        if response.status_code == 401:
            break
        assert response.status_code == 422  # the token still valid: the empty order is refused after it
        assert time.monotonic() < deadline, "the removed token was still accepted after 10 s"
        time.sleep(0.2)
    revoked = httpx.post(f"{ingest.url}/v1/orders", content=to_wire(fresh_order("store-02")),
                         headers=auth(ingest_tokens["store-02"]), timeout=10)
    assert revoked.status_code == 401
    assert problem(revoked)["detail"] == "the bearer token is not valid"
    assert post_orders(ingest.url, kept, 3)  # the other stores go on
    assert ingest.metric('coffee_ingest_token_reloads_total{outcome="loaded"}') == 1.0

    # A broken or missing file changes nothing: the last good tokens stay, the error is logged once.
    for broken in ('{"tokens": [{"store_id": "store-01"}]}', "not json", None):
        if broken is None:
            ingest.tokens_file.unlink()
        else:
            ingest.tokens_file.write_text(broken)
        time.sleep(2.5)  # more than two reload intervals
        assert ingest.metric("coffee_ingest_token_file_ok") == 0.0
        assert post_orders(ingest.url, kept, 1)
        assert httpx.post(f"{ingest.url}/v1/orders", content=to_wire(fresh_order("store-02")),
                          headers=auth(ingest_tokens["store-02"]), timeout=10).status_code == 401
    assert ingest.metric('coffee_ingest_token_reloads_total{outcome="failed"}') == 3.0
    log = ingest.log.read_text()
    assert log.count("token file not reloaded, the last good one stays in use") == 3, log
    assert f"cannot read {ingest.tokens_file}: No such file or directory" in log
    for token in ingest_tokens.values():
        assert token not in log

    # Restored, with store-02 again: accepted again, still the same process.
    write_tokens(ingest.tokens_file, ingest_tokens)
    time.sleep(2.5)
    assert ingest.metric("coffee_ingest_token_file_ok") == 1.0
    assert post_orders(ingest.url, {"store-02": ingest_tokens["store-02"]}, 1)
    assert ingest.process.pid == pid and ingest.process.poll() is None
    assert sum(offsets()) - sum(before) == 3 + 3 + 1  # only the accepted orders
    assert ingest.server_errors() == []
