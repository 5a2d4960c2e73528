"""The public listener's deadlines and caps (coffee_service.serve) against real sockets: slow and
idle clients are cut, requests that arrive whole are served, the internal port is another app."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from coffee_service.serve import TIMED_OUT, Limits, Listener, build

LIMITS = Limits(header_timeout_s=0.6, body_timeout_s=0.6, max_connections=6, max_requests=3,
                max_header_bytes=8192, retry_after_s=7)


@dataclass
class App:
    """Answers 200 with the body's length once the whole body arrived; ``hold`` keeps requests open."""

    name: str
    completed: list[int] = field(default_factory=list)
    gone: list[bool] = field(default_factory=list)  # a request whose client went away: timed out?
    hold: threading.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone.append(bool(scope.get(TIMED_OUT)))
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        while self.hold is not None and not self.hold.is_set():
            await asyncio.sleep(0.01)
        self.completed.append(len(body))
        text = json.dumps({"app": self.name, "path": scope["path"], "length": len(body)}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(text)).encode())]})
        await send({"type": "http.response.body", "body": text})


@dataclass
class Running:
    public: int
    internal: int
    events: list[str]


@contextmanager
def running(public: App, internal: App | None = None, limits: Limits = LIMITS) -> Iterator[Running]:
    events: list[str] = []
    built = build(Listener("127.0.0.1", 0, public, limits),
                  Listener("127.0.0.1", 0, internal) if internal else None, log_level="warning",
                  on_event=events.append)
    ports = built.ports()
    thread = threading.Thread(target=built.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not built.server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield Running(ports[0], ports[-1], events)
    finally:
        built.server.should_exit = True
        thread.join(10)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def split(answer: bytes) -> tuple[str, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, json.loads(body)


def test_the_public_and_internal_ports_serve_their_own_app() -> None:
    public, internal = App("public"), App("internal")
    with running(public, internal) as r:
        assert httpx.get(f"http://127.0.0.1:{r.public}/metrics").json() == {"app": "public", "path": "/metrics",
                                                                            "length": 0}
        assert httpx.get(f"http://127.0.0.1:{r.internal}/metrics").json() == {"app": "internal",
                                                                              "path": "/metrics", "length": 0}
        assert r.events == []


def test_trickled_headers_get_a_408_at_the_deadline() -> None:
    app = App("public")
    with running(app) as r:
        sock = connect(r.public)
        start = time.monotonic()
        sock.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\n")
        try:
            for i in range(20):  # a header line every 0.1 s, never the blank line
                time.sleep(0.1)
                sock.sendall(f"X-Slow-{i}: 1\r\n".encode())
        except OSError:
            pass  # the server closed the connection
        answer = read_all(sock)
        elapsed = time.monotonic() - start
        status, headers, body = split(answer)
        assert status == "HTTP/1.1 408 Request Timeout"
        assert (headers["content-type"], headers["connection"]) == ("application/problem+json", "close")
        assert body == {"type": "urn:coffee-rt:problem:request-timeout", "title": "Request timeout", "status": 408,
                        "detail": "the request's headers did not arrive in time"}
        assert 0.55 < elapsed < 1.5
        assert (app.completed, app.gone, r.events) == ([], [], ["header_timeout"])


def test_an_idle_connection_is_closed_silently_at_the_header_deadline() -> None:
    with running(App("public")) as r:
        sock = connect(r.public)
        start = time.monotonic()
        assert read_all(sock) == b""
        assert 0.55 < time.monotonic() - start < 1.5
        assert r.events == ["header_timeout"]


def test_a_trickled_body_gets_a_408_and_the_app_sees_the_client_gone() -> None:
    app = App("public")
    with running(app) as r:
        sock = connect(r.public)
        sock.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n")
        try:
            for _ in range(20):
                sock.sendall(b"{" * 3)
                time.sleep(0.1)
        except OSError:
            pass
        status, _, body = split(read_all(sock))
        assert status == "HTTP/1.1 408 Request Timeout"
        assert body["detail"] == "the request's body did not arrive in time"
        time.sleep(0.1)
        assert (app.completed, app.gone, r.events) == ([], [True], ["body_timeout"])


def test_a_keep_alive_connection_gets_a_new_header_deadline_after_each_answer() -> None:
    app = App("public")
    with running(app) as r, httpx.Client(base_url=f"http://127.0.0.1:{r.public}") as client:
        for _ in range(3):
            assert client.post("/v1/orders", content=b"x" * 10).json()["length"] == 10
            time.sleep(0.3)  # shorter than the deadline, longer than the sum of several
        assert app.completed == [10, 10, 10]
        assert r.events == []


def test_oversized_headers_get_a_431() -> None:
    with running(App("public")) as r:
        sock = connect(r.public)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000)
        status, _, body = split(read_all(sock))
        assert status == "HTTP/1.1 431 Request Header Fields Too Large"
        assert body["detail"] == "the request line and headers may be at most 8192 bytes"
        assert r.events == ["header_too_large"]


def test_at_the_connection_cap_the_longest_idle_connection_makes_room() -> None:
    app = App("public")
    with running(app) as r:
        idle = [connect(r.public) for _ in range(LIMITS.max_connections)]
        time.sleep(0.1)
        # One more client: the first idle connection is closed for it, and its request is served.
        response = httpx.post(f"http://127.0.0.1:{r.public}/v1/orders", content=b"abc")
        assert (response.status_code, response.json()["length"]) == (200, 3)
        idle[0].settimeout(0.3)
        assert idle[0].recv(10) == b""
        for sock in idle[1:]:
            sock.settimeout(0.05)
            with pytest.raises(TimeoutError):
                sock.recv(10)
        assert r.events == ["evicted"]


def test_connections_with_requests_in_progress_are_never_evicted() -> None:
    hold = threading.Event()
    app = App("public", hold=hold)
    limits = Limits(header_timeout_s=5, body_timeout_s=5, max_connections=2, max_requests=10)
    with running(app, limits=limits) as r:
        busy = [connect(r.public) for _ in range(2)]
        for sock in busy:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        refused = connect(r.public)
        assert read_all(refused) == b""
        hold.set()
        for sock in busy:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
        assert r.events == ["refused"]


def test_over_the_request_cap_a_request_gets_a_503_at_once() -> None:
    hold = threading.Event()
    app = App("public", hold=hold)
    with running(app) as r:
        held = [connect(r.public) for _ in range(LIMITS.max_requests)]
        for sock in held:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        response = httpx.get(f"http://127.0.0.1:{r.public}/")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        assert response.json() == {"type": "urn:coffee-rt:problem:overloaded", "title": "Too many requests in progress",
                                   "status": 503, "detail": "more than 3 requests are in progress; retry",
                                   "reason": "overloaded"}
        hold.set()
        for sock in held:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
        assert httpx.get(f"http://127.0.0.1:{r.public}/").status_code == 200
        assert r.events == ["busy"]


def test_the_internal_listener_has_no_limits() -> None:
    internal = App("internal")
    with running(App("public"), internal) as r:
        sock = connect(r.internal)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        time.sleep(1.0)  # past the public header deadline
        sock.sendall(b"\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
        assert r.events == []
