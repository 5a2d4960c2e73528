"""ManagedProcess stops exactly what it started: by pid and start time, never by name."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coffee_rt.local import cpu
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


def test_background_servers_join_the_background_cgroup_and_the_order_path_does_not(tmp_path: Path) -> None:
    from coffee_rt.local.settings import LocalSettings
    from coffee_rt.local.stack import LocalStack

    def groups(background_cpu: str) -> dict[str, set[Path | None]]:
        stack = LocalStack(LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                                         background_cpu=background_cpu))  # type: ignore[arg-type]
        return {name: {p.cpu_group for p in stack[name].processes()} for name in ("ingest", "kafka", "flink", "redis")}

    (tmp_path / "state" / "dashboard").mkdir(parents=True)
    for policy in ("weight", "idle"):
        group = cpu.background_group(policy)  # type: ignore[arg-type]
        assert groups(policy) == {"ingest": {None}, "kafka": {None}, "flink": {group}, "redis": {group}}
    assert groups("nice") == {"ingest": {None}, "kafka": {None}, "flink": {None}, "redis": {None}}


def _children(pid: int) -> list[int]:
    """The children ``pid`` has forked, waiting up to 5 s for the first."""
    children: list[int] = []
    for _ in range(100):
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        if children:
            break
        time.sleep(0.05)
    assert children
    return children


@pytest.mark.parametrize("user", [None, "nobody"])  # joining needs root: it happens before the child drops it
def test_a_process_given_an_idle_group_runs_in_it_with_what_it_forks(tmp_path: Path, user: str | None) -> None:
    group = cpu.background_group("idle")
    if group is None:
        pytest.skip("no idle cgroup on this machine (needs root and a cpu controller with cpu.idle)")
    assert (group / "cpu.idle").read_text().strip() == "1"
    weighted = cpu.background_group("weight")
    assert weighted is not None and weighted.name == cpu.GROUP
    assert (weighted / "cpu.idle").read_text().strip() == "0"
    assert (weighted / "cpu.shares").read_text().strip() == cpu.V1_SHARES
    tmp_path.chmod(0o777)
    process = ManagedProcess(name="idle", argv=["sh", "-c", "sleep 60 & wait"], log_file=tmp_path / "i.log",
                             pid_file=tmp_path / "i.pid", niceness=3, cpu_group=group, user=user)
    pid = process.start()
    try:
        children = _children(pid)
        assert cpu.group_of(pid, group) and cpu.group_of(children[0], group)
        assert not cpu.group_of(os.getpid(), group)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(fields[16]) == 3
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        assert status["Uid"].split()[0] == str(pwd.getpwnam(user).pw_uid if user else 0)
    finally:
        process.stop(timeout=5)


def test_the_ingest_service_gets_the_first_cpu_and_kafka_the_others() -> None:
    assert cpu.order_path_cpus("service", [0, 1]) == {0}
    assert cpu.order_path_cpus("broker", [0, 1]) == {1}
    assert cpu.order_path_cpus("service", range(4)) == {0}
    assert cpu.order_path_cpus("broker", range(4)) == {1, 2, 3}
    # Whatever CPUs this process may use (a container's cpuset), in any order.
    assert cpu.order_path_cpus("service", {7, 2, 5}) == {2}
    assert cpu.order_path_cpus("broker", [7, 2, 5]) == {5, 7}


def test_one_cpu_confines_nothing() -> None:
    assert cpu.order_path_cpus("service", [3]) is None
    assert cpu.order_path_cpus("broker", [3]) is None


def test_only_the_order_path_is_given_cpus_and_shared_gives_none(tmp_path: Path) -> None:
    from coffee_rt.local.settings import LocalSettings
    from coffee_rt.local.stack import LocalStack

    def cpus(order_path_cpus: str) -> dict[str, set[frozenset[int] | None]]:
        stack = LocalStack(LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                                         order_path_cpus=order_path_cpus))  # type: ignore[arg-type]
        return {name: {p.cpus for p in stack[name].processes()}
                for name in ("ingest", "kafka", "flink", "postgres", "redis", "dashboard")}

    (tmp_path / "state" / "dashboard").mkdir(parents=True)
    (tmp_path / "state" / "dashboard" / "dev-token").write_text("token")
    allowed = os.sched_getaffinity(0)
    split = cpus("split")
    assert split["ingest"] == {cpu.order_path_cpus("service", allowed)}
    assert split["kafka"] == {cpu.order_path_cpus("broker", allowed)}
    assert {name: split[name] for name in ("flink", "postgres", "redis", "dashboard")} == {
        "flink": {None}, "postgres": {None}, "redis": {None}, "dashboard": {None}}
    assert cpus("shared") == {name: {None} for name in ("ingest", "kafka", "flink", "postgres", "redis", "dashboard")}


@pytest.mark.parametrize("user", [None, "nobody"])
def test_a_process_given_cpus_runs_there_with_what_it_forks(tmp_path: Path, user: str | None) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("needs two CPUs to tell a confined process from a free one")
    tmp_path.chmod(0o777)
    chosen = frozenset(allowed[-1:])
    process = ManagedProcess(name="pinned", argv=["sh", "-c", "sleep 60 & wait"], log_file=tmp_path / "p.log",
                             pid_file=tmp_path / "p.pid", cpus=chosen, user=user)
    pid = process.start()
    try:
        children = _children(pid)
        assert os.sched_getaffinity(pid) == chosen and os.sched_getaffinity(children[0]) == chosen
        assert os.sched_getaffinity(0) == set(allowed)  # the parent stays free
    finally:
        process.stop(timeout=5)


V1_MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_the_cpu_hierarchy_of_a_v1_machine_is_the_cpu_controllers_mount_at_our_own_path() -> None:
    self_cgroup = "4:memory:/some/where\n1:cpu:/\n0::/\n"
    assert cpu._cpu_hierarchy(V1_MOUNTS, self_cgroup) == Path("/sys/fs/cgroup/cpu")
    nested = "1:cpu,cpuacct:/docker/abc\n0::/\n"
    mounts = V1_MOUNTS.replace("rw,relatime,cpu ", "rw,relatime,cpu,cpuacct ")
    assert cpu._cpu_hierarchy(mounts, nested) == Path("/sys/fs/cgroup/cpu/docker/abc")


def test_no_cpu_controller_means_no_hierarchy() -> None:
    mounts = "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
    assert cpu._cpu_hierarchy(mounts, "4:memory:/\n") is None
    assert cpu._cpu_hierarchy("", "") is None


@pytest.mark.parametrize("policy", ["weight", "idle"])
def test_a_group_that_cannot_be_set_up_is_none(tmp_path: Path, policy: cpu.Policy) -> None:
    # A plain folder: mkdir works, but there is no cpu.idle, cpu.shares or cpu.weight (no cgroup filesystem).
    assert cpu.make_group(tmp_path, policy) is None
    assert cpu.make_group(tmp_path / "missing" / "parent", policy) is None


def test_jvm_accepts_a_collector_it_has_and_not_an_unknown_option() -> None:
    from coffee_rt.errors import PrerequisiteError
    from coffee_rt.local.installers import jvm_accepts, require_java

    try:
        java = require_java(17)
    except PrerequisiteError:
        pytest.skip("no Java 17 here")
    assert jvm_accepts(java, "-XX:+UseG1GC")
    assert not jvm_accepts(java, "-XX:+UseNoSuchCollectorGC")
