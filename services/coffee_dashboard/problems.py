"""Error answers as RFC 9457 problem documents (``application/problem+json``), like the ingest's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:coffee-rt:problem:"


@dataclass(eq=False)  # not frozen: Python sets __traceback__ on exceptions it raises
class Problem(Exception):
    status: int
    slug: str
    title: str
    detail: str
    param: str | None = None  # the query parameter at fault, if any
    headers: Mapping[str, str] = field(default_factory=dict)

    def document(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": TYPE_PREFIX + self.slug, "title": self.title, "status": self.status,
                               "detail": self.detail}
        if instance:
            doc["instance"] = instance
        if self.param:
            doc["param"] = self.param
        return doc

    def response(self, instance: str | None = None) -> Response:
        return Response(orjson.dumps(self.document(instance)), status_code=self.status,
                        headers=dict(self.headers), media_type=PROBLEM_JSON)


def bad_param(param: str, detail: str) -> Problem:
    return Problem(400, "invalid-query", "Invalid query parameter", f"{param}: {detail}", param)


def unavailable(what: str, detail: str) -> Problem:
    return Problem(503, f"{what}-unavailable", f"{what.capitalize()} unavailable", detail,
                   headers={"Retry-After": "2"})
