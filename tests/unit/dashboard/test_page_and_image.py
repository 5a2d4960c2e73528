"""The first page load stays under 300 KB; the image's inputs stay pinned and in step with services/uv.lock."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from coffee_rt.paths import REPO_ROOT

SERVICE = REPO_ROOT / "services" / "coffee_dashboard"
STATIC = SERVICE / "static"
BUDGET = 300 * 1024


def first_load_files() -> list[Path]:
    html = (STATIC / "index.html").read_text()
    refs = re.findall(r'(?:href|src)="/static/([^"]+)"', html)
    return [STATIC / "index.html", *(STATIC / ref for ref in refs)]


def test_first_load_under_budget() -> None:
    files = first_load_files()
    assert {f.name for f in files} == {"index.html", "app.css", "app.js", "uPlot.min.css", "uPlot.iife.min.js"}
    missing = [str(f) for f in files if not f.is_file()]
    assert missing == [], "run services/coffee_dashboard/web/build.sh (tools/bootstrap.sh does)"
    total = sum(f.stat().st_size for f in files)
    print(f"first page load: {total} bytes")
    assert total < BUDGET


def test_chart_library_pinned_and_locked() -> None:
    package = json.loads((SERVICE / "web" / "package.json").read_text())
    lock = json.loads((SERVICE / "web" / "package-lock.json").read_text())
    version = package["dependencies"]["uplot"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)  # exact, no range
    entry = lock["packages"]["node_modules/uplot"]
    assert entry["version"] == version and entry["integrity"].startswith("sha512-")
    assert (STATIC / "vendor" / ".lock-sha256").is_file()


def test_image_requirements_match_the_services_lock() -> None:
    lock = tomllib.loads((REPO_ROOT / "services" / "uv.lock").read_text())["package"]
    locked = {p["name"]: p["version"] for p in lock}
    text = (SERVICE / "requirements.txt").read_text()
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", text, re.M))
    assert {"starlette", "uvicorn", "redis", "psycopg", "httpx", "confluent-kafka", "pydantic",
            "prometheus-client", "orjson"} <= set(pinned)
    assert {name: (version, locked.get(name)) for name, version in pinned.items() if locked.get(name) != version} == {}
    blocks = re.split(r"\n(?=[a-z])", text)
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


def test_dockerfile_is_pinned_non_root_and_vendors_the_chart_library() -> None:
    text = (SERVICE / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    assert re.search(r"^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-bookworm-slim$", text, re.M)
    assert "npm ci --ignore-scripts" in text and "--require-hashes" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert text.rstrip().endswith('ENTRYPOINT ["python", "-m", "coffee_dashboard"]')


def test_the_build_context_sends_every_library_the_image_copies() -> None:
    copied = re.findall(r"^COPY (libs/\w+) ", (SERVICE / "Dockerfile").read_text(), re.M)
    ignore = (SERVICE / "Dockerfile.dockerignore").read_text()
    assert copied == ["libs/coffee_flink", "libs/coffee_jobconfig", "libs/coffee_live", "libs/coffee_orders",
                      "libs/coffee_service", "libs/coffee_settings"]
    assert [lib for lib in copied if f"!{lib}/\n" not in ignore] == []
