"""Redis from Debian's redis-server, run as our own process with data under the state folder."""

from __future__ import annotations

import redis

from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.installers import ensure_binary
from coffee_rt.local.process import ManagedProcess


class Redis(Component):
    name = "redis"
    start_timeout = 20.0

    def ports(self) -> list[int]:
        return [self.settings.redis_port]

    def address(self) -> str:
        return self.settings.redis_url

    def prepare(self, progress: Progress) -> None:
        ensure_binary("redis-server", "redis-server", progress)
        (self.home / "data").mkdir(parents=True, exist_ok=True)

    def processes(self) -> list[ManagedProcess]:
        argv = [
            "redis-server",
            "--bind", self.settings.host,
            "--port", str(self.settings.redis_port),
            "--dir", str(self.home / "data"),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]
        return [self.process("", argv, niceness=self.settings.background_niceness)]

    def health(self) -> Health:
        try:
            client = redis.Redis.from_url(self.address(), socket_timeout=2, socket_connect_timeout=2)
            client.ping()
            info: dict[str, object] = client.info("server")  # type: ignore[assignment]
            return Health(True, f"redis {info['redis_version']}")
        except redis.RedisError as exc:
            return Health(False, str(exc))
