"""The OpenAPI 3.1 document served at /openapi.json, built from the one order schema."""

from __future__ import annotations

from typing import Any

from coffee_ingest.settings import IngestSettings
from coffee_orders.schema import json_schema

_REF = "#/components/schemas/"


def _problem_schema() -> dict[str, Any]:
    field_error = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("field", "pointer", "message", "type")},
        "required": ["field", "pointer", "message", "type"],
    }
    return {
        "type": "object",
        "description": "RFC 9457 problem document.",
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "reason": {"type": "string"},
            "errors": {"type": "array", "items": field_error},
        },
        "required": ["type", "title", "status", "detail"],
    }


def _accepted_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "message_id": {"type": "string", "format": "uuid"},
            "topic": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
        },
        "required": ["message_id", "topic", "partition", "offset"],
    }


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": _REF + "Problem"}}}}


def build_openapi(settings: IngestSettings) -> dict[str, Any]:
    order = json_schema()
    schemas: dict[str, Any] = dict(order.pop("$defs", {}))
    schemas["Order"] = order
    schemas["Problem"] = _problem_schema()
    schemas["Accepted"] = _accepted_schema()
    schemas["Batch"] = {
        "type": "object",
        "properties": {"orders": {"type": "array", "items": {"$ref": _REF + "Order"},
                                  "minItems": 1, "maxItems": settings.max_batch_orders}},
        "required": ["orders"],
        "additionalProperties": False,
    }
    schemas["BatchResult"] = {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "status": {"type": "integer", "description": "202, or the status a single POST would have had."},
            "message_id": {"type": "string", "format": "uuid"},
            "topic": {"type": "string"}, "partition": {"type": "integer"}, "offset": {"type": "integer"},
            "problem": {"$ref": _REF + "Problem"},
        },
        "required": ["index", "status"],
    }
    schemas["BatchResponse"] = {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer"}, "rejected": {"type": "integer"}, "unavailable": {"type": "integer"},
            "results": {"type": "array", "items": {"$ref": _REF + "BatchResult"}},
        },
        "required": ["accepted", "rejected", "unavailable", "results"],
    }
    common_errors = {
        "400": _problem("Malformed JSON."),
        "401": _problem("Missing or invalid bearer token."),
        "413": _problem(f"Body larger than the limit ({settings.max_body_bytes} bytes for one order)."),
        "408": _problem("The headers or the body did not arrive in time (INGEST_HEADER_TIMEOUT, "
                        "INGEST_BODY_TIMEOUT); the connection is closed."),
        "415": _problem("Content-Type is not application/json."),
        "422": _problem("The order is invalid; `errors` names each field."),
        "503": _problem("Kafka did not acknowledge in time; retry after Retry-After with the same message_id."),
    }
    json_body = {"application/json": {"schema": {"$ref": _REF + "Order"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "coffee-rt order ingest", "version": "1.0.0",
                 "description": "Write path for orders: 202 only once Kafka has the order. See docs/ingest.md. "
                                "This document and the metrics are served on the internal port only."},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"storeToken": {"type": "http", "scheme": "bearer",
                                               "description": "Per-store token; may post only its own store_id."}},
        },
        "security": [{"storeToken": []}],
        "paths": {
            "/v1/orders": {"post": {
                "operationId": "postOrder",
                "summary": "Accept one order (idempotent by message_id).",
                "requestBody": {"required": True, "content": json_body},
                "responses": {
                    "202": {"description": "Stored in Kafka.",
                            "content": {"application/json": {"schema": {"$ref": _REF + "Accepted"}}}},
                    "403": _problem("The token belongs to another store."),
                    **common_errors,
                },
            }},
            "/v1/orders:batch": {"post": {
                "operationId": "postOrderBatch",
                "summary": f"Accept up to {settings.max_batch_orders} orders; answers per order.",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": {"$ref": _REF + "Batch"}}}},
                "responses": {
                    "200": {"description": "Per-order results (each with its own status).",
                            "content": {"application/json": {"schema": {"$ref": _REF + "BatchResponse"}}}},
                    **common_errors,
                },
            }},
            "/healthz": {"get": {"operationId": "healthz", "security": [], "summary": "Liveness.",
                                 "responses": {"200": {"description": "The process serves requests."}}}},
            "/readyz": {"get": {"operationId": "readyz", "security": [], "summary": "Readiness: Kafka reachable.",
                                "responses": {"200": {"description": "Ready."},
                                              "503": _problem("Kafka unreachable.")}}},
        },
    }
