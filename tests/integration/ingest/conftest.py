"""Fixtures of the ingest service tests: HTTP clients on the test stack's service (its order port and
its internal port), end offsets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ingest_helpers import Offsets

from coffee_rt.local.stack import LocalStack


@pytest.fixture(scope="session")
def offsets(kafka_bootstrap: str) -> Iterator[Offsets]:
    o = Offsets(kafka_bootstrap)
    yield o
    o.consumer.close()


@pytest.fixture(scope="session")
def client(ingest_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ingest_url, timeout=15) as c:
        yield c


@pytest.fixture(scope="session")
def internal(local_stack: LocalStack, ingest_url: str) -> Iterator[httpx.Client]:
    """The service's internal port: /metrics, /openapi.json and the probes."""
    with httpx.Client(base_url=local_stack.settings.ingest_internal_url, timeout=15) as c:
        yield c
