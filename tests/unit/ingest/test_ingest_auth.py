"""Per-store bearer tokens: hashed at rest, compared in constant time, never echoed."""

from __future__ import annotations

import hashlib
import json

import pytest

from coffee_ingest.auth import (
    Authenticator,
    AuthError,
    TokenFile,
    TokenFileError,
    digest,
    entry_for,
    load_tokens,
    main,
    new_token,
    parse_token_file,
)

TOKEN_1 = "tok-one-" + "a" * 36
TOKEN_2 = "tok-two-" + "b" * 36
TOKEN_1B = "tok-one-rotated-" + "c" * 30


def authenticator() -> Authenticator:
    return Authenticator(TokenFile(tokens=[
        entry_for("store-01", TOKEN_1, "till 1"),
        entry_for("store-02", TOKEN_2),
        entry_for("store-01", TOKEN_1B, "till 1, rotated"),
    ]))


def test_digest_is_sha256_hex() -> None:
    assert digest("abc") == hashlib.sha256(b"abc").hexdigest()
    assert entry_for("store-01", "abc").sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_new_tokens_are_long_and_distinct() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert min(len(t) for t in tokens) == 43  # 32 random bytes, URL-safe base64


def test_each_token_maps_to_its_store() -> None:
    auth = authenticator()
    assert auth.store_for(f"Bearer {TOKEN_1}") == "store-01"
    assert auth.store_for(f"Bearer {TOKEN_1B}") == "store-01"
    assert auth.store_for(f"bearer {TOKEN_2}") == "store-02"
    assert auth.store_count == 2


@pytest.mark.parametrize(("header", "detail", "error"), [
    (None, "missing Authorization header; send 'Authorization: Bearer <store token>'", "invalid_request"),
    ("", "missing Authorization header; send 'Authorization: Bearer <store token>'", "invalid_request"),
    (f"Basic {TOKEN_1}", "Authorization must be 'Bearer <store token>'", "invalid_request"),
    ("Bearer", "Authorization must be 'Bearer <store token>'", "invalid_request"),
    ("Bearer two words", "Authorization must be 'Bearer <store token>'", "invalid_request"),
    (f"Bearer {TOKEN_1}x", "the bearer token is not valid", "invalid_token"),
    (f"Bearer {TOKEN_1[:-1]}", "the bearer token is not valid", "invalid_token"),
])
def test_bad_credentials(header: str | None, detail: str, error: str) -> None:
    with pytest.raises(AuthError) as caught:
        authenticator().store_for(header)
    assert (caught.value.detail, caught.value.error) == (detail, error)
    assert TOKEN_1 not in caught.value.detail


def test_token_file_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "tokens.json"
    content = TokenFile(tokens=[entry_for("store-01", TOKEN_1)]).model_dump_json()
    path.write_text(content)
    assert Authenticator(load_tokens(path)).store_for(f"Bearer {TOKEN_1}") == "store-01"
    assert Authenticator(load_tokens(content=content)).store_for(f"Bearer {TOKEN_1}") == "store-01"
    assert TOKEN_1 not in content


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "invalid token file: file: Invalid JSON"),
    ('{"tokens": [{"store_id": "store-01", "sha256": "abc"}]}',
     "invalid token file: tokens.0.sha256: String should match pattern '^[0-9a-f]{64}$'"),
    ('{"tokens": [{"store_id": "Store 1", "sha256": "' + "0" * 64 + '"}]}',
     "invalid token file: tokens.0.store_id: String should match pattern '^[a-z0-9][a-z0-9-]{0,62}$'"),
    ('{"tokens": [], "admin": true}', "invalid token file: admin: Extra inputs are not permitted"),
])
def test_malformed_token_files_are_refused(content: str, message: str) -> None:
    with pytest.raises(TokenFileError) as caught:
        parse_token_file(content)
    assert str(caught.value).startswith(message)


def test_one_token_for_two_stores_is_refused() -> None:
    with pytest.raises(TokenFileError, match=r"one token is listed for two stores \(store-01, store-02\)"):
        Authenticator(TokenFile(tokens=[entry_for("store-01", TOKEN_1), entry_for("store-02", TOKEN_1)]))


def test_missing_token_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TokenFileError, match=r"cannot read token file .*/nope\.json: No such file or directory"):
        load_tokens(tmp_path / "nope.json")


def test_cli_prints_a_token_and_its_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "store-07", "till 3"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rsplit(" ", 1)[1]
    entry = json.loads(out[1].split(": ", 1)[1])
    assert entry == {"store_id": "store-07", "sha256": digest(token), "label": "till 3"}
    assert main([]) == 2
