"""Live metrics logic: business days, coalesced flushes, absolute values, windows."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from coffee_job.live_metrics import (
    DictState,
    LiveOrder,
    apply,
    collect,
    count_orders,
    day_end_epoch,
    recent_entry,
)
from coffee_live.days import business_day


def ms(*args: int, tz: object = UTC) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)  # type: ignore[arg-type]


def order(n: int, at_ms: int, lines: list[tuple[str, str, str | None, int, int]] | None = None) -> LiveOrder:
    lines = lines or [("GUA-HONEY", "Guatemala Honey 250g", "Guatemala Honey", 2, 1800)]
    return LiveOrder(f"00000000-0000-4000-8000-{n:012d}", "store-1", at_ms, "counter",
                     sum(line[4] for line in lines), sum(line[3] for line in lines), lines)


def test_business_day_follows_the_store_time_zone() -> None:
    late_utc = ms(2026, 3, 7, 23, 30)
    assert business_day(late_utc, "UTC") == "2026-03-07"
    assert business_day(late_utc, "Europe/Berlin") == "2026-03-08"
    assert business_day(late_utc, "America/Los_Angeles") == "2026-03-07"


def test_day_keys_expire_two_days_after_the_day_ends() -> None:
    assert day_end_epoch("2026-03-07", "UTC") == int(datetime(2026, 3, 10, tzinfo=UTC).timestamp())


def test_counts_accumulate_and_flush_carries_absolute_values() -> None:
    state = DictState()
    t = ms(2026, 3, 7, 9, 0)
    assert apply(state, order(1, t), "UTC")
    assert apply(state, order(2, t + 61_000, [("ETH-NAT", "Natural Ethiopia", "Natural Ethiopia", 1, 1900),
                                              ("CROISSANT", "Croissant", None, 3, 900)]), "UTC")
    batch = collect(state, "store-1", "UTC")
    assert batch is not None
    assert (batch.summary.orders, batch.summary.revenue_cents, batch.summary.quantity) == (2, 4600, 6)
    assert batch.products == {"CROISSANT": (3, 900), "ETH-NAT": (1, 1900), "GUA-HONEY": (2, 1800)}
    assert batch.origins == {"Guatemala Honey": 2, "Natural Ethiopia": 1}
    assert batch.minutes == {t // 60_000: 1, t // 60_000 + 1: 1}
    assert [score for score, _ in batch.recent] == [t, t + 61_000]
    # Nothing is cleared until the writer says Redis has it: a failed write is retried whole.
    assert collect(state, "store-1", "UTC") == batch
    state.set_pending(None)
    assert collect(state, "store-1", "UTC") is None
    apply(state, order(3, t + 120_000), "UTC")
    again = collect(state, "store-1", "UTC")
    assert again is not None
    assert again.summary.orders == 3
    assert again.products == {"GUA-HONEY": (4, 3600)}  # only what changed, with its absolute value
    assert again.origins == {"Guatemala Honey": 4}


def test_a_new_day_starts_from_zero_and_earlier_days_are_ignored() -> None:
    state = DictState()
    apply(state, order(1, ms(2026, 3, 7, 22, 0)), "UTC")
    assert apply(state, order(2, ms(2026, 3, 8, 0, 5)), "UTC")
    assert not apply(state, order(3, ms(2026, 3, 7, 23, 59)), "UTC")
    batch = collect(state, "store-1", "UTC")
    assert batch is not None
    assert (batch.day, batch.summary.orders, batch.new_day) == ("2026-03-08", 1, True)
    assert batch.products == {"GUA-HONEY": (2, 1800)}


def test_minutes_older_than_the_last_hour_are_dropped() -> None:
    state = DictState()
    t = ms(2026, 3, 7, 9, 0)
    apply(state, order(1, t), "UTC")
    state.set_pending(None)
    apply(state, order(2, t + 60 * 60_000), "UTC")
    batch = collect(state, "store-1", "UTC")
    assert batch is not None
    assert batch.stale_minutes == [t // 60_000]
    assert batch.minutes == {t // 60_000 + 60: 1}
    assert state.minute_keys() == [t // 60_000 + 60]


def test_recent_keeps_the_fifty_newest_of_a_flush() -> None:
    state = DictState()
    t = ms(2026, 3, 7, 9, 0)
    for n in range(80):
        apply(state, order(n, t + n * 1000), "UTC")
    batch = collect(state, "store-1", "UTC")
    assert batch is not None
    assert [score for score, _ in batch.recent] == [t + n * 1000 for n in range(30, 80)]


def test_recent_of_a_long_batch_keeps_the_fifty_newest_whatever_the_arrival_order() -> None:
    # More than 4 x 50 orders before a flush: apply trims as it goes, and ties on placed_at are
    # broken by message_id, so a replay of the same orders in another order writes the same 50.
    t = ms(2026, 3, 7, 9, 0)
    orders = [order(n, t + (n // 2) * 1000) for n in range(500)]  # two orders per second
    written = []
    for arrival in (orders, orders[::-1], orders[1::2] + orders[::2]):
        state = DictState()
        for o in arrival:
            apply(state, o, "UTC")
        batch = collect(state, "store-1", "UTC")
        assert batch is not None
        written.append(batch.recent)
    assert written[0] == written[1] == written[2]
    assert written[0] == [recent_entry(order(n, t + (n // 2) * 1000)) for n in range(450, 500)]


def test_business_day_turns_at_local_midnight_in_a_quarter_hour_zone() -> None:
    # Asia/Kathmandu is UTC+05:45: its midnight falls at 18:15 UTC, inside no minute.
    assert business_day(ms(2026, 3, 7, 18, 14, 59) + 999, "Asia/Kathmandu") == "2026-03-07"
    assert business_day(ms(2026, 3, 7, 18, 15), "Asia/Kathmandu") == "2026-03-08"
    assert business_day(ms(1969, 12, 31, 23, 59, 59), "UTC") == "1969-12-31"


def test_recent_entry_is_deterministic_json() -> None:
    a = recent_entry(order(5, ms(2026, 3, 7, 9, 0)))
    b = recent_entry(order(5, ms(2026, 3, 7, 9, 0)))
    assert a == b
    assert a[1] == ('{"channel":"counter","items":[["Guatemala Honey 250g",2]],'
                    '"message_id":"00000000-0000-4000-8000-000000000005",'
                    '"placed_at":"2026-03-07T09:00:00Z","store_id":"store-1","total_cents":1800}')


def test_a_batch_counts_into_each_store_and_all_stores_loading_each_key_once() -> None:
    t = ms(2026, 3, 7, 9, 0)
    stored = {"store-1": DictState()}
    apply(stored["store-1"], order(1, t), "UTC")  # counted and written by an earlier flush
    stored["store-1"].set_pending(None)
    loads: list[str] = []

    def load(key: str) -> DictState:
        loads.append(key)
        return stored.get(key) or DictState()

    batch = [order(2, t + 1000), dataclasses.replace(order(3, t + 2000), store_id="store-2"),
             order(4, t + 3000), order(5, ms(2026, 3, 6, 23, 0))]  # order 5: the day before
    states, late = count_orders(batch, load, lambda key: "UTC")
    assert sorted(loads) == ["_all", "store-1", "store-2"]
    assert late == 1
    assert {k: s.summary.orders for k, s in states.items() if s.summary} == {"store-1": 3, "store-2": 1, "_all": 3}
    store_1 = collect(states["store-1"], "store-1", "UTC")
    assert store_1 is not None and store_1.products == {"GUA-HONEY": (6, 5400)}
    assert [score for score, _ in store_1.recent] == [t + 1000, t + 3000]
