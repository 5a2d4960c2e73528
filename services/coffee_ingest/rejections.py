"""The ingest's rejections: each one an RFC 9457 problem (``coffee_service.problems``) with a ``reason``.

Every rejection names what was wrong: ``errors`` lists each bad field (from pydantic's errors, see
:func:`validation_problem`), and ``reason`` is the short word the rejection metric
(``coffee_ingest_rejections_total``) counts by, from the fixed set :data:`REASONS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from coffee_service.problems import FieldError, Problem


def field_name(loc: Sequence[int | str]) -> str:
    """``("items", 0, "quantity")`` -> ``items[0].quantity``; the whole body is ``body``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def json_pointer(loc: Sequence[int | str]) -> str:
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)


# pydantic error type -> rejection reason (a small, fixed label set for the metric).
_REASONS = {
    "extra_forbidden": "unknown_field",
    "missing": "missing_field",
    "total_mismatch": "total_mismatch",
    "placed_at_window": "placed_at_window",
    "rfc3339": "invalid_timestamp",
    "timezone_aware": "invalid_timestamp",
    "datetime_from_date_parsing": "invalid_timestamp",
    "datetime_parsing": "invalid_timestamp",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "too_short": "invalid_value",
}
_WRONG_TYPE = {"int_type", "string_type", "list_type", "model_type", "model_attributes_type", "datetime_type",
               "uuid_type", "dict_type", "bool_type", "int_from_float", "literal_error", "enum", "uuid_parsing"}
REASONS = frozenset({*_REASONS.values(), "wrong_type", "too_many_items", "invalid_value", "malformed_json",
                     "body_too_large", "unsupported_media_type", "unauthenticated", "forbidden_store",
                     "batch_too_large", "kafka_unavailable", "overloaded", "not_found", "method_not_allowed",
                     "internal"})


def _reason(err: Mapping[str, Any]) -> str:
    kind = str(err["type"])
    if kind == "too_long" and tuple(err["loc"])[-1:] == ("items",):
        return "too_many_items"
    if kind in _WRONG_TYPE:
        return "wrong_type"
    return _REASONS.get(kind, "invalid_value")


def validation_problem(exc: ValidationError, what: str = "order", at: tuple[int | str, ...] = ()) -> Problem:
    """422 naming every bad field (below ``at``, e.g. ``("orders", 3)`` in a batch); a JSON syntax
    error (pydantic's ``json_invalid``) is a 400 instead."""
    raw = exc.errors(include_url=False, include_input=False)
    if any(err["type"] == "json_invalid" for err in raw):
        return malformed_json(str(raw[0]["msg"]))
    errors = tuple(
        FieldError(field_name(at + tuple(err["loc"])), json_pointer(at + tuple(err["loc"])), str(err["msg"]),
                   str(err["type"]))
        for err in raw
    )
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(422, "invalid-" + what, f"Invalid {what}", f"{first.field}: {first.message}{more}",
                   reason=_reason(raw[0]), errors=errors)


def malformed_json(message: str) -> Problem:
    return Problem(400, "malformed-json", "Malformed JSON", f"the body is not valid JSON: {message}",
                   reason="malformed_json", errors=(FieldError("body", "#", message, "json_invalid"),))


def body_too_large(limit: int) -> Problem:
    return Problem(413, "body-too-large", "Request body too large",
                   f"the body must be at most {limit} bytes", reason="body_too_large",
                   errors=(FieldError("body", "#", f"more than {limit} bytes", "too_large"),))


def unsupported_media_type(got: str | None) -> Problem:
    return Problem(415, "unsupported-media-type", "Unsupported media type",
                   f"send Content-Type: application/json (got {got or 'none'!s:.100})",
                   reason="unsupported_media_type",
                   headers={"Accept-Post": "application/json"})


def unauthenticated(detail: str, error: str) -> Problem:
    return Problem(401, "unauthenticated", "Unauthenticated", detail, reason="unauthenticated",
                   headers={"WWW-Authenticate": f'Bearer realm="coffee-rt", error="{error}"'})


def forbidden_store(token_store: str, order_store: str) -> Problem:
    return Problem(403, "forbidden-store", "Forbidden store",
                   f"this token may post orders for store {token_store} only, not {order_store}",
                   reason="forbidden_store",
                   errors=(FieldError("store_id", "#/store_id", f"not allowed for this token: {order_store}",
                                      "forbidden"),))


def kafka_unavailable(retry_after_s: int, detail: str) -> Problem:
    return Problem(503, "kafka-unavailable", "Order log unavailable",
                   f"the order was not confirmed as stored ({detail}); retry with the same message_id",
                   reason="kafka_unavailable", headers={"Retry-After": str(retry_after_s)})


def overloaded(retry_after_s: int) -> Problem:
    return Problem(503, "overloaded", "Too many orders in flight",
                   "too many orders are waiting for the order log; retry with the same message_id",
                   reason="overloaded", headers={"Retry-After": str(retry_after_s)})


def batch_problem(status: int, slug: str, detail: str, reason: str, field: str = "orders") -> Problem:
    pointer = "#/" + field if field != "body" else "#"
    return Problem(status, slug, "Invalid batch", detail, reason=reason,
                   errors=(FieldError(field, pointer, detail, slug),))


def http_problem(status: int, detail: str) -> Problem:
    slug, reason = {404: ("not-found", "not_found"), 405: ("method-not-allowed", "method_not_allowed")}.get(
        status, ("http-error", "invalid_value"))
    return Problem(status, slug, detail, detail, reason=reason)


def internal_error() -> Problem:
    return Problem(500, "internal", "Internal error", "an unexpected error; the order was not accepted",
                   reason="internal")
