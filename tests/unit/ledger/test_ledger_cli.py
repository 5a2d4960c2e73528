"""`coffee-rt audit` and `coffee-rt rebuild` (history and --live): bad input is exit 2 before any server is asked;
the table."""

from __future__ import annotations

import pytest
from coffee_ledger.compare import Count, Row

from coffee_rt.audit import table
from coffee_rt.cli import main


@pytest.mark.parametrize("argv", [
    ["audit", "--day", "2026-02-30"],
    ["audit", "--day", "today"],
    ["rebuild", "--from", "2026-3-1"],
    ["rebuild", "--from", "2026-03-05", "--to", "2026-03-01"],
    ["rebuild"],
    ["rebuild", "--live", "--from", "2026-03-01"],
    ["rebuild", "--live", "--to", "2026-03-01"],
    ["rebuild", "--live", "--store", "store-01"],
    ["rebuild", "--from", "2026-03-01", "--day", "2026-03-01"],
    ["rebuild", "--live", "--day", "2026-02-30"],
    ["rebuild", "--live", "--day", "yesterday"],
    ["rebuild", "--live", "--day", "2020-01-01"],  # beyond the live view: history is --from
    ["rebuild", "--live", "--day", "2999-01-01"],  # not begun
])
def test_bad_input_is_exit_2_with_a_message(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("coffee-rt: error: ") and "Traceback" not in err


def test_table_shows_counts_and_signed_differences() -> None:
    rows = [Row("_all", "2026-03-05", Count(41, 52870), Count(41, 52870), None),
            Row("store-01", "2026-03-05", Count(11, 14210), Count(10, 13000), Count(18, 12976)),
            Row("store-02", "2026-01-02", Count(3, 900), Count(3, 900), None, complete=False)]
    lines = table(rows).splitlines()
    assert lines[0].split() == ["STORE", "DAY", "TOPIC", "POSTGRES", "REDIS", "DIFFERENCES"]
    assert lines[1].split() == ["_all", "2026-03-05", "41", "/", "52870", "41", "/", "52870", "-", "ok"]
    assert lines[2].endswith("postgres -1 orders -1210 cents; redis +7 orders -1234 cents")
    assert lines[3].endswith("topic incomplete (beyond retention)")
