"""The job's typed config (bad input is refused with the field named) and its SQL text."""

from __future__ import annotations

import json

import pytest

from coffee_job import sql
from coffee_job.pipeline import flink_configuration, history_configuration
from coffee_jobconfig.args import program_args
from coffee_jobconfig.model import ConfigError, JobConfig, duration_ms, load

BASE = {"kafka_bootstrap": "127.0.0.1:9092", "postgres_jdbc_url": "jdbc:postgresql://db:5432/coffee",
        "postgres_user": "coffee", "postgres_password": "s3cret", "redis_url": "redis://r:6379/0"}


def test_durations() -> None:
    assert [duration_ms(d) for d in ("5ms", "10s", "5min", "36h")] == [5, 10_000, 300_000, 129_600_000]
    with pytest.raises(ValueError, match="not a duration"):
        duration_ms("10 parsecs")


@pytest.mark.parametrize(("change", "field"), [
    ({"checkpoint_interval": "soon"}, "checkpoint_interval"),
    ({"dedup_ttl": "1h"}, "dedup_ttl"),
    ({"parallelism": 0}, "parallelism"),
    ({"state_backend": "memory"}, "state_backend"),
    ({"default_timezone": "Mars/Olympus"}, "default_timezone"),
    ({"store_timezones": {"store-1": "Nowhere/Land"}}, "store_timezones"),
    ({"postgres_jdbc_url": "postgresql://db/coffee"}, "postgres_jdbc_url"),
    ({"rollup_batch_interval": "half a second"}, "rollup_batch_interval"),
    ({"redis_flush_interval": "0ms"}, "redis_flush_interval"),
    ({"redis_flush_interval": "2min"}, "redis_flush_interval"),
    ({"source_fetch_min_bytes": 0}, "source_fetch_min_bytes"),
    ({"source_fetch_max_wait": "0ms"}, "source_fetch_max_wait"),
    ({"source_fetch_max_wait": "1s"}, "source_fetch_max_wait"),
    ({"surprise": 1}, "surprise"),
])
def test_invalid_config_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid job config: {field}"):
        load(["--config-json", json.dumps({**BASE, **change})], env={})


def test_missing_field_and_broken_json() -> None:
    with pytest.raises(ConfigError, match="kafka_bootstrap: Field required"):
        load(["--config-json", json.dumps({k: v for k, v in BASE.items() if k != "kafka_bootstrap"})], env={})
    with pytest.raises(ConfigError, match="cannot read the job config"):
        load(["--config-json", "{nope"], env={})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load(["--config-json", "[1]"], env={})


def test_secrets_may_come_from_the_environment() -> None:
    public = {k: v for k, v in BASE.items() if k not in ("postgres_password", "redis_url")}
    cfg = load(["--config-json", json.dumps(public)],
               env={"COFFEE_JOB_POSTGRES_PASSWORD": "from-env", "COFFEE_JOB_REDIS_URL": "redis://x:1/0"})
    assert cfg.postgres_password.get_secret_value() == "from-env"
    assert "from-env" not in repr(cfg)


def test_program_args_round_trip_and_can_leave_secrets_out() -> None:
    cfg = JobConfig(**BASE)  # type: ignore[arg-type]
    args = program_args(cfg, include_secrets=True)
    assert args[:3] == ["-pym", "coffee_job.main", "--config-json"]
    assert load(args[2:], env={}) == cfg
    without = program_args(cfg, include_secrets=False)
    assert "s3cret" not in without[3] and "redis://r" not in without[3]


def test_flink_configuration_is_exactly_once_and_low_latency() -> None:
    conf = flink_configuration(JobConfig(**BASE))  # type: ignore[arg-type]
    assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert conf["execution.checkpointing.interval"] == "10000 ms"
    assert conf["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"
    assert conf["execution.buffer-timeout.interval"] == "5 ms"
    assert conf["table.exec.state.ttl"] == "129600000 ms"


def test_history_batches_the_rollups_and_gives_the_sinks_their_own_tasks() -> None:
    conf = history_configuration(JobConfig(**{**BASE, "rollup_batch_interval": "2s"}))  # type: ignore[arg-type]
    assert conf == {"table.exec.mini-batch.enabled": "true", "table.exec.mini-batch.allow-latency": "2000 ms",
                    "table.exec.mini-batch.size": "5000", "table.exec.sink.keyed-shuffle": "FORCE"}
    assert not any(key.startswith("table.exec.mini-batch") for key in flink_configuration(JobConfig(**BASE)))  # type: ignore[arg-type]


def test_sql_quotes_config_values_and_uses_upserts() -> None:
    cfg = JobConfig(**{**BASE, "orders_topic": "it's"})  # type: ignore[arg-type]
    assert "'topic' = 'it''s'" in sql.source_ddl(cfg)
    # One fetch per order cost the broker and the source more CPU than the ingest service spends.
    assert "'properties.fetch.min.bytes' = '16384'" in sql.source_ddl(cfg)
    assert "'properties.fetch.max.wait.ms' = '5'" in sql.source_ddl(cfg)
    ddls = "\n".join(sql.sink_ddls(cfg))
    assert ddls.count("PRIMARY KEY") == 4
    assert "stringtype=unspecified" in ddls
    assert "'sink.delivery-guarantee' = 'exactly-once'" in sql.dlq_ddl(cfg)


def test_live_windows_are_the_flush_interval_and_parse_reads_the_dead_letters_source() -> None:
    cfg = JobConfig(**{**BASE, "redis_flush_interval": "25ms", "orders_topic": "it's"})  # type: ignore[arg-type]
    live = sql.live_batches_query("live", cfg)
    assert "DESCRIPTOR(proc_time), INTERVAL '0.025' SECOND)" in live
    assert "ARRAY_AGG(\n         JSON_ARRAY(message_id, store_id, placed_at_ms" in live
    assert "JSON(items_json)" in live
    parsed = sql.parsed_query(cfg)
    assert "'it''s' AS source_topic" in parsed
    assert "LATERAL TABLE(parse_order(r.`value`))" in parsed
    assert sql.PARSE_FUNCTION.endswith("AS 'dev.coffeert.job.ParseOrder' LANGUAGE JAVA")
