"""An Apache Flink session cluster (JobManager + TaskManager) from the apache-flink wheel's bin/.

The wheel ships the Flink distribution (bin/, lib/, opt/, plugins/). We leave it untouched and
point its scripts at our own conf folder and a lib folder that adds the connector jars.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from coffee_flink import dist, rest
from coffee_rt.errors import PrerequisiteError
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.installers import job_functions_jar, maven_jars, require_java
from coffee_rt.local.process import ManagedProcess


def flink_dist() -> Path:
    """The Flink distribution inside the installed apache-flink wheel."""
    try:
        return dist.flink_dist()
    except dist.FlinkNotInstalled as exc:
        raise PrerequisiteError(str(exc)) from None


def flink_python_jar() -> Path:
    """The jar whose PythonDriver runs PyFlink programs submitted over REST."""
    try:
        return dist.flink_python_jar()
    except dist.FlinkNotInstalled as exc:
        raise PrerequisiteError(str(exc)) from None


class Flink(Component):
    name = "flink"
    start_timeout = 120.0

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    @property
    def checkpoint_dir(self) -> Path:
        return self.home / "checkpoints"

    @property
    def savepoint_dir(self) -> Path:
        return self.home / "savepoints"

    @property
    def tmp_dir(self) -> Path:
        """The processes' scratch (TaskManager working dirs, blobs): inside the state folder, emptied at
        each start. Under /tmp, every TaskManager that was killed left its working dir (hundreds of MB)."""
        return self.home / "tmp"

    def ports(self) -> list[int]:
        p = self.settings.ports()
        return [p["flink_rest_port"], p["flink_rpc_port"], p["flink_blob_port"],
                p["flink_taskmanager_rpc_port"], p["flink_taskmanager_data_port"],
                p["flink_jobmanager_metrics_port"], p["flink_taskmanager_metrics_port"]]

    def address(self) -> str:
        return self.settings.flink_rest_url

    def config(self) -> dict[str, Any]:
        s, p = self.settings, self.settings.ports()
        wheel_conf = yaml.safe_load((flink_dist() / "conf" / "config.yaml").read_text()) or {}
        java_opts = wheel_conf.get("env", {}).get("java", {}).get("opts", {}).get("all", "")
        return {
            "env.java.opts.all": f"{java_opts} {self.jvm_crash_file_option}".strip(),
            # The JobManager's busiest work is planning the job once at submission (SQL, code
            # generation): the C1 compiler alone spends less CPU on it than C1 and C2 together, and
            # the JobManager has no hot loop that needs C2's code. The TaskManager keeps both.
            "env.java.opts.jobmanager": "-XX:TieredStopAtLevel=1",
            "env.log.dir": str(self.settings.state_dir / "logs"),
            "io.tmp.dirs": str(self.tmp_dir),
            "jobmanager.bind-host": s.host,
            "jobmanager.rpc.address": s.host,
            "jobmanager.rpc.port": p["flink_rpc_port"],
            "jobmanager.memory.process.size": s.flink_jobmanager_memory,
            "jobmanager.execution.failover-strategy": "region",
            "taskmanager.bind-host": s.host,
            "taskmanager.host": s.host,
            "taskmanager.rpc.port": str(p["flink_taskmanager_rpc_port"]),
            "taskmanager.data.port": p["flink_taskmanager_data_port"],
            "taskmanager.numberOfTaskSlots": s.flink_taskmanager_slots,
            "taskmanager.memory.process.size": s.flink_taskmanager_memory,
            # Local jobs keep state on the heap (hashmap backend): give the heap what managed
            # memory (RocksDB's, batch sorts') would otherwise hold unused; RocksDB still gets some.
            "taskmanager.memory.managed.fraction": 0.1,
            "blob.server.port": str(p["flink_blob_port"]),
            "rest.address": s.host,
            "rest.bind-address": s.host,
            "rest.port": p["flink_rest_port"],
            "parallelism.default": 1,
            "state.backend.type": "hashmap",
            "execution.checkpointing.dir": self.checkpoint_dir.as_uri(),
            "execution.checkpointing.savepoint-dir": self.savepoint_dir.as_uri(),
            "execution.checkpointing.num-retained": 3,
            # A task slow to cancel (a JDBC sink's close() retrying into a Postgres that is down) would
            # after this timeout be a fatal TaskManager error, ending the process and its slots: 0
            # turns that watchdog off. (A close() that throws in a failed task's clean-up is fatal
            # too; the job's Postgres sinks log instead: docs/flink-job.md#failures-and-recovery.)
            "task.cancellation.timeout": 0,
            # The job's state as gauges (<state>State = 1): the dashboard reads it there, not from REST.
            "metrics.job.status.enable": "STATE",
            "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
            # The range is the default; each process is given its own port below (-D), so that the
            # JobManager's metrics (the job's state, read by the dashboard) are always on its port.
            "metrics.reporter.prom.port": f"{p['flink_jobmanager_metrics_port']}-{p['flink_taskmanager_metrics_port']}",
            "metrics.reporter.prom.host": s.host,
            "python.executable": sys.executable,
            "python.client.executable": sys.executable,
            # flink-python sits in lib/ (see prepare) and pemja's classes load parent-first: its
            # native library can be loaded by one class loader per JVM only, so a second job on
            # the session cluster would fail in thread mode if each job's class loader took its own.
            "classloader.parent-first-patterns.additional": "pemja.",
            "web.submit.enable": True,
            "web.cancel.enable": True,
        }

    def prepare(self, progress: Progress) -> None:
        require_java(17)
        dist = flink_dist()
        connectors = maven_jars("flink", self.settings.cache_dir, progress)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # nothing runs: the last processes' scratch
        for folder in (self.conf_dir, self.checkpoint_dir, self.savepoint_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        self.lib_dir.mkdir(parents=True)
        functions = job_functions_jar(self.settings.cache_dir, [dist / "lib", connectors], progress)
        for jar in [*(dist / "lib").glob("*.jar"), flink_python_jar(), *connectors.glob("*.jar"), functions]:
            (self.lib_dir / jar.name).symlink_to(jar)
        for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties"):
            shutil.copy(dist / "conf" / name, self.conf_dir / name)
        (self.conf_dir / "config.yaml").write_text(yaml.safe_dump(self.config(), sort_keys=True))

    def _env(self) -> dict[str, str]:
        env = {"FLINK_CONF_DIR": str(self.conf_dir), "FLINK_LIB_DIR": str(self.lib_dir)}
        java = shutil.which("java")
        if java and "JAVA_HOME" not in os.environ:
            env["JAVA_HOME"] = str(Path(java).resolve().parents[1])
        return env

    def processes(self) -> list[ManagedProcess]:
        bin_dir = flink_dist() / "bin"
        # Niced: on a small machine the ingest's request path (and Kafka behind it) should get a core
        # the moment it needs one; the job has a latency budget of tens of ms, not single ms.
        nice = self.settings.flink_niceness
        p = self.settings.ports()
        return [
            self.process("jobmanager", ["bash", str(bin_dir / "jobmanager.sh"), "start-foreground",
                                        "-D", f"metrics.reporter.prom.port={p['flink_jobmanager_metrics_port']}"],
                         env=self._env(), niceness=nice),
            self.process("taskmanager", ["bash", str(bin_dir / "taskmanager.sh"), "start-foreground",
                                         "-D", f"metrics.reporter.prom.port={p['flink_taskmanager_metrics_port']}"],
                         env=self._env(), niceness=nice),
        ]

    def health(self) -> Health:
        try:
            overview = httpx.get(f"{self.address()}/overview", timeout=2, verify=rest.tls_context()).json()
        except (httpx.HTTPError, ValueError) as exc:
            return Health(False, str(exc) or type(exc).__name__)
        if overview.get("taskmanagers", 0) < 1:
            return Health(False, "no TaskManager registered yet")
        return Health(True, f"flink {overview.get('flink-version')}, {overview['slots-available']}/"
                            f"{overview['slots-total']} slots free, {overview.get('jobs-running', 0)} jobs running")
