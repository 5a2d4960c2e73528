"""The one problem type and the one token matcher (coffee_service) in the shapes each service answers with."""

from __future__ import annotations

import hashlib
import json

from coffee_service import tokens
from coffee_service.problems import PROBLEM_JSON, FieldError, Problem, bad_param, unavailable


def test_an_ingest_rejection_has_reason_and_errors_but_no_param() -> None:
    problem = Problem(422, "invalid-order", "Invalid order", "total_cents: wrong", reason="total_mismatch",
                      errors=(FieldError("total_cents", "#/total_cents", "wrong", "total_mismatch"),))
    response = problem.response("/v1/orders")
    assert (response.status_code, response.media_type) == (422, PROBLEM_JSON)
    assert json.loads(bytes(response.body)) == {
        "type": "urn:coffee-rt:problem:invalid-order", "title": "Invalid order", "status": 422,
        "detail": "total_cents: wrong", "instance": "/v1/orders", "reason": "total_mismatch",
        "errors": [{"field": "total_cents", "pointer": "#/total_cents", "message": "wrong", "type": "total_mismatch"}],
    }


def test_a_dashboard_problem_has_param_but_no_reason_or_errors() -> None:
    assert bad_param("day", "must be a date YYYY-MM-DD").document("/api/summary") == {
        "type": "urn:coffee-rt:problem:invalid-query", "title": "Invalid query parameter", "status": 400,
        "detail": "day: must be a date YYYY-MM-DD", "instance": "/api/summary", "param": "day",
    }
    down = unavailable("redis", "connection refused")
    assert (down.status, down.slug, down.title, dict(down.headers)) == (
        503, "redis-unavailable", "Redis unavailable", {"Retry-After": "2"})
    assert down.document() == {"type": "urn:coffee-rt:problem:redis-unavailable", "title": "Redis unavailable",
                               "status": 503, "detail": "connection refused"}


def test_tokens_are_sha256_and_matched_against_every_entry() -> None:
    assert tokens.digest("abc") == hashlib.sha256(b"abc").digest()
    entries = [(tokens.digest("a"), "store-01"), (tokens.digest("b"), "store-02")]
    assert [tokens.lookup(tokens.digest(t), entries) for t in ("a", "b", "c")] == ["store-01", "store-02", None]
    assert tokens.matches(tokens.digest("b"), [d for d, _ in entries])
    assert not tokens.matches(tokens.digest("c"), [d for d, _ in entries])
    assert not tokens.matches(tokens.digest("a"), [])
    assert len({tokens.new_token() for _ in range(20)}) == 20
