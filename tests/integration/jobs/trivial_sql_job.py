"""A trivial PyFlink SQL job: datagen -> blackhole, checkpointing every second."""

from pyflink.table import EnvironmentSettings, TableEnvironment

env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
env.get_config().set("execution.checkpointing.interval", "1 s")
env.get_config().set("pipeline.name", "coffee-rt-trivial")
env.execute_sql("CREATE TABLE src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10')")
env.execute_sql("CREATE TABLE sink (n BIGINT) WITH ('connector' = 'blackhole')")
env.execute_sql("INSERT INTO sink SELECT n FROM src")
