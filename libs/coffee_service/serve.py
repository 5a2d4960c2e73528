"""Running a service under uvicorn the same way for ingest and dashboard: a public listener with
limits, and an internal one (metrics, OpenAPI) that only the monitoring may reach.

One process, one event loop, one uvicorn server bound to both sockets; requests are dispatched by
the local port they arrived on, so the public port never serves the internal routes. uvloop and
httptools (locked dependencies of both services). No ``Server`` header, no X-Forwarded-*
rewriting: nothing here uses the client address.

uvicorn alone has no header-read or body-read timeout (a client that sends one byte every few
seconds holds its connection for ever), and its ``limit_concurrency`` counts idle connections
too, so a few hundred idle sockets would turn every real request into a 503. The public listener
therefore runs :class:`_LimitedProtocol`, which adds:

* a header deadline (:attr:`Limits.header_timeout_s`) from the connection's start, or the end of
  its previous answer, to the end of the request's headers, whatever arrives in between; then a
  408 (or, before any byte of a request, a silent close). Headers larger than
  :attr:`Limits.max_header_bytes` get a 431;
* a body deadline (:attr:`Limits.body_timeout_s`) from the end of the headers to the end of the
  body: the request is answered 408 and its connection closed; the application sees the client
  gone and writes nothing;
* at most :attr:`Limits.max_connections` connections: one more closes the connection that has
  waited longest for a request's headers (idle or trickling), never one with a request in progress;
  only when every connection has a request in progress is the new one closed;
* at most :attr:`Limits.max_requests` requests in progress (headers read, answer not finished):
  one more is answered 503 with ``Retry-After`` at once.

Each cut is reported to ``on_event`` (the services count them in their metrics).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import orjson
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from coffee_service.problems import PROBLEM_JSON, TYPE_PREFIX, Problem

# Set in a request's scope when the body deadline cut it: the request's metrics record a 408.
TIMED_OUT = "coffee_service.timed_out"
EVENTS = ("header_timeout", "body_timeout", "header_too_large", "evicted", "refused", "busy")

Events = Callable[[str], None]
log = logging.getLogger("coffee_service.serve")
_SEQUENCE = itertools.count()


@dataclass(frozen=True)
class Limits:
    """What the clients of a public listener may hold (see the module's docstring)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1024
    max_requests: int = 256
    max_header_bytes: int = 64 * 1024
    retry_after_s: int = 2


@dataclass(frozen=True)
class Listener:
    """One socket to serve ``app`` on; ``limits`` None: none (the internal listener)."""

    host: str
    port: int
    app: ASGIApp
    limits: Limits | None = None


@dataclass(eq=False)
class _State:
    listener: Listener
    on_event: Events
    connections: set[_LimitedProtocol] = field(default_factory=set)
    active: int = 0  # requests in the application


class _Dispatch:
    """The one ASGI app uvicorn runs: each request goes to the app of the port it arrived on
    (counted while it runs); lifespan events go to the public app."""

    def __init__(self, states: dict[int, _State], public: _State) -> None:
        self.states = states
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.public.listener.app(scope, receive, send)
            return
        server = scope.get("server")
        state = self.states.get(server[1]) if server else None
        if state is None:  # pragma: no cover - every socket is one of ours
            state = self.public
        state.active += 1
        try:
            await state.listener.app(scope, receive, send)
        finally:
            state.active -= 1


def _raw_problem(status: int, reason: bytes, slug: str, title: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, written by the protocol itself."""
    body = orjson.dumps({"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail})
    head = (f"HTTP/1.1 {status} ".encode() + reason + b"\r\ncontent-type: " + PROBLEM_JSON.encode()
            + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n")
    return head + body


class _LimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and caps of the module's docstring; on a
    listener without limits it is uvicorn's own."""

    states: ClassVar[dict[int, _State]] = {}

    _state: _State | None = None
    _timer: asyncio.TimerHandle | None = None
    _since = 0  # when it began to wait for headers (a sequence number: accepts share a loop time)
    _waiting = True  # for a request's headers (idle or trickling), so evictable
    _partial = False  # some bytes of the next request arrived
    _header_bytes = 0
    _body_done = True  # the current request's body has arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        port = self.server[1] if self.server else None
        state = self.states.get(port) if port is not None else None
        limits = state.listener.limits if state else None
        if state is None or limits is None:
            return
        self._state = state
        self._since = next(_SEQUENCE)
        state.connections.add(self)
        if len(state.connections) > limits.max_connections:
            idle = [c for c in state.connections if c._waiting and c is not self]
            if not idle:
                self._cut("refused")
                return
            min(idle, key=lambda c: c._since)._cut("evicted")
        self._arm(limits.header_timeout_s, self._header_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._state is not None:
            self._state.connections.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self._state
        if state is None or not self._waiting or not self._partial or self.transport.is_closing():
            return
        self._header_bytes += len(data)
        assert state.listener.limits is not None
        if self._header_bytes > state.listener.limits.max_header_bytes:
            self._answer_and_close(_raw_problem(
                431, b"Request Header Fields Too Large", "headers-too-large", "Request headers too large",
                f"the request line and headers may be at most {state.listener.limits.max_header_bytes} bytes"),
                "header_too_large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._partial = True

    def on_headers_complete(self) -> None:
        state = self._state
        if state is None:
            super().on_headers_complete()
            return
        limits = state.listener.limits
        assert limits is not None
        self._waiting, self._partial, self._header_bytes, self._body_done = False, False, 0, False
        self._disarm()
        busy = state.active + len(self.pipeline) >= limits.max_requests
        if busy:
            state.on_event("busy")
            app, self.app = self.app, self._busy_app(limits)
        try:
            super().on_headers_complete()
        finally:
            if busy:
                self.app = app
        self._arm(limits.body_timeout_s, self._body_deadline)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._state is None:
            return
        self._disarm()
        self._body_done = True
        if self.cycle is not None and self.cycle.response_complete:  # answered before the body ended
            self._await_next_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._state is not None and self._body_done:  # else the body's deadline runs on
            self._await_next_request()

    def _await_next_request(self) -> None:
        state = self._state
        if state is None or self.transport.is_closing() or self.pipeline:
            return
        assert state.listener.limits is not None
        self._waiting, self._since = True, next(_SEQUENCE)
        self._arm(state.listener.limits.header_timeout_s, self._header_deadline)

    # -- deadlines -----------------------------------------------------------------------------
    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_deadline(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._partial:
            self._answer_and_close(_raw_problem(
                408, b"Request Timeout", "request-timeout", "Request timeout",
                "the request's headers did not arrive in time"), "header_timeout")
        else:
            self._cut("header_timeout")

    def _body_deadline(self) -> None:
        self._timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None:
            return
        answer = b""
        if not cycle.response_started:
            cycle.scope[TIMED_OUT] = True  # type: ignore[literal-required]
            answer = _raw_problem(408, b"Request Timeout", "request-timeout", "Request timeout",
                                  "the request's body did not arrive in time")
        # The application sees the client gone (its receive answers http.disconnect, its sends are
        # dropped), so it neither answers nor acts on a partial body.
        cycle.disconnected = True
        cycle.message_event.set()
        self._answer_and_close(answer, "body_timeout")

    def _answer_and_close(self, answer: bytes, kind: str) -> None:
        if answer:
            self.transport.write(answer)
        self._cut(kind)

    def _cut(self, kind: str) -> None:
        self._disarm()
        if self._state is not None:
            self._state.on_event(kind)
        self.transport.close()

    def _busy_app(self, limits: Limits) -> ASGIApp:
        return Problem(503, "overloaded", "Too many requests in progress",
                       f"more than {limits.max_requests} requests are in progress; retry",
                       reason="overloaded", headers={"Retry-After": str(limits.retry_after_s),
                                                     "Connection": "close"}).response()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free one, as tests use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@dataclass
class Built:
    server: uvicorn.Server
    sockets: list[socket.socket]

    def ports(self) -> list[int]:
        return [int(s.getsockname()[1]) for s in self.sockets]

    def run(self) -> None:
        self.server.run(sockets=self.sockets)


def build(public: Listener, internal: Listener | None = None, *, log_level: str = "info",
          access_log: bool = False, graceful_shutdown_s: int = 10, on_event: Events | None = None) -> Built:
    """The server for the listeners, bound but not yet serving (``Built.run`` serves)."""
    if importlib.util.find_spec("httptools") is None:  # pragma: no cover - a locked dependency
        raise RuntimeError("httptools is not installed: the services' limits need it")
    listeners = [public, *([internal] if internal is not None else [])]
    sockets = [bind(listener.host, listener.port) for listener in listeners]
    states: dict[int, _State] = {}
    for listener, sock in zip(listeners, sockets, strict=True):
        states[int(sock.getsockname()[1])] = _State(listener, on_event or (lambda kind: None))
    protocol = type("LimitedProtocol", (_LimitedProtocol,), {"states": states})
    config = uvicorn.Config(
        _Dispatch(states, states[int(sockets[0].getsockname()[1])]),
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=protocol,
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=graceful_shutdown_s,
    )
    return Built(uvicorn.Server(config), sockets)


def serve(public: Listener, internal: Listener | None = None, *, log_level: str, access_log: bool,
          graceful_shutdown_s: int, on_event: Events | None = None) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    built = build(public, internal, log_level=log_level, access_log=access_log,
                  graceful_shutdown_s=graceful_shutdown_s, on_event=on_event)
    where = ", ".join(f"{listener.host}:{port} ({'public' if listener is public else 'internal'})"
                      for listener, port in zip([public, internal], built.ports(), strict=False) if listener)
    log.info("listening on %s", where)
    built.run()

