"""Fixtures of the ingest service tests: an HTTP client on the test stack's service, end offsets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ingest_helpers import Offsets


@pytest.fixture(scope="session")
def offsets(kafka_bootstrap: str) -> Iterator[Offsets]:
    o = Offsets(kafka_bootstrap)
    yield o
    o.consumer.close()


@pytest.fixture(scope="session")
def client(ingest_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ingest_url, timeout=15) as c:
        yield c
