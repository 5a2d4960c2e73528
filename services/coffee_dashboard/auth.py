"""Read-only access control: a bearer token, or HTTP basic auth, checked on every request but the probes.

Tokens and the basic password are configured as SHA-256 digests only (``coffee_service.tokens``
says why that suffices; ``python -m coffee_dashboard.auth`` makes them). A browser cannot set
headers on an EventSource, so in token mode ``GET /?token=...`` moves the token into an HttpOnly,
SameSite=Strict cookie and redirects to the bare URL, keeping the token out of the address bar.
Digests are matched in constant time against every entry (``coffee_service.tokens``).

The service is read-only as a whole: any method other than GET or HEAD is a 405 here, before
routing, so no route can grow a write by accident.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import sys
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from coffee_dashboard.settings import DashboardSettings
from coffee_service.problems import Problem
from coffee_service.tokens import digest as digest  # the local stack configures its dev token with it
from coffee_service.tokens import matches, new_token

COOKIE = "coffee_dashboard_token"
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes; they reveal only up or not
READ_METHODS = frozenset({"GET", "HEAD"})


class Authenticator:
    def __init__(self, settings: DashboardSettings) -> None:
        self.mode = settings.auth
        self.tokens = [bytes.fromhex(d) for d in settings.tokens_sha256]
        self.user_digest = digest(settings.basic_user or "")
        self.password = [bytes.fromhex(settings.basic_password_sha256)] if settings.basic_password_sha256 else []
        self.cookie_secure = settings.cookie_secure

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
        if self.token_ok(_cookie(headers.get("cookie", ""), COOKIE)):
            return None
        return Problem(401, "unauthenticated", "Unauthenticated",
                       "send 'Authorization: Bearer <dashboard token>', or open the page once as /?token=<token>",
                       headers={"WWW-Authenticate": 'Bearer realm="coffee-rt dashboard"'})

    def login_cookie(self, token: str) -> str:
        secure = "; Secure" if self.cookie_secure else ""
        return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000{secure}"


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
            problem = Problem(401, "unauthenticated", "Unauthenticated", "the token in the link is not valid",
                              headers={"WWW-Authenticate": 'Bearer realm="coffee-rt dashboard"'})
            await problem.response("/")(scope, receive, send)
            return
        location = "/" + (f"?{urlencode(rest)}" if rest else "")
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode()), (b"set-cookie", self.auth.login_cookie(token).encode()),
            (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def main(argv: list[str]) -> int:
    if argv[:1] == ["new-token"]:
        token = new_token()
        print(f"token: {token}\nDASHBOARD_TOKENS_SHA256 entry: {digest(token).hex()}")
        return 0
    if argv[:1] == ["new-password"]:
        password = secrets.token_urlsafe(24)
        print(f"password: {password}\nDASHBOARD_BASIC_PASSWORD_SHA256={digest(password).hex()}")
        return 0
    print("usage: python -m coffee_dashboard.auth new-token | new-password", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
