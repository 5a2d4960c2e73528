"""Read-only access control: a bearer token, or HTTP basic auth, checked on every request but the probes.

Tokens and the basic password are configured as SHA-256 digests only (``coffee_service.tokens``
says why that suffices; ``python -m coffee_dashboard.auth`` makes them). A browser cannot set
headers on an EventSource, so in token mode ``GET /?token=...`` sets an HttpOnly, SameSite=Strict
session cookie and redirects to the bare URL, keeping the token out of the address bar.

The cookie never holds the token: it is ``v1.<expiry>.<mac>``, the mac an HMAC-SHA256 of the expiry
and the token's digest under the session key. A cookie is valid until its expiry (the session
TTL after the login) and only while the token it was issued for is still configured: the check
recomputes the mac for every current digest, so removing a token from the token file ends its
sessions at the next reload. Digests and macs are compared in constant time against every entry.

The service is read-only as a whole: any method other than GET or HEAD is a 405 here, before
routing, so no route can grow a write by accident.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from coffee_dashboard.metrics import DashboardMetrics
from coffee_dashboard.settings import DashboardSettings
from coffee_service.problems import Problem
from coffee_service.reload import WatchedFile
from coffee_service.tokens import digest as digest  # the local stack configures its dev token with it
from coffee_service.tokens import matches, new_token

COOKIE = "coffee_dashboard_session"
OLD_COOKIE = "coffee_dashboard_token"  # the raw token, as older versions stored it: deleted at login
MIN_KEY_BYTES = 32
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes; they reveal only up or not
READ_METHODS = frozenset({"GET", "HEAD"})


class AuthConfigError(ValueError):
    """The token file or the session key file is missing or malformed (never quoting either)."""


def parse_digests(text: str) -> tuple[bytes, ...]:
    """The token file: SHA-256 digests (64 lower-case hex digits), one per line or comma-separated;
    blank lines and ``#`` comments ignored; at least one."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for part in line.split("#", 1)[0].split(","):
            part = part.strip()
            if not part:
                continue
            if not re.fullmatch(r"[0-9a-f]{64}", part):
                raise AuthConfigError(f"line {number}: not a SHA-256 digest (64 lower-case hex digits)")
            found.append(bytes.fromhex(part))
    if not found:
        raise AuthConfigError("no token digest in the file")
    return tuple(found)


def load_session_key(path: Path | None) -> bytes:
    """The session key from its file (at least 32 bytes, surrounding blanks ignored), else a random one."""
    if path is None:
        return secrets.token_bytes(MIN_KEY_BYTES)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise AuthConfigError(f"cannot read the session key file {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise AuthConfigError(f"the session key file {path} must hold at least {MIN_KEY_BYTES} bytes "
                              "(e.g. openssl rand -hex 32)")
    return key


