"""Wiring: Kafka source -> parse (Java) -> one dedup (SQL) -> Postgres sinks (SQL) and live metrics (Python).

One Kafka source and one parse feed everything, and an order enters Python only in the live
metrics. The Python operator carries an explicit uid; the SQL operators' ids derive from the
query's topology, so a savepoint restores into the same or a compatible query (see
docs/flink-job.md, "Upgrades").
"""

from __future__ import annotations

from pyflink.common import Configuration, Types
from pyflink.datastream import DataStream, KeyedStream, StreamExecutionEnvironment
from pyflink.java_gateway import get_gateway
from pyflink.table import Schema, StreamTableEnvironment

from coffee_job import sql
from coffee_job.functions import LIVE_BATCH_TYPE, LIVE_INPUT_TYPE, LIVE_KEY, LiveMetrics
from coffee_jobconfig.model import JobConfig, duration_ms


def flink_configuration(cfg: JobConfig) -> dict[str, str]:
    """Job-level Flink options; cluster-level ones (checkpoint storage dir) come from the cluster."""
    return {
        "pipeline.name": cfg.job_name,
        "parallelism.default": str(cfg.parallelism),
        "execution.checkpointing.interval": f"{duration_ms(cfg.checkpoint_interval)} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.tolerable-failed-checkpoints": "3",
        "state.backend.type": cfg.state_backend,
        # RocksDB uploads only new SST files per checkpoint; hashmap has no incremental mode.
        "execution.checkpointing.incremental": str(cfg.state_backend == "rocksdb").lower(),
        **restart_configuration(cfg),
        "execution.buffer-timeout.interval": f"{duration_ms(cfg.buffer_timeout)} ms",
        "python.execution-mode": cfg.python_execution_mode,
        "python.fn-execution.bundle.time": str(duration_ms(cfg.python_bundle_time)),
        "python.fn-execution.bundle.size": "1000",
        "table.exec.state.ttl": f"{duration_ms(cfg.dedup_ttl)} ms",
        "table.local-time-zone": "UTC",
        # SQL operators keep Flink's topology-derived ids: the planner's numbered uids would differ
        # between two submissions to one session cluster (its node counter lives in the JobManager).
        "table.exec.uid.generation": "PLAN_ONLY",
        "table.exec.source.idle-timeout": "5 s",
        # Chained operators hand records over without a deep copy; the SQL operators are written
        # for it and the Python operator gets its own copy. Copies were the JVM's largest cost.
        "pipeline.object-reuse": "true",
    }


# Flink reads "attempts before reset" as an int; its own default (unlimited) is Integer.MAX_VALUE.
UNLIMITED_ATTEMPTS = 2_147_483_647


def restart_configuration(cfg: JobConfig) -> dict[str, str]:
    """Exponential-delay restarts: a Postgres or Redis outage of minutes must not use up the
    attempts (a fixed 10 x 5 s gave up after one minute and left the job FAILED)."""
    return {
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": f"{duration_ms(cfg.restart_initial_backoff)} ms",
        "restart-strategy.exponential-delay.max-backoff": f"{duration_ms(cfg.restart_max_backoff)} ms",
        "restart-strategy.exponential-delay.backoff-multiplier": str(cfg.restart_backoff_multiplier),
        "restart-strategy.exponential-delay.reset-backoff-threshold": f"{duration_ms(cfg.restart_reset_after)} ms",
        "restart-strategy.exponential-delay.jitter-factor": str(cfg.restart_jitter),
        "restart-strategy.exponential-delay.attempts-before-reset-backoff":
            str(cfg.restart_attempts if cfg.restart_attempts is not None else UNLIMITED_ATTEMPTS),
    }


