"""Running a service under uvicorn the same way for ingest and dashboard.

One process, one event loop; uvloop and httptools when installed (they are, via uv.lock). No
``Server`` header, no X-Forwarded-* rewriting: nothing here uses the client address.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import uvicorn


def serve(app: Any, *, host: str, port: int, log_level: str, access_log: bool, graceful_shutdown_s: int) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    have = importlib.util.find_spec
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop" if have("uvloop") else "asyncio",
        http="httptools" if have("httptools") else "h11",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=graceful_shutdown_s,
    )
