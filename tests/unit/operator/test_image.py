"""The operator image's inputs stay in step with the project: operator/uv.lock's pins, hashes, non-root, what it
runs."""

from __future__ import annotations

import re
import tomllib

from coffee_rt.paths import REPO_ROOT

OPERATOR = REPO_ROOT / "operator"


def test_image_requirements_match_the_operator_lock() -> None:
    lock = tomllib.loads((OPERATOR / "uv.lock").read_text())["package"]
    locked = {p["name"]: p["version"] for p in lock}
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", (OPERATOR / "requirements.txt").read_text(),
                             re.M))
    assert {"kopf", "kubernetes", "prometheus-client", "httpx", "pydantic", "tzdata"} <= set(pinned)
    assert {name: (version, locked.get(name)) for name, version in pinned.items() if locked.get(name) != version} == {}


def test_every_pin_has_a_hash() -> None:
    text = (OPERATOR / "requirements.txt").read_text()
    blocks = [b for b in re.split(r"\n(?=[a-z])", text) if "==" in b]
    assert len(blocks) >= 6 and all("--hash=sha256:" in block for block in blocks)


def test_the_flink_python_jar_comes_from_the_wheel_the_job_lock_pins() -> None:
    lock = {p["name"]: p for p in tomllib.loads((REPO_ROOT / "jobs" / "uv.lock").read_text())["package"]}
    libraries = lock["apache-flink-libraries"]
    (wheel,) = libraries["wheels"]
    text = (OPERATOR / "Dockerfile").read_text()
    assert f"apache-flink-libraries=={libraries['version']} --hash={wheel['hash']}" in text
    assert f"pyflink/opt/flink-python-{libraries['version']}.jar" in text


def test_dockerfile_is_pinned_non_root_and_runs_kopf() -> None:
    text = (OPERATOR / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    assert "--require-hashes" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert ('ENTRYPOINT ["kopf", "run", "-m", "coffee_operator.handlers", "--standalone", '
            '"--liveness=http://0.0.0.0:8080/healthz"]') in text
    for package in ("libs/coffee_flink", "libs/coffee_jobconfig", "operator/coffee_operator"):
        assert f"!{package}/" in (OPERATOR / "Dockerfile.dockerignore").read_text()
