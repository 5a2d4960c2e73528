"""redis_exporter and postgres_exporter, the exporters the infra deploys, built from the Go module proxy.

One ``go build`` of the wrapper module tools/exporters (go.mod/go.sum committed, read-only) into
``<cache>/exporters/<fingerprint>/bin``; a matching fingerprint means no work. The Redis exporter runs
alerts/exporters/redis-live-freshness.lua, which exports when the job last wrote the live metrics.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from coffee_db import roles
from coffee_rt.errors import PrerequisiteError
from coffee_rt.k8s import goenv
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.process import ManagedProcess
from coffee_rt.local.secret_files import write_secret
from coffee_rt.paths import REPO_ROOT, TOOLS_DIR

MODULE_DIR = TOOLS_DIR / "exporters"
PACKAGES = {
    "redis_exporter": "github.com/oliver006/redis_exporter",
    "postgres_exporter": "github.com/prometheus-community/postgres_exporter/cmd/postgres_exporter",
}
FRESHNESS_SCRIPT = REPO_ROOT / "alerts" / "exporters" / "redis-live-freshness.lua"
MIN_GO = (1, 23)


def _fingerprint(go_version: str) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((MODULE_DIR / name).read_bytes())
    digest.update(f"\0{go_version}\0{sorted(PACKAGES.items())}".encode())
    return digest.hexdigest()[:16]


@functools.cache
def _go_version() -> str:
    go = goenv.require_go(MIN_GO)
    return subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def built_binary(cache: Path, name: str) -> Path:
    """Path of an exporter for this go.mod/go.sum; an error (not a build) when it is not built yet."""
    path = cache / "exporters" / _fingerprint(_go_version()) / "bin" / name
    if not path.is_file():
        raise PrerequisiteError(f"{name} is not built yet (`coffee-rt local up {name.replace('_', '-')}` builds it)")
    return path


def bin_dir(cache: Path, progress: Progress) -> Path:
    """Folder holding both exporters, building them first when the cache lacks this version."""
    go, go_version = goenv.go_binary(), _go_version()
    home = cache / "exporters" / _fingerprint(go_version)
    target = home / "bin"
    if all((target / name).is_file() for name in PACKAGES):
        return target
    home.mkdir(parents=True, exist_ok=True)
    with open(home.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a CLI `up` and a test session may race
        if all((target / name).is_file() for name in PACKAGES):
            return target
        progress(f"exporters: building {', '.join(PACKAGES)} with {go_version} (first run only, a few minutes)")
        started = time.monotonic()
        staging = home / "bin.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        env = goenv.env(cache)
        env["GONOSUMDB"] = "github.com/oliver006/redis_exporter"
        result = subprocess.run(
            [go, "build", "-mod=readonly", "-trimpath", "-ldflags", "-s -w", "-o", f"{staging}/", *PACKAGES.values()],
            cwd=MODULE_DIR, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PrerequisiteError(
                f"building the exporters failed (go build in {MODULE_DIR}):\n{result.stderr[-4000:]}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        progress(f"exporters: built in {time.monotonic() - started:.0f} s into {target}")
    return target


def _metrics_health(url: str, expect: str) -> Health:
    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError as exc:
        return Health(False, f"GET {url}: {exc}")
    if response.status_code != 200:
        return Health(False, f"GET {url}: {response.status_code}")
    line = next((ln for ln in response.text.splitlines() if ln.startswith(expect)), None)
    return Health(True, line or f"{expect} not reported")


class RedisExporter(Component):
    name = "redis-exporter"
    start_timeout = 30.0

    def ports(self) -> list[int]:
        return [self.settings.redis_exporter_port]

    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.redis_exporter_port}/metrics"

    @property
    def redis_addr(self) -> str:
        return f"redis://{self.settings.host}:{self.settings.redis_port}"

    @property
    def password_file(self) -> Path:
        """The exporter's password file (JSON: address -> password), mode 0600."""
        return self.home / "passwords.json"

    def prepare(self, progress: Progress) -> None:
        bin_dir(self.settings.cache_dir, progress)
        write_secret(self.password_file, json.dumps({self.redis_addr: self.settings.redis_password}))

    def processes(self) -> list[ManagedProcess]:
        binary = built_binary(self.settings.cache_dir, "redis_exporter")
        s = self.settings
        argv = [str(binary), "--redis.addr", self.redis_addr, "--redis.password-file", str(self.password_file),
                "--web.listen-address", f"{s.host}:{s.redis_exporter_port}",
                "--script", str(FRESHNESS_SCRIPT)]
        return [self.process("", argv, niceness=self.settings.background_niceness)]

    def health(self) -> Health:
        return _metrics_health(self.address(), "redis_up")


class PostgresExporter(Component):
    name = "postgres-exporter"
    start_timeout = 30.0

    def ports(self) -> list[int]:
        return [self.settings.postgres_exporter_port]

    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.postgres_exporter_port}/metrics"

    @property
    def password_file(self) -> Path:
        return self.home / "postgres-password"

    def prepare(self, progress: Progress) -> None:
        bin_dir(self.settings.cache_dir, progress)
        write_secret(self.password_file, self.settings.postgres_role_password(roles.MONITOR))

    def processes(self) -> list[ManagedProcess]:
        binary = built_binary(self.settings.cache_dir, "postgres_exporter")
        s = self.settings
        argv = [str(binary), "--web.listen-address", f"{s.host}:{s.postgres_exporter_port}"]
        # The password from a file (mode 0600), not in the DSN of its environment.
        env = {"DATA_SOURCE_URI": f"{s.host}:{s.postgres_port}/{s.postgres_db}?sslmode=disable",
               "DATA_SOURCE_USER": roles.MONITOR, "DATA_SOURCE_PASS_FILE": str(self.password_file)}
        return [self.process("", argv, env=env, niceness=s.background_niceness)]

    def health(self) -> Health:
        return _metrics_health(self.address(), "pg_up")
