"""The CLI's bad-input paths: clear message, meaningful exit code, nothing started."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffee_rt.cli import main


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throwaway state folder and ports nobody uses, so nothing here touches a real stack."""
    monkeypatch.setenv("COFFEE_RT_STATE", str(tmp_path / "state"))
    for name, port in {"KAFKA_PORT": 41092, "KAFKA_CONTROLLER_PORT": 41093, "FLINK_REST_PORT": 41081,
                       "FLINK_RPC_PORT": 41123, "FLINK_AUX_PORT_BASE": 41130, "POSTGRES_PORT": 41432,
                       "REDIS_PORT": 41379}.items():
        monkeypatch.setenv(f"COFFEE_RT_{name}", str(port))
    yield tmp_path / "state"


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["local", "up", "--help"])
    assert exited.value.code == 0
    assert "COMPONENT" in capsys.readouterr().out


def test_unknown_component_is_a_usage_error(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "up", "kafak"]) == 2
    err = capsys.readouterr().err
    assert "unknown component 'kafak'" in err
    assert "known components: postgres, redis, kafka" in err
    assert not isolated.exists()


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "explode"]) == 2
    assert "invalid choice: 'explode'" in capsys.readouterr().err


def test_invalid_port_setting_names_the_variable(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COFFEE_RT_REDIS_PORT", "not-a-port")
    assert main(["local", "up", "redis"]) == 2
    assert "COFFEE_RT_REDIS_PORT: Input should be a valid integer" in capsys.readouterr().err


INVALID_CPU_SETTINGS = [
    *((setting, value) for setting in ("flink_niceness", "background_niceness") for value in ("-1", "20", "high")),
    ("background_cpu", "idle "), ("background_cpu", "realtime"), ("background_cpu", ""),
    ("order_path_cpus", "Split"), ("order_path_cpus", "0,1"), ("order_path_cpus", ""),
]


@pytest.mark.parametrize(("setting", "value"), INVALID_CPU_SETTINGS)
def test_invalid_cpu_setting_is_refused_before_anything_starts(
        isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setting: str,
        value: str) -> None:
    monkeypatch.setenv(f"COFFEE_RT_{setting.upper()}", value)
    assert main(["local", "up", "redis"]) == 2
    assert f"COFFEE_RT_{setting.upper()}: " in capsys.readouterr().err
    assert not (isolated / "run").exists()  # no pid file folder: nothing was started


def test_two_components_on_one_port_is_rejected(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COFFEE_RT_REDIS_PORT", "41432")
    assert main(["local", "status"]) == 2
    assert "redis_port and postgres_port both use port 41432" in capsys.readouterr().err


def test_port_in_use_is_reported_and_nothing_starts(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 41379))
        squatter.listen()
        assert main(["local", "up", "redis"]) == 4
    err = capsys.readouterr().err
    assert "redis: port 41379 on 127.0.0.1 is in use by another process" in err
    assert not (isolated / "run" / "redis.pid").exists()


def test_missing_java_is_a_prerequisite_error(isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert main(["local", "up", "kafka"]) == 3
    assert "Java 17+ is required" in capsys.readouterr().err
    assert not (isolated / "run" / "kafka.pid").exists()


def test_logs_of_a_component_never_started(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "logs", "redis"]) == 1
    assert "redis has no log yet" in capsys.readouterr().err


def test_logs_rejects_a_bad_line_count(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "logs", "redis", "--lines", "0"]) == 2
    assert "--lines must be at least 1" in capsys.readouterr().err


def test_status_of_a_stopped_stack_exits_one(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "status", "--json"]) == 1
    assert '"state": "stopped"' in capsys.readouterr().out


def test_down_with_nothing_running(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "down"]) == 0
    assert "nothing was running" in capsys.readouterr().out


def test_flink_errors_lead_with_the_root_cause() -> None:
    from coffee_flink.rest import FlinkRestError

    body = ('{"errors":["org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\\n'
            '\\tat x.y(Z.java:1)\\nCaused by: java.lang.RuntimeException: wrapper\\n'
            'Caused by: java.lang.IllegalStateException: Cannot map savepoint state for operator abc"]}')
    error = FlinkRestError("POST", "/jars/x/run", 400, body)
    assert str(error) == ("Flink REST POST /jars/x/run answered 400: "
                          "java.lang.IllegalStateException: Cannot map savepoint state for operator abc")
