"""The job's SQL: Kafka source and dead-letter sink, JDBC sinks, dedup views and rollups.

Strings only (no PyFlink import), so they are unit-testable and reviewable in one place.
"""

from __future__ import annotations

from urllib.parse import quote

from coffee_jobconfig.model import FromTimestamp, JobConfig, duration_ms

# The JDBC driver's authentication plugin in the job's Java functions (jobs/functions): it reads
# the password from the file named by the URL's ``passwordFile`` when it connects, in the
# TaskManager. A ``'password'`` option would put the password into the table's options, which
# the job graph carries from the JobManager to every TaskManager (and the Python driver in the
# JobManager would have to read it); the connector also takes ``username`` only with ``password``,
# so the user travels in the URL too.
PASSWORD_PLUGIN = "dev.coffeert.job.PasswordFile"


def _q(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _with(options: dict[str, str]) -> str:
    return "WITH (\n  " + ",\n  ".join(f"{_q(k)} = {_q(v)}" for k, v in options.items()) + "\n)"


def startup_options(cfg: JobConfig) -> dict[str, str]:
    """Where the source starts without state (a restore resumes from the state's offsets instead).

    Either way the source commits its offsets to ``group_id`` on every checkpoint, so a later start
    from group offsets continues where this one got to."""
    if isinstance(cfg.startup, FromTimestamp):
        return {"scan.startup.mode": "timestamp", "scan.startup.timestamp-millis": str(cfg.startup.timestamp_ms)}
    return {"scan.startup.mode": "group-offsets"}


def source_ddl(cfg: JobConfig) -> str:
    return f"""CREATE TEMPORARY TABLE orders_raw (
  `value` BYTES,
  `kafka_partition` INT METADATA FROM 'partition' VIRTUAL,
  `kafka_offset` BIGINT METADATA FROM 'offset' VIRTUAL
) {_with({
        "connector": "kafka",
        "topic": cfg.orders_topic,
        "properties.bootstrap.servers": cfg.kafka_bootstrap,
        "properties.group.id": cfg.group_id,
        "properties.auto.offset.reset": "earliest",
        "properties.isolation.level": "read_committed",
        "properties.fetch.min.bytes": str(cfg.source_fetch_min_bytes),
        "properties.fetch.max.wait.ms": str(duration_ms(cfg.source_fetch_max_wait)),
        **startup_options(cfg),
        "format": "raw",
    })}"""


def dlq_ddl(cfg: JobConfig) -> str:
    return f"""CREATE TEMPORARY TABLE dead_letters (
  `value` BYTES,
  `headers` MAP<STRING, BYTES> METADATA
) {_with({
        "connector": "kafka",
        "topic": cfg.dlq_topic,
        "properties.bootstrap.servers": cfg.kafka_bootstrap,
        "properties.transaction.timeout.ms": "900000",
        "sink.delivery-guarantee": "exactly-once",
        "sink.transactional-id-prefix": f"{cfg.job_name}-dlq",
        "format": "raw",
    })}"""


def jdbc_url(cfg: JobConfig) -> str:
    """The sinks' JDBC URL: the configured one with the user, the password plugin and its file."""
    separator = "&" if "?" in cfg.postgres_jdbc_url else "?"
    # stringtype=unspecified lets Postgres cast our strings to uuid/timestamptz columns.
    # reWriteBatchedInserts: a batch of upserts goes as multi-row INSERT ... ON CONFLICT
    # statements (the sink reduces a batch to one row per key first, as they require).
    return (f"{cfg.postgres_jdbc_url}{separator}stringtype=unspecified&reWriteBatchedInserts=true"
            f"&user={quote(cfg.postgres_user, safe='')}&authenticationPluginClassName={PASSWORD_PLUGIN}"
            f"&passwordFile={quote(cfg.postgres_password_file, safe='/')}")


# The JDBC connector's sink with its options, its sink function wrapped (jobs/functions
# JdbcSinkFactory): the connector's close() throws a failed flush again in a failed task's clean-up,
# which Flink treats as fatal to the TaskManager process; the wrapper only logs it there.
JDBC_CONNECTOR = "coffee-jdbc"


def _jdbc(cfg: JobConfig, table: str) -> str:
    return _with({
        "connector": JDBC_CONNECTOR,
        "url": jdbc_url(cfg),
        "table-name": table,
        "sink.buffer-flush.max-rows": str(cfg.jdbc_batch_size),
        "sink.buffer-flush.interval": f"{duration_ms(cfg.jdbc_flush_interval)}ms",
        "sink.max-retries": "5",
    })


def sink_ddls(cfg: JobConfig) -> list[str]:
    return [
        f"""CREATE TEMPORARY TABLE pg_orders (
  message_id STRING, store_id STRING, placed_at TIMESTAMP(3), channel STRING, currency STRING,
  total_cents BIGINT, item_count INT, kafka_partition INT, kafka_offset BIGINT,
  PRIMARY KEY (message_id) NOT ENFORCED
) {_jdbc(cfg, "orders")}""",
        f"""CREATE TEMPORARY TABLE pg_order_items (
  message_id STRING, line_no INT, sku STRING, name STRING, category STRING, origin STRING,
  quantity INT, unit_price_cents BIGINT,
  PRIMARY KEY (message_id, line_no) NOT ENFORCED
) {_jdbc(cfg, "order_items")}""",
        f"""CREATE TEMPORARY TABLE pg_sales_by_minute (
  store_id STRING, sku STRING, `minute` TIMESTAMP(3), quantity BIGINT, revenue_cents BIGINT, order_count BIGINT,
  PRIMARY KEY (store_id, sku, `minute`) NOT ENFORCED
) {_jdbc(cfg, "sales_by_minute")}""",
        f"""CREATE TEMPORARY TABLE pg_sales_by_hour (
  store_id STRING, `hour` TIMESTAMP(3), order_count BIGINT, revenue_cents BIGINT, quantity BIGINT,
  PRIMARY KEY (store_id, `hour`) NOT ENFORCED
) {_jdbc(cfg, "sales_by_hour")}""",
    ]


# The order schema, checked in the JVM (jobs/functions; kept equal to coffee_orders.schema by
# tests/unit/job/test_parse_conformance.py). Its jar is in the cluster's lib/.
PARSE_FUNCTION = "CREATE TEMPORARY SYSTEM FUNCTION parse_order AS 'dev.coffeert.job.ParseOrder' LANGUAGE JAVA"


def parsed_query(cfg: JobConfig) -> str:
    """Every record once: its order fields, or (reason set) its dead letter's payload and source."""
    return f"""SELECT p.reason,
       CASE WHEN p.reason IS NULL THEN CAST(NULL AS BYTES) ELSE COALESCE(r.`value`, X'') END AS payload,
       {_q(cfg.orders_topic)} AS source_topic, r.kafka_partition, r.kafka_offset,
       p.message_id, p.store_id, p.placed_at_ms, p.channel, p.currency, p.total_cents, p.item_count,
       p.quantity, p.items_json, p.items
FROM orders_raw AS r, LATERAL TABLE(parse_order(r.`value`)) AS p"""


ORDERS_VIEW = """CREATE TEMPORARY VIEW orders_parsed AS
SELECT message_id, store_id, placed_at_ms, channel, currency, total_cents, item_count, quantity, items_json,
       items, kafka_partition, kafka_offset, proc_time
FROM records_parsed WHERE reason IS NULL"""

DEAD_LETTERS_VIEW = """CREATE TEMPORARY VIEW dead_letters_parsed AS
SELECT payload, source_topic, kafka_partition, kafka_offset, reason FROM records_parsed WHERE reason IS NOT NULL"""

# Keep-first deduplication on processing time: append-only output, one state entry per key,
# expired after table.exec.state.ttl (the config's dedup_ttl, at least 24 h). It runs once: the
# pipeline turns its output into a DataStream (the live metrics read it) and back into the
# table ``orders_deduped`` that every Postgres insert reads. Inserts reading the view directly
# would each get a dedup of their own (PROCTIME() makes the planner duplicate, not share, it).
DEDUP_VIEW = """CREATE TEMPORARY VIEW orders_unique AS
SELECT message_id, store_id, placed_at_ms, channel, currency, total_cents, item_count, quantity,
       items_json, items, kafka_partition, kafka_offset
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY message_id ORDER BY proc_time ASC) AS rn FROM orders_parsed
) WHERE rn = 1"""

def live_batches_query(key: str, cfg: JobConfig) -> str:
    """Row(key, Row(orders)): the unique orders of each ``redis_flush_interval`` of processing time,
    one row per window, for the live metrics (see coffee_job.pipeline.keyed_live_batches).

    Each order travels as a JSON array string: ARRAY_AGG of ROW(...) over this query's input
    returned every element equal to the window's last order (a reused row object; seen as
    per-store counts running behind while the all-stores count was right)."""
    seconds = duration_ms(cfg.redis_flush_interval) / 1000
    return f"""SELECT {_q(key)} AS k, ROW(ARRAY_AGG(
         JSON_ARRAY(message_id, store_id, placed_at_ms, channel, total_cents, quantity, JSON(items_json)))) AS v
FROM TABLE(TUMBLE(TABLE orders_deduped, DESCRIPTOR(proc_time), INTERVAL '{seconds:.3f}' SECOND))
GROUP BY window_start, window_end"""


# The lines of each unique order, typed by parse_order (items_json, the same lines, is for the
# live metrics in Python).
ITEMS_VIEW = """CREATE TEMPORARY VIEW items_deduped AS
SELECT o.message_id, i.line_no, o.store_id, o.placed_at_ms, i.sku, i.name, i.category, i.origin, i.quantity,
       i.unit_price_cents, i.first_of_sku
FROM orders_deduped AS o
CROSS JOIN UNNEST(o.items) AS i(line_no, sku, name, category, origin, quantity, unit_price_cents, first_of_sku)"""

_TS = "CAST(TO_TIMESTAMP_LTZ(placed_at_ms, 3) AS TIMESTAMP(3))"

INSERTS = [
    f"""INSERT INTO pg_orders
SELECT message_id, store_id, {_TS}, channel, currency, total_cents, item_count, kafka_partition, kafka_offset
FROM orders_deduped""",
    """INSERT INTO pg_order_items
SELECT message_id, line_no, sku, name, category, origin, quantity, unit_price_cents FROM items_deduped""",
    f"""INSERT INTO pg_sales_by_minute
SELECT store_id, sku, FLOOR({_TS} TO MINUTE), CAST(SUM(quantity) AS BIGINT),
       SUM(quantity * unit_price_cents), SUM(first_of_sku)
FROM items_deduped GROUP BY store_id, sku, FLOOR({_TS} TO MINUTE)""",
    f"""INSERT INTO pg_sales_by_hour
SELECT store_id, FLOOR({_TS} TO HOUR), COUNT(*), SUM(total_cents), CAST(SUM(quantity) AS BIGINT)
FROM orders_deduped GROUP BY store_id, FLOOR({_TS} TO HOUR)""",
    """INSERT INTO dead_letters
SELECT payload, MAP[
  'reason', ENCODE(reason, 'UTF-8'),
  'source-topic', ENCODE(source_topic, 'UTF-8'),
  'source-partition', ENCODE(CAST(kafka_partition AS STRING), 'UTF-8'),
  'source-offset', ENCODE(CAST(kafka_offset AS STRING), 'UTF-8')]
FROM dead_letters_parsed""",
]
