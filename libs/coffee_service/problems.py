"""Error answers as RFC 9457 problem documents (``application/problem+json``), one type for both services.

A problem is an exception a handler raises and a response it turns into. Beyond RFC 9457's
members (``type``, ``title``, ``status``, ``detail``, ``instance``) it may carry our extensions:

* ``reason``: the short word the ingest's rejection metric counts by (``unknown_field``, ...);
* ``param``: the query parameter at fault (the dashboard's ``?store=``, ``?day=``);
* ``errors``: each bad field of a body, as a dotted ``field`` (``items[0].quantity``), an RFC 6901
  ``pointer`` (``#/items/0/quantity``), a message and a machine-readable ``type``.

Members that are unset are left out of the document, so each service's answers keep their shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:coffee-rt:problem:"


@dataclass(frozen=True)
class FieldError:
    field: str
    pointer: str
    message: str
    type: str


@dataclass(eq=False)  # not frozen: Python sets __traceback__ on exceptions it raises
class Problem(Exception):
    """An error answer; raise it from a handler or turn it into a response with :meth:`response`."""

    status: int
    slug: str  # the problem type: urn:coffee-rt:problem:<slug>
    title: str
    detail: str
    _: KW_ONLY
    reason: str | None = None
    param: str | None = None
    errors: tuple[FieldError, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def document(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": TYPE_PREFIX + self.slug, "title": self.title, "status": self.status,
                               "detail": self.detail}
        if instance:
            doc["instance"] = instance
        if self.reason is not None:
            doc["reason"] = self.reason
        if self.param is not None:
            doc["param"] = self.param
        if self.errors:
            doc["errors"] = [e.__dict__ for e in self.errors]
        return doc

    def response(self, instance: str | None = None) -> Response:
        return Response(orjson.dumps(self.document(instance)), status_code=self.status,
                        headers=dict(self.headers), media_type=PROBLEM_JSON)


def bad_param(param: str, detail: str) -> Problem:
    """400 naming a query parameter."""
    return Problem(400, "invalid-query", "Invalid query parameter", f"{param}: {detail}", param=param)


def unavailable(what: str, detail: str, retry_after_s: int = 2) -> Problem:
    """503 for a backing service that does not answer (``what``: ``redis``, ``postgres``)."""
    return Problem(503, f"{what}-unavailable", f"{what.capitalize()} unavailable", detail,
                   headers={"Retry-After": str(retry_after_s)})
