"""Redis from Debian's redis-server, run as our own process with data under the state folder.

Its password is the stack's generated one (``secrets/redis-password``): it reaches the server in a
config file of mode 0600 (``redis/auth.conf``), not on the command line, which every user can read.
The same file defines the dashboard's ACL user (``DASHBOARD_ACL``), with a password of its own.
"""

from __future__ import annotations

from pathlib import Path

import redis

from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.installers import ensure_binary
from coffee_rt.local.process import ManagedProcess
from coffee_rt.local.secret_files import write_secret
from coffee_rt.local.settings import REDIS_DASHBOARD_USER

# The dashboard reads the live numbers and subscribes to their updates: read commands, MULTI/EXEC (it
# reads a store in one transaction), (un)subscribe and the connection's own commands, on the live
# numbers' keys and channels only; nothing that writes, evaluates scripts or administers.
DASHBOARD_ACL = ("resetkeys ~coffee:* resetchannels &coffee:* -@all +@read +@connection +multi +exec +discard "
                 "+subscribe +unsubscribe +psubscribe +punsubscribe -@dangerous")


class Redis(Component):
    name = "redis"
    start_timeout = 20.0

    def ports(self) -> list[int]:
        return [self.settings.redis_port]

    def address(self) -> str:
        return self.settings.redis_address

    @property
    def auth_conf(self) -> Path:
        return self.home / "auth.conf"

    def prepare(self, progress: Progress) -> None:
        ensure_binary("redis-server", "redis-server", progress)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        s = self.settings
        write_secret(self.auth_conf, f"requirepass {s.redis_password}\n"
                                     f"user {REDIS_DASHBOARD_USER} on >{s.redis_dashboard_password} {DASHBOARD_ACL}\n")

    def processes(self) -> list[ManagedProcess]:
        argv = [
            "redis-server",
            str(self.auth_conf),
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
            client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
            client.ping()
            info: dict[str, object] = client.info("server")  # type: ignore[assignment]
            return Health(True, f"redis {info['redis_version']}")
        except redis.RedisError as exc:
            return Health(False, str(exc))
