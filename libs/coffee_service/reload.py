"""A configuration file that is read again when its content changes (the services' token files).

Revoking a token must not need a restart: the file is read every few seconds and parsed only when
its bytes differ from the last ones seen. Kubernetes updates a mounted Secret by swapping a
symlink, so the file's content is compared, not its modification time. A file that cannot be read
or parsed at a reload changes nothing: the last good value stays in use, the error is logged once
per distinct problem (naming the file, never its content) and ``ok`` is False until a good file
arrives. At start a bad file is an error, raised to the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("coffee_service.reload")

Outcome = Callable[[str], None]  # "loaded" or "failed"


class WatchedFile(Generic[T]):
    """``value`` is ``parse`` of the file's newest good content; ``parse`` raises ValueError
    (or OSError) with a message safe to log."""

    def __init__(self, path: Path, parse: Callable[[str], T], *, what: str,
                 on_outcome: Outcome | None = None) -> None:
        self.path, self.parse, self.what = path, parse, what
        self.on_outcome = on_outcome or (lambda outcome: None)
        content = path.read_bytes()  # OSError: the caller names the file
        self.value: T = parse(content.decode("utf-8", errors="strict"))
        self._seen = hashlib.sha256(content).digest()
        self._error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the file as it is now is the one in use."""
        return self._error is None

    def check(self) -> bool:
        """Read the file; True when it changed and its new value is now in use."""
        try:
            content = self.path.read_bytes()
        except OSError as exc:
            self._failed(f"cannot read {self.path}: {exc.strerror}")
            return False
        seen = hashlib.sha256(content).digest()
        if seen == self._seen:  # unchanged, or back to the content in use after a bad one
            self._error = None
            return False
        try:
            value = self.parse(content.decode("utf-8", errors="strict"))
        except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
            message = str(exc) if not isinstance(exc, UnicodeDecodeError) else "not UTF-8"
            self._failed(f"{self.path}: {message}")
            return False
        self.value, self._seen, self._error = value, seen, None
        self.on_outcome("loaded")
        log.info("%s reloaded from %s", self.what, self.path)
        return True

    def _failed(self, error: str) -> None:
        if error != self._error:
            self.on_outcome("failed")
            log.error("%s not reloaded, the last good one stays in use: %s", self.what, error)
        self._error = error

    async def watch(self, interval_s: float, on_change: Callable[[T], None]) -> None:
        """Check every ``interval_s`` until cancelled; ``on_change`` gets each new value."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                changed = self.check()
            except Exception:  # a bug here must not stop the service from serving
                log.exception("%s: checking %s failed", self.what, self.path)
                continue
            if changed:
                on_change(self.value)
