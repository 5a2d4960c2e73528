"""`local up` starts servers side by side and each client once every server it may talk to listens;
after a failure nothing more starts and the failure is what `up` raises."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from coffee_rt.errors import StartupError
from coffee_rt.local.components.base import Component
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import NEEDS, SERVERS, LocalStack


class Recorder:
    """Stands in for ``LocalStack._up_one``: records what started and what was up by then."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.lock = threading.Lock()
        self.up: set[str] = set()
        self.seen_up: dict[str, set[str]] = {}

    def __call__(self, component: Component) -> None:
        with self.lock:
            self.seen_up[component.name] = set(self.up)
        if component.name == self.fail:
            raise StartupError(f"{component.name}: did not start")
        with self.lock:
            self.up.add(component.name)


def _stack(tmp_path: Path, recorder: Recorder) -> LocalStack:
    stack = LocalStack(LocalSettings.shifted(40_000, tmp_path))
    stack._up_one = recorder  # type: ignore[method-assign]
    stack.status = lambda names=None: []  # type: ignore[method-assign]
    return stack


def test_every_client_starts_after_every_server(tmp_path: Path) -> None:
    recorder = Recorder()
    _stack(tmp_path, recorder).up()
    assert set(recorder.seen_up) == set(NEEDS)
    for client in set(NEEDS) - SERVERS:
        assert recorder.seen_up[client] >= SERVERS, client


def test_a_component_not_in_the_table_starts_after_those_listed_before_it(tmp_path: Path) -> None:
    recorder = Recorder()
    stack = _stack(tmp_path, recorder)
    stack.up(["kafka", "redis", "prometheus"])
    assert recorder.seen_up["prometheus"] == {"kafka", "redis"}


def test_after_a_failure_nothing_more_starts_and_the_failure_is_raised(tmp_path: Path) -> None:
    recorder = Recorder(fail="kafka")
    with pytest.raises(StartupError, match="kafka: did not start"):
        _stack(tmp_path, recorder).up()
    assert not set(recorder.seen_up) & (set(NEEDS) - SERVERS)
