"""ManagedProcess stops exactly what it started: by pid and start time, never by name."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coffee_rt.local.process import ManagedProcess

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def make(tmp_path: Path, name: str = "sleeper") -> ManagedProcess:
    return ManagedProcess(name=name, argv=SLEEPER, log_file=tmp_path / f"{name}.log", pid_file=tmp_path / f"{name}.pid")


def test_start_is_idempotent_and_stop_stops_it(tmp_path: Path) -> None:
    process = make(tmp_path)
    pid = process.start()
    assert process.start() == pid
    assert process.is_running()
    assert process.stop(timeout=5) is True
    assert process.pid() is None
    assert not process.pid_file.exists()
    assert process.stop() is False


def test_stop_leaves_a_lookalike_process_alone(tmp_path: Path) -> None:
    lookalike = subprocess.Popen(SLEEPER)
    try:
        process = make(tmp_path)
        process.start()
        process.stop(timeout=5)
        assert lookalike.poll() is None
    finally:
        lookalike.kill()
        lookalike.wait()


def test_a_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    stranger = subprocess.Popen(SLEEPER)
    try:
        process = make(tmp_path)
        # A pid file naming a live process that started at another time than recorded.
        process.pid_file.write_text(json.dumps({"pid": stranger.pid, "start_ticks": 1}))
        assert process.pid() is None
        assert process.stop() is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_crashed_process_is_reported(tmp_path: Path) -> None:
    process = ManagedProcess(name="crasher", argv=[sys.executable, "-c", "raise SystemExit(3)"],
                             log_file=tmp_path / "c.log", pid_file=tmp_path / "c.pid")
    process.start()
    for _ in range(100):
        if process.exited_early():
            break
        time.sleep(0.05)
    assert process.exited_early()
    assert "starting crasher" in process.tail()


def test_niceness_applies_to_the_started_process(tmp_path: Path) -> None:
    process = ManagedProcess(name="nice", argv=SLEEPER, log_file=tmp_path / "nice.log",
                             pid_file=tmp_path / "nice.pid", niceness=7)
    pid = process.start()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(fields[16]) == 7  # field 19 of stat: nice
    finally:
        process.stop(timeout=5)


def test_a_process_run_as_a_user_has_that_users_group_only(tmp_path: Path) -> None:
    import pwd

    entry = pwd.getpwnam("nobody")
    tmp_path.chmod(0o777)
    process = ManagedProcess(name="as-nobody", argv=["sleep", "60"], log_file=tmp_path / "n.log",
                             pid_file=tmp_path / "n.pid", user="nobody")
    pid = process.start()
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        assert status["Uid"].split()[0] == str(entry.pw_uid)
        assert status["Gid"].split()[0] == str(entry.pw_gid)  # not root's group
        assert status["Groups"].split() == []
    finally:
        process.stop(timeout=5)


@pytest.mark.parametrize("user", [None, "nobody"])  # a child that dropped root cannot set it itself
def test_niceness_applies_to_the_sessions_autogroup_too(tmp_path: Path, user: str | None) -> None:
    """Each started server leads a session, so with autogroup it is a scheduling group of its
    own: a process nice alone would not make it yield to the other servers."""
    if not Path("/proc/self/autogroup").exists():
        pytest.skip("this kernel has no autogroup")
    tmp_path.chmod(0o777)
    process = ManagedProcess(name="nice", argv=["sleep", "60"], log_file=tmp_path / "nice.log",
                             pid_file=tmp_path / "nice.pid", niceness=7, user=user)
    pid = process.start()
    try:
        assert Path(f"/proc/{pid}/autogroup").read_text().split()[-2:] == ["nice", "7"]
        assert Path(f"/proc/{pid}/autogroup").read_text() != Path("/proc/self/autogroup").read_text()
    finally:
        process.stop(timeout=5)


def test_the_order_taking_path_keeps_the_cpu_priority_and_the_rest_yields(tmp_path: Path) -> None:
    from coffee_rt.local.settings import LocalSettings
    from coffee_rt.local.stack import LocalStack

    stack = LocalStack(LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                                     flink_niceness=12, background_niceness=3))
    (tmp_path / "state" / "dashboard").mkdir(parents=True)
    (tmp_path / "state" / "dashboard" / "dev-token").write_text("token")  # what its prepare step writes
    niceness = {name: {p.niceness for p in stack[name].processes()}
                for name in ("ingest", "kafka", "flink", "postgres", "redis", "dashboard")}
    assert niceness == {"ingest": {0}, "kafka": {0}, "flink": {12}, "postgres": {3}, "redis": {3}, "dashboard": {3}}
