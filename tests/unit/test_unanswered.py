"""A server that never answers, or a closed port, ends coffee-rt with a message that names the
component, what it waited for and its log, and exit code 4: never a raw traceback. Real sockets:
a listener that accepts connections and never replies, and a port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from coffee_rt.cli import main
from coffee_rt.errors import StartupError
from coffee_rt.local.components.job import FlinkJob
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import unanswered


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever reads or answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture()
def closed_port() -> int:
    """A port nobody listens on (bound once to learn a free one, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def settings(tmp_path: Path, **ports: int) -> LocalSettings:
    return LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", **ports)  # type: ignore[arg-type]


def test_a_flink_that_never_answers_names_the_job_what_it_waited_for_and_its_log(
        tmp_path: Path, silent_port: int) -> None:
    job = FlinkJob(settings(tmp_path, flink_rest_port=silent_port))
    with pytest.raises(StartupError) as raised:
        job.after_start(lambda _: None)
    assert raised.value.exit_code == 4
    assert str(raised.value) == (
        f"job: Flink REST at http://127.0.0.1:{silent_port}/jobs/overview did not answer its list of jobs: "
        f"ReadTimeout: timed out; read its log: {tmp_path}/state/logs/flink-jobmanager.log")


def test_up_job_against_a_closed_port_exits_4_with_the_component_and_its_log(
        tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COFFEE_RT_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("COFFEE_RT_FLINK_REST_PORT", str(closed_port))
    assert main(["local", "up", "job"]) == 4
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (f"coffee-rt: error: job: Flink REST at http://127.0.0.1:{closed_port}/jobs/overview did not "
                   f"answer its list of jobs: ConnectError: [Errno 111] Connection refused; read its log: "
                   f"{tmp_path}/state/logs/flink-jobmanager.log")


def test_an_unanswered_request_is_put_down_to_the_component_on_that_port(tmp_path: Path, silent_port: int) -> None:
    with pytest.raises(httpx.ReadTimeout) as raised:
        httpx.post(f"http://127.0.0.1:{silent_port}/v1/orders", content=b"{}", timeout=0.5)
    assert unanswered(raised.value, settings(tmp_path, redis_port=silent_port)) == (
        f"redis at http://127.0.0.1:{silent_port}/v1/orders did not answer (ReadTimeout: timed out); read its "
        f"log: {tmp_path}/state/logs/redis.log; `coffee-rt local status redis` shows its health")


def test_a_refused_postgres_connection_names_postgres(tmp_path: Path, closed_port: int) -> None:
    with pytest.raises(psycopg.OperationalError) as raised:
        psycopg.connect(f"postgresql://coffee@127.0.0.1:{closed_port}/coffee", connect_timeout=2)
    message = unanswered(raised.value, settings(tmp_path, postgres_port=closed_port))
    assert message.startswith(f"postgres at 127.0.0.1:{closed_port} did not answer (OperationalError: ")
    assert message.endswith(f"read its log: {tmp_path}/state/logs/postgres.log; "
                            "`coffee-rt local status postgres` shows its health")


def test_the_cli_turns_an_unanswered_server_into_exit_4(
        tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COFFEE_RT_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("COFFEE_RT_POSTGRES_PORT", str(closed_port))
    code = main(["db", "migrate"])
    err = capsys.readouterr().err
    assert (code, "Traceback" in err) == (4, False), err
    assert err.startswith(f"coffee-rt: error: postgres at 127.0.0.1:{closed_port} did not answer")
