"""The job image runs the same Flink as the job's lock, the local stack and infra (we can't build images here)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import yaml

from coffee_rt.paths import REPO_ROOT
from infra.components import flink_release


def locked(name: str) -> str:
    lock = tomllib.loads((REPO_ROOT / "jobs" / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == name)


def test_image_flink_matches_the_locked_apache_flink() -> None:
    dockerfile = (REPO_ROOT / "jobs" / "Dockerfile").read_text()
    image = re.search(r"ARG FLINK_IMAGE=flink:(\S+)-scala_2\.12-java17", dockerfile)
    assert image is not None
    assert image.group(1) == locked("apache-flink") == "2.2.1"


def test_image_python_packages_are_hash_pinned_to_the_lock() -> None:
    requirements = (REPO_ROOT / "jobs" / "requirements.txt").read_text()
    pins = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", requirements, re.M))
    for name in ("apache-flink", "apache-flink-libraries", "pydantic", "redis", "apache-beam"):
        assert pins[name] == locked(name), name
    assert requirements.count("--hash=sha256:") >= len(pins)


def test_kafka_connector_matches_the_flink_minor() -> None:
    pom = (REPO_ROOT / "tools" / "maven" / "flink" / "pom.xml").read_text()
    connector = re.search(r"flink-sql-connector-kafka</artifactId>\s*<version>([^<]+)</version>", pom)
    assert connector is not None
    assert connector.group(1).endswith("-" + ".".join(locked("apache-flink").split(".")[:2]))


def test_infra_flink_release_is_the_installed_and_locked_apache_flink() -> None:
    """infra has no PyFlink: its Flink version and the release's default config are constants, checked here."""
    import pyflink

    assert flink_release.FLINK_VERSION == importlib.metadata.version("apache-flink") == locked("apache-flink")
    conf = Path(pyflink.__file__).parent / "conf"
    wheel = yaml.safe_load((conf / "config.yaml").read_text())
    assert flink_release.JAVA_OPTS_ALL == wheel["env"]["java"]["opts"]["all"]
    assert flink_release.LOG4J_CONSOLE_PROPERTIES == (conf / "log4j-console.properties").read_text()
