"""The JVM servers' generated settings (Flink cluster config, Kafka command line)."""

from __future__ import annotations

from pathlib import Path

from coffee_rt.local.components.flink import Flink
from coffee_rt.local.settings import LocalSettings


def test_jvm_crash_reports_go_to_the_log_folder_not_the_working_directory(tmp_path: Path) -> None:
    settings = LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    opts = Flink(settings).config()["env.java.opts.all"].split()
    assert f"-XX:ErrorFile={tmp_path / 'state' / 'logs' / 'hs_err_pid%p.log'}" in opts
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in opts  # the wheel's own options are kept


def test_pemja_loads_parent_first_for_thread_mode(tmp_path: Path) -> None:
    config = Flink(LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")).config()
    assert config["classloader.parent-first-patterns.additional"] == "pemja."


def test_kafka_jvm_crash_reports_go_to_the_log_folder_too(tmp_path: Path) -> None:
    from coffee_rt.local.components.kafka import Kafka

    settings = LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    assert f"-XX:ErrorFile={tmp_path / 'state' / 'logs' / 'hs_err_pid%p.log'}" in Kafka(settings)._java()


def test_flink_scratch_is_in_the_state_folder_not_tmp(tmp_path: Path) -> None:
    """A killed TaskManager leaves its working dir behind: it must be where the next start empties it."""
    flink = Flink(LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache"))
    assert flink.config()["io.tmp.dirs"] == str(tmp_path / "state" / "flink" / "tmp")
