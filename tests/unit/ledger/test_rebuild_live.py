"""`coffee-rt rebuild --live` without servers: where the replay starts, which days it takes, and the job's
startup position (config and SQL); the orders topic's retention setting."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from coffee_ledger.compare import Count, Row

from coffee_auditor.engine import Report
from coffee_job import sql
from coffee_jobconfig.args import program_args
from coffee_jobconfig.model import ConfigError, FromTimestamp, GroupOffsets, JobConfig, load
from coffee_orders import topics
from coffee_rt.errors import UsageError
from coffee_rt.local.components.kafka import Kafka
from coffee_rt.local.settings import LocalSettings
from coffee_rt.rebuild import check_live_day, live_agrees, replay_start

BASE = {"kafka_bootstrap": "127.0.0.1:9092", "postgres_jdbc_url": "jdbc:postgresql://db:5432/coffee",
        "postgres_user": "coffee", "postgres_password_file": "/run/secrets/postgres-password",
        "redis_url_file": "/run/secrets/redis-url"}


def test_replay_starts_five_minutes_before_the_day_in_its_earliest_zone() -> None:
    utc = JobConfig(**BASE)  # type: ignore[arg-type]
    assert replay_start(utc, "2026-03-05") == datetime(2026, 3, 4, 23, 55, tzinfo=UTC)
    zoned = JobConfig(**BASE, default_timezone="Europe/Berlin",  # type: ignore[arg-type]
                      store_timezones={"store-nyc": "America/New_York", "store-tokyo": "Asia/Tokyo"})
    # Tokyo's day begins first: 2026-03-05 00:00 +09:00 is 2026-03-04 15:00 UTC
    assert replay_start(zoned, "2026-03-05") == datetime(2026, 3, 4, 14, 55, tzinfo=UTC)


def test_live_days_are_today_or_yesterday() -> None:
    cfg = JobConfig(**BASE)  # type: ignore[arg-type]
    now = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    check_live_day(cfg, "2026-03-05", now)
    check_live_day(cfg, "2026-03-04", now)
    with pytest.raises(UsageError, match=r"--live takes 2026-03-04 or later; rebuild older history with --from"):
        check_live_day(cfg, "2026-03-03", now)
    with pytest.raises(UsageError, match=r"--day 2026-03-06 has not begun in any store's zone"):
        check_live_day(cfg, "2026-03-06", now)
    # where a store's day has already begun, it is today
    tokyo = JobConfig(**BASE, store_timezones={"store-tokyo": "Asia/Tokyo"})  # type: ignore[arg-type]
    check_live_day(tokyo, "2026-03-06", datetime(2026, 3, 5, 16, 0, tzinfo=UTC))


def test_only_redis_decides_whether_the_live_numbers_agree() -> None:
    def report(*rows: Row) -> Report:
        return Report(list(rows), 0, 0.0, 0)

    ok = Row("_all", "2026-03-05", Count(3, 300), Count(2, 200), Count(3, 300))
    assert live_agrees(report(ok))  # a Postgres difference is the history rebuild's business
    assert live_agrees(report(Row("s", "2026-03-04", Count(3, 300), Count(3, 300), None)))  # not audited
    assert not live_agrees(report(ok, Row("s", "2026-03-05", Count(3, 300), Count(3, 300), Count(1, 100))))


def test_the_startup_position_is_typed_and_reaches_the_source(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret")
    (tmp_path / "url").write_text("redis://r:6379/0")
    default = JobConfig(**{**BASE, "postgres_password_file": str(tmp_path / "pw"),  # type: ignore[arg-type]
                           "redis_url_file": str(tmp_path / "url")})
    assert default.startup == GroupOffsets()
    assert "'scan.startup.mode' = 'group-offsets'" in sql.source_ddl(default)
    assert "scan.startup.timestamp-millis" not in sql.source_ddl(default)
    replay = default.model_copy(update={"startup": FromTimestamp(timestamp_ms=1_772_668_500_000)})
    ddl = sql.source_ddl(replay)
    assert "'scan.startup.mode' = 'timestamp'" in ddl
    assert "'scan.startup.timestamp-millis' = '1772668500000'" in ddl
    assert "'properties.group.id' = 'coffee-rt-job'" in ddl  # offsets are committed to the same group
    # it travels to the job in the program arguments and comes back equal
    assert load(program_args(replay)[2:]) == replay


@pytest.mark.parametrize(("startup", "message"), [
    ({"mode": "timestamp"}, "startup.timestamp.timestamp_ms: Field required"),
    ({"mode": "timestamp", "timestamp_ms": -1}, "startup.timestamp.timestamp_ms: Input should be greater than"),
    ({"mode": "earliest"}, "startup: Input tag 'earliest' found using 'mode' does not match any of the expected tags"),
    ({"mode": "group-offsets", "timestamp_ms": 5}, "startup.group-offsets.timestamp_ms: Extra inputs"),
])
def test_a_bad_startup_position_is_refused(startup: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(["--config-json", json.dumps({**BASE, "startup": startup})])


def test_the_orders_retention_comes_from_the_local_settings() -> None:
    default = Kafka(LocalSettings.from_env(env={}))
    assert {t.name: t.config["retention.ms"] for t in default.wanted_topics()} == \
        {"orders": str(35 * 86_400_000), "orders.dlq": str(30 * 86_400_000)}
    kept = Kafka(LocalSettings.from_env(env={"COFFEE_RT_ORDERS_RETENTION_DAYS": "90"}))
    assert {t.name: t.config["retention.ms"] for t in kept.wanted_topics()} == \
        {"orders": str(90 * 86_400_000), "orders.dlq": str(30 * 86_400_000)}
    assert topics.ORDERS.config["retention.ms"] == str(35 * 86_400_000)  # the default is untouched
    for bad in ("1", "3651", "a month"):
        with pytest.raises(UsageError, match="ORDERS_RETENTION_DAYS"):
            LocalSettings.from_env(env={"COFFEE_RT_ORDERS_RETENTION_DAYS": bad})