def history_configuration(cfg: JobConfig) -> dict[str, str]:
    """Table options for what is planned after the dedup: the Postgres history. The rollups
    aggregate in mini-batches, and every Postgres sink gets a task of its own (a keyed shuffle),
    so a JDBC round trip never holds up the task that feeds the live metrics."""
    return {
        "table.exec.mini-batch.enabled": "true",
        "table.exec.mini-batch.allow-latency": f"{duration_ms(cfg.rollup_batch_interval)} ms",
        "table.exec.mini-batch.size": "5000",
        "table.exec.sink.keyed-shuffle": "FORCE",
    }


def build(env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, cfg: JobConfig) -> None:
    t_env.execute_sql(sql.source_ddl(cfg))
    t_env.execute_sql(sql.dlq_ddl(cfg))
    for ddl in sql.sink_ddls(cfg):
        t_env.execute_sql(ddl)

    t_env.execute_sql(sql.PARSE_FUNCTION)
    # Through a DataStream and back: the one parse then feeds both views, and the table gets its
    # processing time and its event time watermark (a dead letter has no placed_at: time 0).
    parsed = t_env.to_data_stream(t_env.sql_query(sql.parsed_query(cfg)))
    watermark = f"INTERVAL '{duration_ms(cfg.watermark_out_of_orderness) // 1000}' SECOND"
    t_env.create_temporary_view("records_parsed", t_env.from_data_stream(
        parsed,
        Schema.new_builder()
        .column_by_expression("proc_time", "PROCTIME()")
        .column_by_expression("event_time", "TO_TIMESTAMP_LTZ(COALESCE(placed_at_ms, 0), 3)")
        .watermark("event_time", f"event_time - {watermark}")
        .build(),
    ))
    t_env.execute_sql(sql.ORDERS_VIEW)
    t_env.execute_sql(sql.DEAD_LETTERS_VIEW)
    t_env.execute_sql(sql.DEDUP_VIEW)
    unique = t_env.to_data_stream(t_env.from_path("orders_unique"))
    t_env.create_temporary_view("orders_deduped", t_env.from_data_stream(
        unique, Schema.new_builder().column_by_expression("proc_time", "PROCTIME()").build()))
    live_batches = keyed_live_batches(t_env, cfg)
    # The dedup above is already translated, so these options reach only the Postgres history
    # planned from here on; the live metrics' path keeps its latency.
    for key, value in history_configuration(cfg).items():
        t_env.get_config().set(key, value)
    t_env.execute_sql(sql.ITEMS_VIEW)

    statements = t_env.create_statement_set()
    for insert in sql.INSERTS:
        statements.add_insert_sql(insert)
    statements.attach_as_datastream()

    live_batches.process(LiveMetrics(cfg)).uid("live-metrics-v3").name("live metrics to redis")


def keyed_live_batches(t_env: StreamTableEnvironment, cfg: JobConfig) -> KeyedStream:
    """The unique orders in short windows, keyed for :class:`LiveMetrics`, batched and keyed in the JVM.

    Python then runs once per window instead of once per order (the per-call cost into the
    interpreter was the job's largest). ``DataStream.key_by`` would run a Python key selector;
    PyFlink's keyed operators read ``Row(key, value)`` typed as a RowTypeInfo and keyed by its
    ``KeyByKeySelector``, so SQL builds that row and the legacy ``toAppendStream`` gives it that type.
    """
    table = t_env.sql_query(sql.live_batches_query(LIVE_KEY, cfg))
    j_stream = t_env._j_tenv.toAppendStream(table._j_table, LIVE_INPUT_TYPE.get_java_type_info())
    j_keyed = j_stream.keyBy(get_gateway().jvm.KeyByKeySelector(), Types.ROW([Types.STRING()]).get_java_type_info())
    return KeyedStream(j_keyed, LIVE_BATCH_TYPE, DataStream(j_stream))


def create_environments(cfg: JobConfig) -> tuple[StreamExecutionEnvironment, StreamTableEnvironment]:
    conf = Configuration()
    for key, value in flink_configuration(cfg).items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg.parallelism)
    return env, StreamTableEnvironment.create(env)
