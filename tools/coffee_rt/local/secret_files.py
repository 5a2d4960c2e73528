"""The local stack's secrets: generated on first use, kept in files only their owner reads.

Each credential is a file of mode 0600 in a folder of mode 0700 under the state folder
(``secrets/`` for the stack's own passwords, ``job/secrets/`` for the files the job reads). A
password is generated once per state folder, so every stack, a test stack too, has its own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from coffee_rt.errors import CoffeeRtError


def write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` (mode 0600, its folder 0700), replacing it in one step: a reader
    never sees half of it."""
    _private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, value.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def generated_secret(path: Path) -> str:
    """The secret in ``path``, generated (40 hex digits) when the file does not exist yet; two
    processes asking at once get the same one."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    _private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_hex(20).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails when another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        raise CoffeeRtError(f"the secret file {path} is empty; remove it to have a new one generated "
                            "(and restart the servers that use it)")
    return value


def _private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
