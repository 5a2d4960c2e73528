"""The benchmarks' command lines: bad arguments are refused before anything starts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from coffee_rt.paths import REPO_ROOT


def _benchmark(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _ingest_latency() -> ModuleType:
    return _benchmark("ingest_latency")


def test_repeat_below_one_is_refused_with_usage_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _ingest_latency().parse_args(["--repeat", "0"])
    assert exit_info.value.code == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err


def test_p99_spread_reports_min_median_and_max() -> None:
    assert _ingest_latency().p99_spread([9.0, 4.5, 20.25, 6.0]) == (
        "client p99 over 4 runs: min 4.50 ms, median 7.50 ms, max 20.25 ms")


def test_job_benchmark_rates_are_parsed_and_empty_means_bulk_only() -> None:
    job_latency = _benchmark("job_latency")
    assert job_latency.parse_args(["--rates", "100,1000,2500.5"]).rates == [100.0, 1000.0, 2500.5]
    assert job_latency.parse_args(["--rates", ""]).rates == []
    assert job_latency.parse_args([]).rates == [100.0, 1000.0]


@pytest.mark.parametrize(("text", "message"), [
    ("100,fast", "not a comma-separated list of numbers"),
    ("100,0", "every rate must be a positive number"),
    ("-5", "every rate must be a positive number"),
    ("nan", "every rate must be a positive number"),
    ("inf", "every rate must be a positive number"),
])
def test_job_benchmark_refuses_bad_rates_with_usage_exit_code(
        text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _benchmark("job_latency").parse_args([f"--rates={text}"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_ingest_benchmark_orders_follow_the_seed_and_default_to_a_random_one() -> None:
    ingest_latency = _ingest_latency()
    from coffee_orders.loadgen import DEFAULT_STORES

    tokens = {DEFAULT_STORES[0].store_id: "token"}

    def ids(seed: int) -> set[bytes]:
        requests = ingest_latency.build_requests(50, "http://127.0.0.1:1", tokens, seed)
        return {r.split(b'"message_id":"', 1)[1][:36] for r in requests}

    assert len(ids(7)) == 50
    assert ids(7) == ids(7)
    assert not ids(7) & ids(8)
    assert ingest_latency.parse_args([]).seed is None
    assert ingest_latency.parse_args(["--seed", "42"]).seed == 42


def test_the_pacer_wakes_at_the_instant_asked_never_before() -> None:
    """A timerfd on perf_counter's clock: the loop's own timers are a millisecond coarse."""
    import asyncio
    import time

    bench = _ingest_latency()

    async def run() -> list[float]:
        pacer = bench.Pacer(asyncio.get_running_loop())
        early: list[float] = []
        try:
            for step in range(20):
                when = time.perf_counter() + 0.0003 + step * 0.0001
                await pacer.until(when)
                early.append(when - time.perf_counter())
            await pacer.until(time.perf_counter() - 1)  # in the past: returns at once
        finally:
            pacer.close()
        return early

    loop = asyncio.new_event_loop()
    try:
        early = loop.run_until_complete(run())
    finally:
        loop.close()
    assert len(early) == 20 and max(early) <= 0  # never woken before its instant (lateness is not asserted)


def test_the_timeline_has_one_line_per_measured_request_in_due_order(tmp_path: Path) -> None:
    bench = _ingest_latency()
    result = bench.StepResult(1000, 3, 3, {}, 1000.0, [0.002, 0.001, 0.0035], [0.001] * 3, [0.0] * 3,
                              [1700000000.002, 1700000000.001, 1700000000.003], None, None, None, {})
    path = tmp_path / "t.tsv"
    bench.write_timeline(path, result)
    assert path.read_text() == "1700000000.0010\t1.000\n1700000000.0020\t2.000\n1700000000.0030\t3.500\n"
