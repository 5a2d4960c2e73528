"""``python -m coffee_ingest``: the service under uvicorn, configured only by ``INGEST_*`` variables.

One process, one event loop: on a small node a second worker would only fight the broker and
the poll thread for cores. uvloop and httptools are used when installed (they are, via uv.lock).
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import sys

import uvicorn

from coffee_ingest.app import IngestService
from coffee_ingest.auth import TokenFileError
from coffee_ingest.settings import IngestSettings
from coffee_service.envsettings import SettingsError


def main() -> int:
    try:
        settings = IngestSettings.from_env()
        service = IngestService(settings)
    except (SettingsError, TokenFileError) as exc:
        print(f"coffee_ingest: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Everything built so far lives for the whole process: keep the collector from rescanning it.
    gc.collect()
    gc.freeze()
    have = importlib.util.find_spec
    uvicorn.run(
        service.asgi(),
        host=settings.host,
        port=settings.port,
        loop="uvloop" if have("uvloop") else "asyncio",
        http="httptools" if have("httptools") else "h11",
        access_log=settings.access_log,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,  # no X-Forwarded-* rewriting: nothing here uses the client address
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
