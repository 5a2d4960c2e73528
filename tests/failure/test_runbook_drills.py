"""Runbook drills: a failure induced in the middle of a rush, then the runbook's own local-stack
Mitigation steps (its ``coffee-rt`` commands, parsed from the file, in the order written, run
through the real CLI against this stack) and nothing else: no supervisor runs and nothing is
watched, so a `coffee-rt local up` step starts a supervisor that looks after what that step names
only. Every order that got a 202 must then be counted exactly once in Postgres and Redis; a runbook
whose steps do not bring the server back fails here (the first test shows that it would)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from coffee_rt.alerts.runbooks import local_mitigation
from coffee_rt.drill import PIPELINE, TARGETS, Rush, expected_totals, settled_totals, target_processes, wait_exact
from coffee_rt.local import supervisor
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import LocalStack

SERVERS = [*PIPELINE, "dashboard"]  # the failure suite's stack
ORDERS = 2000
OUTAGE = 15.0  # the failure lasts this long before the runbook's steps start
# The failure suite's default cases: a killed Postgres, a killed Flink, a hung Kafka.
CASES = [("CoffeeRtPostgresDown", "postgres", "kill"), ("CoffeeRtFlinkJobNotRunning", "flink", "kill"),
         ("CoffeeRtKafkaBrokerDown", "kafka", "stop")]


def cli_env(settings: LocalSettings) -> dict[str, str]:
    """The environment under which `coffee-rt` addresses this stack (its ports and state folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFEE_RT_")}
    env["COFFEE_RT_STATE"] = str(settings.state_dir)
    for name in type(settings).model_fields:
        if name.endswith(("_port", "_port_base")):
            env[f"COFFEE_RT_{name.upper()}"] = str(getattr(settings, name))
    assert LocalSettings.from_env(env).ports() == settings.ports()
    return env


def run_steps(stack: LocalStack, runbook: str) -> list[str]:
    """The runbook's local mitigation, step by step; each must succeed. Returns the lines run."""
    steps = local_mitigation(runbook)
    assert steps, f"{runbook}.md: no `coffee-rt` step in its Mitigation section for the local stack"
    env = cli_env(stack.settings)
    for step in steps:
        result = subprocess.run([sys.executable, "-m", "coffee_rt.cli", *step.argv[1:]], env=env, capture_output=True,
                                text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"{runbook}.md: `{step.line}` exited {result.returncode}: " \
                                       f"{(result.stdout + result.stderr)[-2000:]}"
    return [step.line for step in steps]


@pytest.fixture()
def unsupervised(pipeline: LocalStack) -> Iterator[LocalStack]:
    """No supervisor and nothing watched: nothing restarts the failed server but the runbook's steps.
    Afterwards the supervisor a step started is stopped and what the drill left down started again."""
    supervisor.supervisor_process(pipeline.settings).stop()
    supervisor.unwatch(pipeline.settings, None)
    yield pipeline
    supervisor.supervisor_process(pipeline.settings).stop()
    supervisor.unwatch(pipeline.settings, None)
    for process in target_processes(pipeline, "kafka"):
        process.stop()  # a hung Kafka a failed drill left behind (a SIGSTOPped process takes SIGKILL)
    left_down = [name for name in SERVERS if not _running(pipeline, name)]
    if left_down:
        pipeline.up(left_down)


def _running(stack: LocalStack, name: str) -> bool:
    """Its processes alive (a server a busy machine answers slowly is not restarted); the job: in Flink."""
    processes = stack[name].processes()
    return all(p.is_running() for p in processes) if processes else stack[name].health().ok


def induce(stack: LocalStack, target: str, how: str) -> None:
    for process in target_processes(stack, target):
        pid = process.pid()
        assert pid is not None, f"{process.name} is not running"
        if how == "kill":
            process.kill()
        else:
            os.killpg(pid, signal.SIGSTOP)


def test_the_wrong_runbook_does_not_bring_postgres_back(unsupervised: LocalStack) -> None:
    """What makes a drill fail: the Redis runbook's steps run for a killed Postgres leave it down."""
    stack = unsupervised
    induce(stack, "postgres", "kill")
    assert run_steps(stack, "CoffeeRtRedisDown") == ["coffee-rt local up redis redis-exporter"]
    time.sleep(10)
    assert not stack["postgres"].health().ok
    assert run_steps(stack, "CoffeeRtPostgresDown") == ["coffee-rt local up postgres postgres-exporter"]
    assert stack["postgres"].health().ok


@pytest.mark.parametrize(("runbook", "target", "how"), CASES, ids=[f"{t}-{h}" for _, t, h in CASES])
def test_runbook_mitigation_restores_exact_totals(unsupervised: LocalStack, ingest_tokens: dict[str, str],
                                                  runbook: str, target: str, how: str) -> None:
    stack = unsupervised
    base = settled_totals(stack)
    rush = Rush(stack.settings.ingest_url, ingest_tokens, ORDERS).start()
    rush.wait_accepted(ORDERS // 3)
    induce(stack, target, how)
    failed_at = time.monotonic()
    time.sleep(OUTAGE)
    lines = run_steps(stack, runbook)
    rush.join()
    assert not rush.refused and len(rush.accepted) == ORDERS, rush.refused[:3]
    component = TARGETS[target][0]
    recovered = wait_exact(stack, expected_totals(rush.accepted, base), timeout=300,
                           also=lambda: stack[component].health().ok and stack["job"].health().ok)
    print(f"\n{runbook} ({target} {how}): ran {lines}; exact again {time.monotonic() - failed_at:.1f} s after "
          f"the failure ({recovered:.1f} s after the rush ended; {rush.retries} client retries)")
