"""The ingest benchmark's command line: a bad --repeat is refused before anything starts."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from coffee_rt.paths import REPO_ROOT


def _ingest_latency() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ingest_latency", REPO_ROOT / "benchmarks" / "ingest_latency.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_repeat_below_one_is_refused_with_usage_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _ingest_latency().parse_args(["--repeat", "0"])
    assert exit_info.value.code == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err


def test_p99_spread_reports_min_median_and_max() -> None:
    assert _ingest_latency().p99_spread([9.0, 4.5, 20.25, 6.0]) == (
        "client p99 over 4 runs: min 4.50 ms, median 7.50 ms, max 20.25 ms")
