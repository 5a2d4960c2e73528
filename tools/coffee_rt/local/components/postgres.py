"""PostgreSQL from Debian's packages, run as our own cluster under the state folder.

Postgres refuses to run as root, so when we are root the cluster belongs to the ``postgres``
user that the Debian package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
import psycopg.sql

from coffee_db import roles
from coffee_db.migrate import migrate
from coffee_rt.errors import PrerequisiteError
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.installers import apt_install
from coffee_rt.local.process import ManagedProcess, as_user


def _bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def folders_blocking(path: Path, uid: int) -> list[Path]:
    """Ancestors of ``path`` that user ``uid`` (not their owner) may not pass through."""
    return [folder for folder in reversed(path.absolute().parents)
            if folder.stat().st_uid != uid and not folder.stat().st_mode & 0o001]


class Postgres(Component):
    name = "postgres"
    start_timeout = 30.0

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "sock"

    @property
    def run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def ports(self) -> list[int]:
        return [self.settings.postgres_port]

    def address(self) -> str:
        return self.settings.postgres_address

    def _bin(self, name: str) -> str:
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise PrerequisiteError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        return str(bin_dir / name)

    def prepare(self, progress: Progress) -> None:
        if _bin_dir() is None:
            apt_install(["postgresql"], progress)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            uid = pwd.getpwnam(self.run_as).pw_uid
            for folder in folders_blocking(self.home, uid):
                # e.g. a checkout under `mktemp -d` (0700): postgres could not reach its data dir.
                progress(f"postgres: letting other users pass through {folder} (o+x, no listing)")
                folder.chmod(folder.stat().st_mode | 0o001)
            self._chown(self.home)
        if (self.data_dir / "PG_VERSION").exists():
            return
        progress("postgres: initdb")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        pwfile = self.home / ".pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.settings.postgres_password + "\n")
        if self.run_as:
            self._chown(self.home)
        result = subprocess.run(
            [self._bin("initdb"), "-D", str(self.data_dir), "-U", self.settings.postgres_user,
             f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
             "--encoding=UTF8", "--locale=C.UTF-8"],
            capture_output=True, text=True, check=False, **as_user(self.run_as),
        )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise PrerequisiteError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def _chown(self, path: Path) -> None:
        entry = pwd.getpwnam("postgres")
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)

    def processes(self) -> list[ManagedProcess]:
        argv = [
            self._bin("postgres") if _bin_dir() else "postgres",
            "-D", str(self.data_dir),
            "-p", str(self.settings.postgres_port),
            "-c", f"listen_addresses={self.settings.host}",
            "-c", f"unix_socket_directories={self.socket_dir}",
            # Local connections are trusted (initdb --auth-local=trust): the socket is the owner's alone.
            "-c", "unix_socket_permissions=0700",
            "-c", "max_connections=200",
            "-c", "shared_buffers=256MB",
            "-c", "synchronous_commit=on",
        ]
        return [self.process("", argv, user=self.run_as, niceness=self.settings.background_niceness)]

    def _socket_connect(self, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
        """The owner's connection through the Unix socket (trusted: the socket's folder is the
        stack's own), which needs no password: the password is set through it."""
        s = self.settings
        return psycopg.connect(host=str(self.socket_dir), port=s.postgres_port, user=s.postgres_user,
                               dbname="postgres", **kwargs)  # type: ignore[arg-type]

    def health(self) -> Health:
        try:
            with self._socket_connect(connect_timeout=2) as conn:
                version = conn.execute("SHOW server_version").fetchone()
            return Health(True, f"postgres {version[0] if version else '?'}")
        except psycopg.Error as exc:
            return Health(False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)

    def after_start(self, progress: Progress) -> None:
        s = self.settings
        with self._socket_connect(autocommit=True) as conn:
            # The owner's password is the generated one of this state folder (secrets/), also for a
            # cluster made before it was.
            _set_password(conn, s.postgres_user, s.postgres_password)
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.postgres_db,)).fetchone()
            if not exists:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(s.postgres_db)))
                progress(f"postgres: created database {s.postgres_db}")
        applied = migrate(s.postgres_dsn)
        if applied:
            progress(f"postgres: applied migrations {', '.join(applied)}")
        with self._socket_connect(autocommit=True) as conn:
            for role in roles.ROLES:  # created by the migrations without a password
                _set_password(conn, role, s.postgres_role_password(role))


def _set_password(conn: psycopg.Connection[tuple[object, ...]], role: str, password: str) -> None:
    """Set ``role``'s password, sent as its SCRAM verifier: the text never reaches the server."""
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        psycopg.sql.Identifier(role), psycopg.sql.Literal(verifier.decode())))
