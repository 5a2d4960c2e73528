"""The auditor image's inputs stay in step with the project: same package pins as services/uv.lock, non-root,
pinned base, only what it runs in the build context."""

from __future__ import annotations

import re
import tomllib

from coffee_rt.cluster.images import IMAGES
from coffee_rt.paths import REPO_ROOT

SERVICE = REPO_ROOT / "services" / "coffee_auditor"


def test_image_requirements_match_the_services_lock() -> None:
    lock = tomllib.loads((REPO_ROOT / "services" / "uv.lock").read_text())["package"]
    locked = {p["name"]: p["version"] for p in lock}
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) ", (SERVICE / "requirements.txt").read_text(), re.M))
    assert {"confluent-kafka", "psycopg", "psycopg-binary", "redis", "pydantic", "prometheus-client",
            "tzdata"} <= set(pinned)
    assert not {"starlette", "uvicorn", "httpx"} & set(pinned)  # no web framework: a WSGI server of the stdlib
    assert {name: (version, locked.get(name)) for name, version in pinned.items() if locked.get(name) != version} == {}


def test_every_pin_has_a_hash() -> None:
    blocks = re.split(r"\n(?=[a-z])", (SERVICE / "requirements.txt").read_text().split("\n", 4)[-1])
    assert len(blocks) >= 10 and all("--hash=sha256:" in block for block in blocks if "==" in block)


def test_dockerfile_is_pinned_non_root_and_runs_the_auditor() -> None:
    text = (SERVICE / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    assert "--require-hashes --only-binary=:all:" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(r"^EXPOSE 9195$", text, re.M)
    assert text.rstrip().endswith('ENTRYPOINT ["python", "-m", "coffee_auditor"]')


def test_the_build_context_sends_every_library_the_image_copies() -> None:
    copied = re.findall(r"^COPY (libs/\w+) ", (SERVICE / "Dockerfile").read_text(), re.M)
    ignore = (SERVICE / "Dockerfile.dockerignore").read_text().splitlines()
    assert copied == ["libs/coffee_ledger", "libs/coffee_live", "libs/coffee_orders", "libs/coffee_settings"]
    assert [line for line in ignore if line.startswith("!")] == ["!services/coffee_auditor/",
                                                                 *[f"!{lib}/" for lib in copied]]


def test_the_image_build_knows_it() -> None:
    image = IMAGES["auditor"]
    assert (image.dockerfile, dict(image.bases), image.reference("auditor")) == (
        "services/coffee_auditor/Dockerfile", {"PYTHON_IMAGE": "python"}, "localhost/coffee-rt/auditor:dev")
