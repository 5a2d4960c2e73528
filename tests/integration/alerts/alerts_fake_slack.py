"""A local HTTP server standing in for Slack's incoming-webhook URL: records every JSON payload."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Payload = dict[str, Any]


class FakeSlack:
    def __init__(self) -> None:
        self.payloads: list[Payload] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer._lock:
                    outer.paths.append(self.path)
                    outer.payloads.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> list[Payload]:
        with self._lock:
            return list(self.payloads)

    def wait_for(self, what: str, match: Callable[[Payload], bool], timeout: float = 120) -> Payload:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for payload in self.snapshot():
                if match(payload):
                    return payload
            time.sleep(0.5)
        titles = [a.get("title") for p in self.snapshot() for a in p.get("attachments", [])]
        raise AssertionError(f"no Slack message {what} within {timeout:.0f} s; received: {titles}")


def titles(payload: Payload) -> list[str]:
    return [str(a.get("title", "")) for a in payload.get("attachments", [])]


def is_message(payload: Payload, status: str, alertname: str, **labels: str) -> bool:
    """A Slack payload of ``status`` (FIRING/RESOLVED) for ``alertname`` whose text names ``labels``."""
    for attachment in payload.get("attachments", []):
        title = str(attachment.get("title", ""))
        text = str(attachment.get("text", ""))
        if title.startswith(f"[{status}") and f"] {alertname} (" in title and all(
                f"`{k}={v}`" in text for k, v in labels.items()):
            return True
    return False
