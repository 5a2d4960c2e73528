"""Per-store bearer tokens, kept only as SHA-256 digests.

Digests and their constant-time match are ``coffee_service.tokens`` (why SHA-256 suffices: there).
The token file (a Kubernetes Secret mounted as a file, or its content in ``INGEST_TOKENS``)::

    {"tokens": [{"store_id": "store-01", "sha256": "<64 hex digits>", "label": "till 1"}]}

Several tokens per store are allowed (rotation: add the new one, roll the tills, drop the old).
Tokens are never logged, never echoed in errors and not kept in memory as plain text.

``python -m coffee_ingest.auth new STORE_ID [LABEL]`` prints a fresh token and its file entry.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coffee_orders.schema import StoreId
from coffee_service import tokens
from coffee_service.tokens import new_token as new_token  # python -m coffee_ingest.auth new, the local stack

_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*) *")


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    store_id: StoreId
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    label: str = ""


class TokenFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[TokenEntry]


class TokenFileError(ValueError):
    """The token file is missing or malformed (the message never contains token material)."""


@dataclass(eq=False)
class AuthError(Exception):
    """Authentication failed: ``status`` 401 with a message safe to show the caller."""

    detail: str
    error: str = "invalid_token"  # RFC 6750 error code for WWW-Authenticate


def digest(token: str) -> str:
    """The token file's form of a token: its SHA-256 as 64 lower-case hex digits."""
    return tokens.digest(token).hex()


def entry_for(store_id: str, token: str, label: str = "") -> TokenEntry:
    return TokenEntry(store_id=store_id, sha256=digest(token), label=label)


def parse_token_file(text: str) -> TokenFile:
    try:
        return TokenFile.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in exc.errors()
        )
        raise TokenFileError(f"invalid token file: {problems}") from None


def load_tokens(path: Path | None = None, content: str | None = None) -> TokenFile:
    if path is not None:
        try:
            content = path.read_text()
        except OSError as exc:
            raise TokenFileError(f"cannot read token file {path}: {exc.strerror}") from None
    if content is None:
        raise TokenFileError("no token file given")
    return parse_token_file(content)


class Authenticator:
    """Maps a bearer token to the one store it may post for."""

    def __init__(self, token_file: TokenFile) -> None:
        stores: dict[bytes, str] = {}
        for entry in token_file.tokens:
            key = bytes.fromhex(entry.sha256)
            known = stores.get(key)
            if known is not None and known != entry.store_id:
                raise TokenFileError(f"one token is listed for two stores ({known}, {entry.store_id})")
            stores[key] = entry.store_id
        self._entries = tuple(stores.items())

    @property
    def store_count(self) -> int:
        return len({store for _, store in self._entries})

    def store_for(self, authorization: str | None) -> str:
        """The store_id of the token in an ``Authorization`` header; raises :class:`AuthError`."""
        if not authorization:
            raise AuthError("missing Authorization header; send 'Authorization: Bearer <store token>'",
                            error="invalid_request")
        match = _BEARER.fullmatch(authorization)
        if match is None:
            raise AuthError("Authorization must be 'Bearer <store token>'", error="invalid_request")
        store = tokens.lookup(tokens.digest(match.group(1)), self._entries)
        if store is None:
            raise AuthError("the bearer token is not valid")
        return store


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "new":
        print("usage: python -m coffee_ingest.auth new STORE_ID [LABEL]", file=sys.stderr)
        return 2
    token = new_token()
    entry = entry_for(argv[1], token, argv[2] if len(argv) > 2 else "")
    print(f"token (give it to the store, it is not stored anywhere): {token}")
    print(f"token file entry: {json.dumps(entry.model_dump())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
