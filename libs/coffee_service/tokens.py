"""Secrets kept as SHA-256 digests and matched in constant time (the ingest's store tokens, the
dashboard's tokens and basic-auth password).

The secrets are long random strings (:func:`new_token`: 32 random bytes), so a fast hash is the
right one: nobody can brute-force 256 bits, and a slow password hash would cost milliseconds on
every request. A presented secret's digest is compared with every stored digest by
``hmac.compare_digest``, without stopping at a match, so the time taken says nothing about which
entry or how many bytes matched (linear in the number of entries: microseconds for a few hundred).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    """The SHA-256 digest of a secret (configured as its 64 lower-case hex digits: ``.hex()``)."""
    return hashlib.sha256(secret.encode()).digest()


def lookup(presented: bytes, entries: Iterable[tuple[bytes, T]]) -> T | None:
    """The value of the entry whose digest is ``presented`` (the last, if several), else None;
    every entry is compared, so the time does not depend on which one matched."""
    found: T | None = None
    for candidate, value in entries:
        if hmac.compare_digest(candidate, presented):
            found = value
    return found


def matches(presented: bytes, digests: Iterable[bytes]) -> bool:
    """Whether ``presented`` is one of ``digests``, in constant time like :func:`lookup`."""
    return lookup(presented, ((candidate, True) for candidate in digests)) is not None
