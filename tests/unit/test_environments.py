"""One environment per deployable (docs/architecture.md#environments): each lock stays in step with the root
lock the tests run on, and each image's requirements.txt is its deployable's lock, exported."""

from __future__ import annotations

import re
import tomllib

import pytest

from coffee_rt.paths import REPO_ROOT

# The deployables whose code the root environment's tests exercise. infra is not here: it runs a newer
# Pulumi (and grpcio, protobuf) than PyFlink allows beside it, and its tests run in its own environment.
TESTED_HERE = ("operator", "services", "jobs")
REQUIREMENTS = {
    "operator/requirements.txt": "operator",
    "services/coffee_ingest/requirements.txt": "services",
    "services/coffee_dashboard/requirements.txt": "services",
    "services/coffee_auditor/requirements.txt": "services",
    "jobs/requirements.txt": "jobs",
}


def versions(lock_dir: str) -> dict[str, str]:
    lock = tomllib.loads((REPO_ROOT / lock_dir / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


@pytest.mark.parametrize("project", TESTED_HERE)
def test_a_deployable_locks_what_the_tests_run(project: str) -> None:
    root = versions(".")
    assert {name: (version, root.get(name)) for name, version in versions(project).items()
            if not name.startswith("coffee-") and root.get(name) != version} == {}


def test_no_pulumi_outside_infra() -> None:
    for project in (".", *TESTED_HERE):
        assert not {name for name in versions(project) if name.startswith("pulumi")}, project
    assert {"pulumi", "pulumi-kubernetes", "pulumi-policy"} <= set(versions("infra"))
    assert "apache-flink" not in versions("infra")


@pytest.mark.parametrize("path", sorted(REQUIREMENTS))
def test_requirements_are_the_lock_exported(path: str) -> None:
    text = (REPO_ROOT / path).read_text()
    assert f"uv export --project {REQUIREMENTS[path]} --frozen --no-emit-local" in text
    pins = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^\s;]+)", text, re.M))
    locked = versions(REQUIREMENTS[path])
    assert pins and {name: (version, locked.get(name)) for name, version in pins.items()
                     if locked.get(name) != version} == {}
    assert not any(name.startswith(("coffee-", "pulumi")) for name in pins)
