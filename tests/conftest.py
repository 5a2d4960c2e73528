"""Shared fixtures: the real servers of the local stack, started by the local stack's own code.

Tests run their own stack (other ports, state under .state/test) so they never touch a
developer's running stack. COFFEE_RT_TEST_KEEP=1 leaves it running after the session, and
the next session reuses it; by default it is stopped and its state wiped at the start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import LocalStack
from coffee_rt.paths import REPO_ROOT

# Several test sessions (e.g. two developers' worktrees) can run side by side with other offsets.
PORT_OFFSET = int(os.environ.get("COFFEE_RT_TEST_PORT_OFFSET", "10000"))
TEST_STATE = REPO_ROOT / ".state" / f"test-{PORT_OFFSET}"
KEEP = os.environ.get("COFFEE_RT_TEST_KEEP") == "1"


def make_test_settings(state_dir: Path = TEST_STATE, offset: int = PORT_OFFSET) -> LocalSettings:
    """The test stack's settings: every port shifted by ``offset`` from the developer defaults."""
    return LocalSettings.shifted(offset, state_dir)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    stack = LocalStack(make_test_settings(), progress=lambda msg: print(f"[test-stack] {msg}", flush=True))
    if not KEEP:
        stack.down()
        shutil.rmtree(TEST_STATE, ignore_errors=True)
    yield stack
    if not KEEP:
        stack.down()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: LocalStack) -> str:
    local_stack.up(["kafka"])
    return local_stack.settings.kafka_bootstrap


@pytest.fixture(scope="session")
def postgres_dsn(local_stack: LocalStack) -> str:
    local_stack.up(["postgres"])
    return local_stack.settings.postgres_dsn


@pytest.fixture(scope="session")
def redis_url(local_stack: LocalStack) -> str:
    local_stack.up(["redis"])
    return local_stack.settings.redis_url


@pytest.fixture(scope="session")
def flink_rest_url(local_stack: LocalStack) -> str:
    local_stack.up(["flink"])
    return local_stack.settings.flink_rest_url


@pytest.fixture(scope="session")
def ingest_url(local_stack: LocalStack) -> str:
    """The order-ingest service (and the Kafka it writes to); tokens: the ``ingest_tokens`` fixture."""
    local_stack.up(["kafka", "ingest"])
    return local_stack.settings.ingest_url


@pytest.fixture(scope="session")
def ingest_tokens(local_stack: LocalStack, ingest_url: str) -> dict[str, str]:
    """store_id -> bearer token of the test stack's ingest service (the load generator's stores)."""
    from coffee_rt.local.components.ingest import Ingest

    component = local_stack["ingest"]
    assert isinstance(component, Ingest)
    return component.dev_tokens()


@pytest.fixture(scope="session")
def dashboard_url(local_stack: LocalStack) -> str:
    """The live dashboard with the Redis and Postgres it reads (token: the ``dashboard_token`` fixture).
    Ingest, Kafka and Flink are not started for it: its ops panel then shows them unreachable."""
    local_stack.up(["postgres", "redis", "dashboard"])
    return local_stack.settings.dashboard_url


@pytest.fixture(scope="session")
def dashboard_token(local_stack: LocalStack, dashboard_url: str) -> str:
    """The test stack's dashboard bearer token."""
    from coffee_rt.local.components.dashboard import Dashboard

    component = local_stack["dashboard"]
    assert isinstance(component, Dashboard)
    return component.dev_token()


@pytest.fixture(scope="session")
def k8s(local_stack: LocalStack) -> Path:
    """A real control plane (etcd, apiserver, controller-manager, scheduler, kwok node); the admin kubeconfig."""
    from coffee_rt.local.components.k8s import Kubernetes

    local_stack.up(["k8s"])
    component = local_stack["k8s"]
    assert isinstance(component, Kubernetes)
    return component.kubeconfig
