"""No Python gauges in the job: in thread mode Flink reads them from its metrics thread by calling
into the interpreter, which crashed the TaskManager (SIGSEGV in pemja; see docs/flink-job.md)."""

from __future__ import annotations

import ast
from pathlib import Path

JOB = Path(__file__).resolve().parents[3] / "jobs" / "coffee_job"


def gauge_calls(source: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "gauge"]


def test_the_check_finds_a_gauge() -> None:
    assert gauge_calls("group.gauge('x', lambda: 1)\ngroup.counter('y')\n") == [1]


def test_the_job_registers_no_python_gauge() -> None:
    found = {path.name: lines for path in JOB.glob("*.py") if (lines := gauge_calls(path.read_text()))}
    assert found == {}
