"""The failure suite: the whole local stack (tests/conftest.py's fixtures, its default CPU policy), a
rush of orders, one server killed or hung in the middle (coffee_rt.drill). Marked ``integration``:
it needs the real servers. The whole kill matrix runs with COFFEE_RT_FAILURE_MATRIX=1."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from coffee_rt.drill import PIPELINE, Result, table
from coffee_rt.local import supervisor
from coffee_rt.local.stack import LocalStack

SERVERS = [*PIPELINE, "dashboard"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/failure/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def pipeline(local_stack: LocalStack, ingest_tokens: dict[str, str]) -> LocalStack:
    """Every server of the order path running, the job and the dashboard included."""
    local_stack.up(SERVERS)
    return local_stack


@pytest.fixture(scope="module")
def supervised(pipeline: LocalStack) -> Iterator[list[str]]:
    """The supervisor `local up` starts, here in a thread; yields what it said.

    Per module, never longer: later tests of the session stop the stack's job to submit their own,
    and a supervisor still watching would submit it again beside them. Two submissions at once
    leave PyFlink's driver gateway set in the JobManager, which then refuses every later one."""
    said: list[str] = []

    def say(message: str) -> None:
        said.append(message)
        print(f"[supervisor] {message}", flush=True)

    supervisor.watch(pipeline.settings, SERVERS)
    watcher = supervisor.Supervisor(pipeline, say=say)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    yield said
    watcher.stop()
    thread.join(10)
    supervisor.unwatch(pipeline.settings, None)


@pytest.fixture(scope="session")
def drill_results() -> Iterator[list[Result]]:
    """Every drill of the session, printed as one table at the end."""
    results: list[Result] = []
    yield results
    if results:
        print("\n" + table(results), flush=True)
