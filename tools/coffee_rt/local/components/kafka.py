"""A single-node Apache Kafka broker in KRaft mode, from the official jars on Maven Central."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from coffee_orders import topics
from coffee_rt.errors import PrerequisiteError, StartupError
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.installers import jvm_accepts, maven_jar_dir, maven_jars, require_java
from coffee_rt.local.process import ManagedProcess

_LOG4J2 = """\
Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: WARN
      - name: org.apache.kafka
        level: WARN
      - name: kafka.server.KafkaServer
        level: INFO
"""

# The broker's collector: Shenandoah where the JVM has it, else G1 with a short pause goal.
SHENANDOAH = ("-XX:+UseShenandoahGC",)
G1 = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=10")


class Kafka(Component):
    name = "kafka"
    order_path_role = "broker"
    start_timeout = 60.0

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    def ports(self) -> list[int]:
        return [self.settings.kafka_port, self.settings.kafka_controller_port]

    def address(self) -> str:
        return self.settings.kafka_bootstrap

    def _jars(self, progress: Progress) -> Path:
        return maven_jars("kafka", self.settings.cache_dir, progress)

    def _java(self) -> list[str]:
        java = require_java(17)
        return [java, f"-Xmx{self.settings.kafka_heap}", f"-Xms{self.settings.kafka_heap}",
                # Shenandoah, not Kafka's G1: a G1 young pause stopped every produce for ~10 ms
                # every 3 s at 1,000 orders/s, most of the ingest benchmark's tail; Shenandoah's
                # pauses are under 0.3 ms, one cycle every ~20 s (docs/benchmarks.md).
                *(SHENANDOAH if jvm_accepts(java, SHENANDOAH[0]) else G1), "-Djava.awt.headless=true",
                # Kafka's own scripts log GC too: a stalled broker stalls every producer.
                f"-Xlog:gc:file={self.home / 'gc.log'}:time,uptime:filecount=5,filesize=20M",
                self.jvm_crash_file_option,
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}"]

    def prepare(self, progress: Progress) -> None:
        require_java(17)  # before any download: the clearest error when Java is missing
        jars = self._jars(progress)
        s = self.settings
        self.home.mkdir(parents=True, exist_ok=True)
        data = self.home / "data"
        self.config_file.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{s.host}:{s.kafka_controller_port}",
                f"listeners=PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port}",
                f"advertised.listeners=PLAINTEXT://{s.host}:{s.kafka_port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=3",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=3",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                # Sized for the 2-core machine it shares with everything else (defaults: 3 and 8):
                # fewer threads to wake per request; ingest p99 median 8.4 -> 5.5 ms over six runs.
                "num.network.threads=1",
                "num.io.threads=2",
                # The log cleaner (compacted __consumer_offsets) holds this buffer on the heap for
                # good: 128 MiB by default, a quarter of the local heap, which only makes the
                # garbage collector run more often.
                "log.cleaner.dedupe.buffer.size=16777216",
                "",
            ])
        )
        (self.home / "log4j2.yaml").write_text(_LOG4J2)
        if (data / "meta.properties").exists():
            return
        progress("kafka: formatting KRaft storage")
        result = subprocess.run(
            [*self._java(), "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format",
             "-t", str(uuid.uuid4()), "-c", str(self.config_file)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise PrerequisiteError(f"kafka storage format failed:\n{result.stdout}{result.stderr}")

    def processes(self) -> list[ManagedProcess]:
        jars = maven_jar_dir("kafka", self.settings.cache_dir)
        return [self.process("", [*self._java(), "-cp", f"{jars}/*", "kafka.Kafka", str(self.config_file)])]

    def admin(self, timeout_ms: int = 2000) -> AdminClient:
        # log_level 0: a broker still starting is expected; the health detail says so, not stderr noise.
        return AdminClient({"bootstrap.servers": self.address(), "socket.timeout.ms": timeout_ms, "log_level": 0})

    def health(self) -> Health:
        try:
            metadata = self.admin().list_topics(timeout=2)
        except KafkaException as exc:
            return Health(False, str(exc))
        if not metadata.brokers:
            return Health(False, "no broker in metadata")
        return Health(True, f"{len(metadata.brokers)} broker, {len(metadata.topics)} topics")

    def wanted_topics(self) -> tuple[topics.Topic, ...]:
        """The pipeline's topics, the orders topic kept ``orders_retention_days``."""
        return topics.with_orders_retention(self.settings.orders_retention_days)

    def after_start(self, progress: Progress) -> None:
        admin = self.admin(timeout_ms=30_000)  # a broker just started on a busy machine answers slowly
        try:
            existing = set(admin.list_topics(timeout=30).topics)
            wanted = self.wanted_topics()
            missing = [NewTopic(t.name, num_partitions=t.partitions, replication_factor=1, config=t.config)
                       for t in wanted if t.name not in existing]
            if missing:
                for name, future in admin.create_topics(missing, request_timeout=30).items():
                    future.result()
                    progress(f"kafka: created topic {name}")
            self._converge(admin, [t for t in wanted if t.name in existing], progress)
        except KafkaException as exc:
            raise StartupError(f"kafka: creating the topics or setting their configs failed: {exc}; "
                               f"read its log: {self.settings.state_dir / 'logs' / 'kafka.log'}") from None

    def _converge(self, admin: AdminClient, present: list[topics.Topic], progress: Progress) -> None:
        """An existing topic gets the configs of ``wanted_topics()`` (e.g. a changed retention), set one by one
        (incremental: any other setting of the topic stays)."""
        if not present:
            return
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t.name) for t in present],
                                           request_timeout=30)
        current = {resource.name: future.result() for resource, future in described.items()}
        changes = []
        for t in present:
            differ = {k: v for k, v in t.config.items()
                      if k not in current[t.name] or current[t.name][k].value != v}
            if differ:
                changes.append((t, differ, {k: current[t.name][k].value if k in current[t.name] else None
                                            for k in differ}))
        if not changes:
            return
        resources = [ConfigResource(ResourceType.TOPIC, t.name, incremental_configs=[
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in differ.items()])
            for t, differ, _ in changes]
        for future in admin.incremental_alter_configs(resources, request_timeout=30).values():
            future.result()
        for t, differ, before in changes:
            progress(f"kafka: topic {t.name}: " + ", ".join(f"{k} {before[k]} -> {v}" for k, v in differ.items()))