class Sessions:
    """Signed, expiring session values bound to a token's digest (see the module's docstring)."""

    def __init__(self, key: bytes, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self.key, self.ttl_s, self.clock = key, ttl_s, clock

    def _mac(self, expiry: int, token_digest: bytes) -> bytes:
        message = b"coffee-rt dashboard session v1|%d|" % expiry + token_digest
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def issue(self, token_digest: bytes) -> str:
        expiry = int(self.clock()) + self.ttl_s
        mac = base64.urlsafe_b64encode(self._mac(expiry, token_digest)).rstrip(b"=").decode()
        return f"v1.{expiry}.{mac}"

    def valid(self, value: str, digests: Iterable[bytes]) -> bool:
        version, _, rest = value.partition(".")
        expiry_text, _, mac_text = rest.partition(".")
        if version != "v1" or not expiry_text.isdigit() or len(expiry_text) > 12 or len(mac_text) != 43:
            return False
        expiry = int(expiry_text)
        if expiry <= self.clock():
            return False
        try:
            mac = base64.urlsafe_b64decode(mac_text + "=")
        except (binascii.Error, ValueError):
            return False
        found = False
        for candidate in digests:  # every one, as coffee_service.tokens does
            if hmac.compare_digest(self._mac(expiry, candidate), mac):
                found = True
        return found


class Authenticator:
    def __init__(self, settings: DashboardSettings, metrics: DashboardMetrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.mode = settings.auth
        self.metrics = metrics or DashboardMetrics()
        self.token_file: WatchedFile[tuple[bytes, ...]] | None = None
        self.tokens: tuple[bytes, ...] = tuple(bytes.fromhex(d) for d in settings.tokens_sha256)
        if settings.auth == "token" and settings.tokens_file is not None:
            self.token_file = _watched_digests(settings.tokens_file, self.metrics)
            self.tokens = self.token_file.value
        self.user_digest = digest(settings.basic_user or "")
        self.password = [bytes.fromhex(settings.basic_password_sha256)] if settings.basic_password_sha256 else []
        self.cookie_secure = settings.cookie_secure
        self.session_ttl_s = int(settings.session_ttl.total_seconds())
        key = load_session_key(settings.session_key_file) if settings.auth == "token" else b""
        self.sessions = Sessions(key, self.session_ttl_s, clock)

    def set_tokens(self, digests: tuple[bytes, ...]) -> None:
        """A reloaded token file: tokens (and their sessions) not in it stop working now."""
        self.tokens = digests

    def token_ok(self, token: str) -> bool:
        return bool(token) and matches(digest(token), self.tokens)

    def check(self, headers: dict[str, str]) -> Problem | None:
        """None when the request may read, else the 401 to answer."""
        if self.mode == "none":
            return None
        authorization = headers.get("authorization", "")
        if self.mode == "basic":
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "basic":
                try:
                    user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    user, sep, password = "", "", ""
                user_ok = matches(digest(user), [self.user_digest])
                if sep and matches(digest(password), self.password) and user_ok:
                    return None
            return Problem(401, "unauthenticated", "Unauthenticated", "send HTTP basic credentials",
                           headers={"WWW-Authenticate": 'Basic realm="coffee-rt dashboard", charset="UTF-8"'})
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(value.strip()):
            return None
        if self.sessions.valid(_cookie(headers.get("cookie", ""), COOKIE), self.tokens):
            return None
        return Problem(401, "unauthenticated", "Unauthenticated",
                       "send 'Authorization: Bearer <dashboard token>', or open the page once as /?token=<token>",
                       headers={"WWW-Authenticate": 'Bearer realm="coffee-rt dashboard"'})

    def login_cookie(self, token: str) -> str:
        """The session cookie for a valid ``token`` (the token itself is not in it)."""
        secure = "; Secure" if self.cookie_secure else ""
        value = self.sessions.issue(digest(token))
        return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={self.session_ttl_s}{secure}"

    def old_cookie_removal(self) -> str:
        secure = "; Secure" if self.cookie_secure else ""
        return f"{OLD_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"


def _watched_digests(path: Path, metrics: DashboardMetrics) -> WatchedFile[tuple[bytes, ...]]:
    try:
        watched = WatchedFile(path, parse_digests, what="dashboard token file",
                              on_outcome=lambda outcome: metrics.token_reloads.labels(outcome).inc())
    except OSError as exc:
        raise AuthConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AuthConfigError(f"the token file {path} is not UTF-8") from None
    except AuthConfigError as exc:
        raise AuthConfigError(f"the token file {path}: {exc}") from None
    metrics.token_file_ok.set_function(lambda: 1.0 if watched.ok else 0.0)
    return watched


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


class AuthMiddleware:
    """Pure ASGI: read-only methods, then credentials; ``/?token=`` logs a browser in."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.auth = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["method"] not in READ_METHODS:
            problem = Problem(405, "method-not-allowed", "Method not allowed",
                              "the dashboard is read-only: only GET and HEAD", headers={"Allow": "GET, HEAD"})
            await problem.response(path)(scope, receive, send)
            return
        if path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self.auth.mode == "token" and path == "/":
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            token = next((v for k, v in query if k == "token"), None)
            if token is not None:
                await self._login(token, [(k, v) for k, v in query if k != "token"], scope, receive, send)
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        denied = self.auth.check(headers)
        if denied is not None:
            await denied.response(path)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _login(self, token: str, rest: list[tuple[str, str]], scope: Scope, receive: Receive,
                     send: Send) -> None:
        if not self.auth.token_ok(token):
            self.auth.metrics.logins.labels("refused").inc()
            problem = Problem(401, "unauthenticated", "Unauthenticated", "the token in the link is not valid",
                              headers={"WWW-Authenticate": 'Bearer realm="coffee-rt dashboard"'})
            await problem.response("/")(scope, receive, send)
            return
        self.auth.metrics.logins.labels("session").inc()
        location = "/" + (f"?{urlencode(rest)}" if rest else "")
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode()), (b"set-cookie", self.auth.login_cookie(token).encode()),
            (b"set-cookie", self.auth.old_cookie_removal().encode()),
            (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def main(argv: list[str]) -> int:
    if argv[:1] == ["new-token"]:
        token = new_token()
        print(f"token: {token}\nDASHBOARD_TOKENS_SHA256 / DASHBOARD_TOKENS_FILE entry: {digest(token).hex()}")
        return 0
    if argv[:1] == ["new-session-key"]:
        print(secrets.token_hex(32))
        return 0
    if argv[:1] == ["new-password"]:
        password = secrets.token_urlsafe(24)
        print(f"password: {password}\nDASHBOARD_BASIC_PASSWORD_SHA256={digest(password).hex()}")
        return 0
    print("usage: python -m coffee_dashboard.auth new-token | new-password | new-session-key", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
