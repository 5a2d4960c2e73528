"""The two order routes as bare ASGI, ahead of Starlette's router; everything else goes to Starlette.

Why: on two cores shared with Kafka and the Flink job, the ingest service's CPU per order is
what its tail latency is made of. Per request Starlette adds an exception middleware, the
router, an endpoint wrapper, a ``Request`` and a send wrapper per layer. The order routes need
none of it: they read three headers and the body and always answer with one response, a 202 or
an RFC 9457 problem. See docs/ingest.md#benchmark.

What the routes see is an :class:`Incoming`: the headers they ask for and the body's chunks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from coffee_ingest import rejections
from coffee_ingest.metrics import Metrics
from coffee_service.problems import Problem

log = logging.getLogger("coffee_ingest")


class ClientGone(Exception):
    """The client disconnected before its body was complete: there is no one to answer."""


class Incoming:
    """One HTTP request as the order routes need it."""

    __slots__ = ("_receive", "_scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self._scope = scope
        self._receive = receive

    def header(self, name: bytes) -> str | None:
        """The first value of a header (``name`` lower case), as Starlette's ``headers.get`` gives it."""
        for key, value in self._scope["headers"]:
            if key == name:
                return value.decode("latin-1")  # type: ignore[no-any-return]
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return


Handler = Callable[[Incoming], Awaitable[Response]]


class OrderRoutes:
    """POST handlers by exact path; any other method there is a 405 problem, any other path is
    Starlette's. A :class:`Problem` raised by a handler becomes its response and is counted."""

    def __init__(self, handlers: Mapping[str, Handler], metrics: Metrics, fallback: ASGIApp) -> None:
        self.handlers = dict(handlers)
        self.metrics = metrics
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            await self.fallback(scope, receive, send)
            return
        if scope["method"] != "POST":  # as Starlette answers it for its own routes
            problem = replace(rejections.http_problem(405, "Method Not Allowed"), headers={"Allow": "POST"})
            self.metrics.reject(problem.reason)
            await problem.response(scope["path"])(scope, receive, send)
            return
        try:
            response = await handler(Incoming(scope, receive))
        except Problem as problem:
            self.metrics.reject(problem.reason)
            if problem.reason not in ("kafka_unavailable", "overloaded"):
                self.metrics.rejected.inc()
            response = problem.response(scope["path"])
        except ClientGone:
            return
        except Exception as exc:  # the same answer Starlette's ServerErrorMiddleware gives elsewhere
            log.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=exc)
            response = rejections.internal_error().response(scope["path"])
        await response(scope, receive, send)
