"""The ingest image's inputs stay in step with the project: same package pins as services/uv.lock, non-root,
pinned base."""

from __future__ import annotations

import re
import tomllib

from coffee_rt.paths import REPO_ROOT

SERVICE = REPO_ROOT / "services" / "coffee_ingest"


def test_image_requirements_match_the_services_lock() -> None:
    lock = tomllib.loads((REPO_ROOT / "services" / "uv.lock").read_text())["package"]
    locked = {p["name"]: p["version"] for p in lock}
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", (SERVICE / "requirements.txt").read_text(), re.M))
    assert {"starlette", "uvicorn", "confluent-kafka", "pydantic", "prometheus-client", "orjson"} <= set(pinned)
    assert {name: (version, locked.get(name)) for name, version in pinned.items() if locked.get(name) != version} == {}


def test_every_pin_has_a_hash() -> None:
    blocks = re.split(r"\n(?=[a-z])", (SERVICE / "requirements.txt").read_text().split("\n", 7)[-1])
    assert blocks and all("--hash=sha256:" in block for block in blocks if "==" in block)


def test_dockerfile_is_pinned_and_non_root() -> None:
    text = (SERVICE / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    assert "--require-hashes" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert text.rstrip().endswith('ENTRYPOINT ["python", "-m", "coffee_ingest"]')
