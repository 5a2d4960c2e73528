"""The job's typed config (bad input is refused with the field named) and its SQL text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coffee_job import sql
from coffee_job.pipeline import flink_configuration, history_configuration
from coffee_jobconfig.args import program_args
from coffee_jobconfig.model import ConfigError, JobConfig, duration_ms, load

BASE = {"kafka_bootstrap": "127.0.0.1:9092", "postgres_jdbc_url": "jdbc:postgresql://db:5432/coffee",
        "postgres_user": "coffee", "postgres_password_file": "/run/secrets/postgres-password",
        "redis_url_file": "/run/secrets/redis-url"}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """BASE with real secret files: the password s3cret, the URL redis://:hunter2@r:6379/0."""
    (tmp_path / "pg").write_text("s3cret\n")  # one trailing line break is not part of it
    (tmp_path / "redis").write_text("redis://:hunter2@r:6379/0")
    return {**BASE, "postgres_password_file": str(tmp_path / "pg"), "redis_url_file": str(tmp_path / "redis")}


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
    ({"postgres_password_file": "secrets/pw"}, "postgres_password_file"),
    ({"redis_url_file": ""}, "redis_url_file"),
    ({"postgres_password": "s3cret"}, "postgres_password"),  # a secret itself is refused, not ignored
])
def test_invalid_config_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid job config: {field}"):
        load(["--config-json", json.dumps({**BASE, **change})])


def test_missing_field_and_broken_json() -> None:
    with pytest.raises(ConfigError, match="kafka_bootstrap: Field required"):
        load(["--config-json", json.dumps({k: v for k, v in BASE.items() if k != "kafka_bootstrap"})])
    with pytest.raises(ConfigError, match="cannot read the job config"):
        load(["--config-json", "{nope"])
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load(["--config-json", "[1]"])
    with pytest.raises(ConfigError) as caught:
        load([])
    assert str(caught.value) == "the job config is missing: pass --config-json or --config-file"


def test_secrets_are_read_from_their_files(files: dict[str, str]) -> None:
    cfg = load(["--config-json", json.dumps(files)])
    assert (cfg.postgres_password().get_secret_value(), cfg.redis_url().get_secret_value()) == (
        "s3cret", "redis://:hunter2@r:6379/0")
    assert "s3cret" not in repr(cfg) and "hunter2" not in repr(cfg)


@pytest.mark.parametrize(("which", "content", "problem"), [
    ("postgres_password_file", None, "the Postgres password file {path} does not exist"),
    ("postgres_password_file", "", "the Postgres password file {path} is empty"),
    ("postgres_password_file", "\n", "the Postgres password file {path} is empty"),
    ("postgres_password_file", b"\xff\xfe", "the Postgres password file {path} is not UTF-8 text"),
    ("redis_url_file", None, "the Redis URL file {path} does not exist"),
    ("redis_url_file", "  \n", "the Redis URL file {path} is empty"),
    ("redis_url_file", "hunter2", "the Redis URL file {path} does not hold a redis://, rediss:// or unix:// URL"),
])
def test_a_bad_secret_file_is_named_and_its_content_never_shown(
        files: dict[str, str], tmp_path: Path, which: str, content: str | bytes | None, problem: str) -> None:
    path = tmp_path / "bad"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load(["--config-json", json.dumps({**files, which: str(path)})])
    assert str(caught.value) == problem.format(path=path)


def test_an_unreadable_or_directory_secret_file_is_named(files: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(["--config-json", json.dumps({**files, "redis_url_file": str(tmp_path)})])
    assert str(caught.value) == f"the Redis URL file {tmp_path} is a directory, not a file"
    under_a_file = tmp_path / "pg" / "password"  # tmp_path/pg is a file: the path cannot be opened
    with pytest.raises(ConfigError) as caught:
        load(["--config-json", json.dumps({**files, "postgres_password_file": str(under_a_file)})])
    assert str(caught.value) == f"the Postgres password file {under_a_file} cannot be read: Not a directory"


def test_a_secret_file_larger_than_a_secret_is_refused(files: dict[str, str], tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("x" * 65_537)
    with pytest.raises(ConfigError) as caught:
        load(["--config-json", json.dumps({**files, "postgres_password_file": str(big)})])
    assert str(caught.value) == f"the Postgres password file {big} is larger than 64 KiB: not a secret value"


def test_program_args_round_trip_and_hold_no_secret(files: dict[str, str]) -> None:
    cfg = JobConfig(**files)  # type: ignore[arg-type]
    args = program_args(cfg)
    assert args[:3] == ["-pym", "coffee_job.main", "--config-json"]
    assert load(args[2:]) == cfg
    assert json.loads(args[3])["postgres_password_file"] == files["postgres_password_file"]
    assert "s3cret" not in args[3] and "hunter2" not in args[3]


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
    assert "'properties.fetch.min.bytes' = '2048'" in sql.source_ddl(cfg)
    assert "'properties.fetch.max.wait.ms' = '25'" in sql.source_ddl(cfg)
    ddls = "\n".join(sql.sink_ddls(cfg))
    assert ddls.count("PRIMARY KEY") == 4
    assert ddls.count(f"'url' = '{sql.jdbc_url(cfg)}'") == 4
    assert "'sink.delivery-guarantee' = 'exactly-once'" in sql.dlq_ddl(cfg)


def test_the_sinks_read_the_password_from_its_file_when_they_connect(files: dict[str, str]) -> None:
    cfg = JobConfig(**{**files, "postgres_user": "coffee&co",  # type: ignore[arg-type]
                       "postgres_jdbc_url": "jdbc:postgresql://db:5432/coffee?sslmode=require"})
    assert sql.jdbc_url(cfg) == (
        "jdbc:postgresql://db:5432/coffee?sslmode=require&stringtype=unspecified&reWriteBatchedInserts=true"
        "&user=coffee%26co&authenticationPluginClassName=dev.coffeert.job.PasswordFile"
        f"&passwordFile={files['postgres_password_file']}")
    ddls = "\n".join(sql.sink_ddls(cfg))
    # no password option (the connector takes a username only with one), and no secret anywhere
    assert "'password'" not in ddls and "'username'" not in ddls
    assert "s3cret" not in ddls and "hunter2" not in ddls


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
